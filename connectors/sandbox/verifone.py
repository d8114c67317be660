"""Verifone Customer API v2 routes, as published in ``verifone-customer-api.json``.

Create answers 200 (not 201), delete 204 with no body, every error an ``ErrorResponse``.
A credential limited to some entities gets 403 on records and bodies of other entities,
and its searches only ever see its own entities.
"""

from __future__ import annotations

import re
from typing import Any

from connectors.sandbox.auth import Principal
from connectors.sandbox.config import MAX_PAGE_SIZE
from connectors.sandbox.errors import verifone_error
from connectors.sandbox.http import BodyError, Request, Response, parse_json
from connectors.sandbox.query import FILTERABLE, compile_query
from connectors.sandbox.rsql import RsqlError, parse
from connectors.sandbox.state import SandboxState
from connectors.sandbox.store import VRecord
from connectors.sandbox.validation import VerifoneInvalid, validate_verifone

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
DEFAULT_PAGE_SIZE = 50


def _ok(doc: bytes) -> Response:
    return Response(200, doc)


def _bad(details: dict[str, Any], message: str = "Bad Request") -> Response:
    return verifone_error(400, message, details)


def _forbidden(entity_id: str) -> Response:
    return verifone_error(
        403, "Forbidden: this credential has no access to the entity", {"entity_id": entity_id}
    )


def _positive_int(query: dict[str, str], name: str, default: int) -> int | Response:
    raw = query.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,9}", raw.strip()) or int(raw) < 1:
        return _bad({name: "must be an integer >= 1"})
    return int(raw)


def list_customers(state: SandboxState, req: Request, who: Principal) -> Response:
    """``GET /v2/customer?search=…`` → a bare array of ``CustomerResponse``."""
    query = req.query
    search = query.get("search")
    if search is None or not search.strip():
        return _bad({"search": "is required (an RSQL filter)"})
    page_number = _positive_int(query, "page_number", 1)
    if isinstance(page_number, Response):
        return page_number
    page_size = _positive_int(query, "page_size", DEFAULT_PAGE_SIZE)
    if isinstance(page_size, Response):
        return page_size
    if page_size > MAX_PAGE_SIZE:
        return _bad({"page_size": f"must be at most {MAX_PAGE_SIZE}"})
    order_by = query.get("order_by", "DESC")
    if order_by not in ("ASC", "DESC"):
        return _bad({"order_by": "must be ASC or DESC"})
    order_criteria = query.get("order_criteria") or "created_at"
    if order_criteria not in FILTERABLE:
        return _bad({"order_criteria": f"cannot order by {order_criteria!r}"})
    try:
        compiled = compile_query(parse(search))
    except RsqlError as exc:
        return _bad({"search": str(exc)}, "Invalid search expression")
    key = (search, order_criteria, order_by, who.entities)
    found = state.verifone.search(compiled, who.entities, order_criteria, order_by == "DESC", key)
    start = (page_number - 1) * page_size
    page = found[start : start + page_size]
    return _ok(b"[" + b",".join(record.doc for record in page) + b"]")


def _body(req: Request) -> dict[str, Any] | Response:
    try:
        return validate_verifone(parse_json(req.body))
    except BodyError as exc:
        return _bad({"body": str(exc)})
    except VerifoneInvalid as exc:
        return _bad(exc.details, "Validation failed")


def create_customer(state: SandboxState, req: Request, who: Principal) -> Response:
    """``POST /v2/customer`` → 200 ``CustomerResponse`` with a server-assigned UUID."""
    clean = _body(req)
    if isinstance(clean, Response):
        return clean
    if not who.may_use(clean["entity_id"]):
        return _forbidden(clean["entity_id"])
    return _ok(state.verifone.create(clean).doc)


def _record(state: SandboxState, req: Request, who: Principal) -> VRecord | Response:
    customer_id = req.params[0]
    if not _UUID.fullmatch(customer_id):
        return _bad({"customerId": "must be a UUID"})
    record = state.verifone.get(customer_id.lower())
    if record is None:
        return verifone_error(404, "Customer not found", {"customerId": customer_id})
    if not who.may_use(record.entity_id):
        return _forbidden(record.entity_id)
    return record


def get_customer(state: SandboxState, req: Request, who: Principal) -> Response:
    """``GET /v2/customer/{customerId}``."""
    record = _record(state, req, who)
    return record if isinstance(record, Response) else _ok(record.doc)


def update_customer(state: SandboxState, req: Request, who: Principal) -> Response:
    """``POST /v2/customer/{customerId}``: the body replaces every field of the record.

    A record stays in its entity: a body naming another ``entity_id`` gets 400.
    """
    record = _record(state, req, who)
    if isinstance(record, Response):
        return record
    clean = _body(req)
    if isinstance(clean, Response):
        return clean
    if clean["entity_id"] != record.entity_id:
        return _bad({"entity_id": "does not match the customer's entity (cannot be changed)"})
    return _ok(state.verifone.replace(record, clean).doc)


def delete_customer(state: SandboxState, req: Request, who: Principal) -> Response:
    """``DELETE /v2/customer/{customerId}`` → 204, empty body."""
    record = _record(state, req, who)
    if isinstance(record, Response):
        return record
    state.verifone.delete(record)
    return Response(204, b"", None)
