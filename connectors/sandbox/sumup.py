"""SumUp Customers API v0.1 routes, as published in ``sumup-customers-api.json``.

Create answers 201 (409 ``CUSTOMER_ALREADY_EXISTS`` for a taken id); update overwrites only
the fields it is given; deactivating an instrument answers 204 and the instrument stays
listed with ``active: false``. There is no customer list and no customer delete. A
merchant's credential reaches that merchant's own account (:meth:`SandboxState.sumup_of`).
"""

from __future__ import annotations

import orjson

from connectors.sandbox.auth import Principal
from connectors.sandbox.errors import sumup_error, sumup_invalid, sumup_not_found
from connectors.sandbox.http import BodyError, Request, Response, parse_json
from connectors.sandbox.state import SandboxState
from connectors.sandbox.store import SRecord
from connectors.sandbox.validation import (
    SumUpInvalid,
    validate_sumup_create,
    validate_sumup_update,
)


def create_customer(state: SandboxState, req: Request, who: Principal) -> Response:
    """``POST /v0.1/customers`` → 201 ``Customer``."""
    try:
        customer_id, details = validate_sumup_create(parse_json(req.body))
    except BodyError as exc:
        return sumup_invalid("body", f"Validation error: {exc}")
    except SumUpInvalid as exc:
        return sumup_invalid(exc.param, exc.message)
    record = state.sumup_of(who.merchant).create(customer_id, details)
    if record is None:
        return sumup_error(409, "CUSTOMER_ALREADY_EXISTS", "Customer already exists")
    return Response(201, record.to_json())


def _customer(state: SandboxState, req: Request, who: Principal) -> SRecord | None:
    return state.sumup_of(who.merchant).customers.get(req.params[0])


def get_customer(state: SandboxState, req: Request, who: Principal) -> Response:
    """``GET /v0.1/customers/{customer_id}``."""
    record = _customer(state, req, who)
    if record is None:
        return sumup_not_found()
    return Response(200, record.to_json())


def update_customer(state: SandboxState, req: Request, who: Principal) -> Response:
    """``PUT /v0.1/customers/{customer_id}``: a merge of the given ``personal_details``.

    The published operation lists no 400, yet an unusable body must be refused: it gets
    the create operation's documented 400 shape (``ErrorExtended``).
    """
    record = _customer(state, req, who)
    if record is None:
        return sumup_not_found()
    try:
        patch = validate_sumup_update(parse_json(req.body))
    except BodyError as exc:
        return sumup_invalid("body", f"Validation error: {exc}")
    except SumUpInvalid as exc:
        return sumup_invalid(exc.param, exc.message)
    return Response(200, state.sumup_of(who.merchant).update(record, patch).to_json())


def list_instruments(state: SandboxState, req: Request, who: Principal) -> Response:
    """``GET /v0.1/customers/{customer_id}/payment-instruments`` → a bare array."""
    if _customer(state, req, who) is None:
        return sumup_not_found()
    instruments = state.sumup_of(who.merchant).instruments.get(req.params[0], [])
    return Response(200, orjson.dumps(instruments))


def deactivate_instrument(state: SandboxState, req: Request, who: Principal) -> Response:
    """``DELETE …/payment-instruments/{token}`` → 204; 400 if already inactive."""
    if _customer(state, req, who) is None:
        return sumup_not_found()
    token = req.params[1]
    for instrument in state.sumup_of(who.merchant).instruments.get(req.params[0], []):
        if instrument.get("token") == token:
            if not instrument.get("active", True):
                return sumup_error(
                    400, "INVALID_REQUEST", "The payment instrument is already inactive"
                )
            instrument["active"] = False
            mandate = instrument.get("mandate")
            if isinstance(mandate, dict) and "status" in mandate:
                mandate["status"] = "inactive"
            return Response(204, b"", None)
    return sumup_not_found()
