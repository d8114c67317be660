"""The admin surface under ``/_sandbox/``: part of neither provider API.

No auth, never counted, never rate limited, never faulted. Errors are
``{"message": …}`` (plus ``index`` for the failing item of a bulk seed).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from connectors.sandbox import synthetic
from connectors.sandbox.config import ConfigError
from connectors.sandbox.http import BodyError, Request, Response, json_response, parse_json
from connectors.sandbox.query import parse_instant
from connectors.sandbox.rsql import RsqlError
from connectors.sandbox.store import SumUpStore, format_ms
from connectors.sandbox.validation import (
    SumUpInvalid,
    VerifoneInvalid,
    validate_sumup_create,
    validate_verifone,
)

if TYPE_CHECKING:
    from connectors.sandbox.app import SandboxApp

AdminHandler = Callable[["SandboxApp", Request], Response]

CARD_TYPES = frozenset(
    (
        "ALELO",
        "AMEX",
        "CONECS",
        "CUP",
        "DINERS",
        "DISCOVER",
        "EFTPOS",
        "ELO",
        "ELV",
        "GIROCARD",
        "HIPERCARD",
        "INTERAC",
        "JCB",
        "MAESTRO",
        "MASTERCARD",
        "PLUXEE",
        "SWILE",
        "TICKET",
        "VISA",
        "VISA_ELECTRON",
        "VISA_VPAY",
        "VPAY",
        "VR",
        "UNKNOWN",
    )
)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _error(status: int, message: str, **extra: Any) -> Response:
    return json_response(status, {"message": message, **extra})


def health(app: SandboxApp, req: Request) -> Response:
    """``GET /_sandbox/health``: the server is up; how much it holds."""
    return json_response(
        200,
        {
            "status": "ok",
            "verifone_customers": len(app.state.verifone),
            "sumup_customers": len(app.state.sumup.customers),
        },
    )


def reset(app: SandboxApp, req: Request) -> Response:
    """``POST /_sandbox/reset[?config=1]``: clear data and counters (and the config)."""
    app.reset(config=req.query.get("config", "0") not in ("", "0", "false"))
    return json_response(200, {"reset": True, "config": app.config.to_dict()})


def counters(app: SandboxApp, req: Request) -> Response:
    """``GET /_sandbox/counters``."""
    return json_response(200, app.counters.snapshot())


def state(app: SandboxApp, req: Request) -> Response:
    """``GET /_sandbox/state``: every customer of both providers and every instrument."""
    store = app.state
    payload = {
        "verifone": {"customers": [orjson.Fragment(r.doc) for r in store.verifone]},
        "sumup": {
            "customers": [orjson.Fragment(r.to_json()) for r in store.sumup.customers.values()],
            "instruments": store.sumup.instruments,
            "merchants": {
                name: {
                    "customers": [orjson.Fragment(r.to_json()) for r in account.customers.values()],
                    "instruments": account.instruments,
                }
                for name, account in store.merchants.items()
            },
        },
    }
    return json_response(200, payload)


def config(app: SandboxApp, req: Request) -> Response:
    """``GET /_sandbox/config``, or ``PUT`` a JSON object of knobs to change."""
    if req.method == "PUT":
        try:
            changes = parse_json(req.body)
            if not isinstance(changes, dict):
                raise ConfigError("send a JSON object of knobs")
            app.apply_config(app.config.updated(changes))
        except (BodyError, ConfigError) as exc:
            return _error(400, str(exc))
    return json_response(200, app.config.to_dict())


def _items(req: Request) -> list[Any] | Response:
    try:
        items = parse_json(req.body)
    except BodyError as exc:
        return _error(400, str(exc))
    if not isinstance(items, list):
        return _error(400, "send a JSON array")
    return items


def seed_verifone(app: SandboxApp, req: Request) -> Response:
    """``POST /_sandbox/seed/verifone``: ``CustomerRequest`` bodies, validated as by the API.

    Each may also carry ``id`` (a UUID), ``created_at`` and ``updated_at`` to stage history.
    All or nothing: the first invalid item rejects the batch.
    """
    items = _items(req)
    if isinstance(items, Response):
        return items
    store = app.state.verifone
    staged: list[tuple[dict[str, Any], str | None, int | None, int | None]] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        try:
            clean = validate_verifone(item)
            customer_id = item.get("id")
            if customer_id is not None:
                if not isinstance(customer_id, str) or not _UUID.fullmatch(customer_id.lower()):
                    raise VerifoneInvalid({"id": "must be a UUID"})
                customer_id = customer_id.lower()
                if store.get(customer_id) is not None or customer_id in seen:
                    return _error(409, f"customer {customer_id} already exists", index=index)
                seen.add(customer_id)
            created = _instant(item.get("created_at"), "created_at")
            updated = _instant(item.get("updated_at"), "updated_at")
        except VerifoneInvalid as exc:
            return _error(400, "invalid customer", index=index, details=exc.details)
        staged.append((clean, customer_id, created, updated))
    docs = [
        orjson.Fragment(store.create(c, customer_id=i, created_ms=cr, updated_ms=up).doc)
        for c, i, cr, up in staged
    ]
    return json_response(200, docs)


def _instant(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise VerifoneInvalid({name: "must be a date-time string"})
    try:
        return parse_instant(value)[0]
    except RsqlError as exc:
        raise VerifoneInvalid({name: str(exc)}) from exc


def seed_sumup(app: SandboxApp, req: Request) -> Response:
    """``POST /_sandbox/seed/sumup``: ``Customer`` bodies; all or nothing."""
    items = _items(req)
    if isinstance(items, Response):
        return items
    store = app.state.sumup
    staged: list[tuple[str, dict[str, Any] | None]] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        try:
            customer_id, details = validate_sumup_create(item)
        except SumUpInvalid as exc:
            return _error(400, exc.message, index=index, param=exc.param)
        if customer_id in store.customers or customer_id in seen:
            return _error(409, f"customer {customer_id!r} already exists", index=index)
        seen.add(customer_id)
        staged.append((customer_id, details))
    created = [store.create(cid, details) for cid, details in staged]
    return json_response(200, [orjson.Fragment(r.to_json()) for r in created if r is not None])


def seed_instruments(app: SandboxApp, req: Request) -> Response:
    """``POST /_sandbox/sumup/customers/{customer_id}/payment-instruments``.

    Body: a count (``3`` or ``{"count": 3}``) of generated cards, or a list of partial
    ``PaymentInstrumentResponse`` objects (missing fields are generated).
    """
    customer_id = req.params[0]
    store = app.state.sumup
    if customer_id not in store.customers:
        return _error(404, f"no SumUp customer {customer_id!r}")
    try:
        body = parse_json(req.body)
    except BodyError as exc:
        return _error(400, str(exc))
    if isinstance(body, dict) and set(body) == {"count"}:
        body = body["count"]
    if isinstance(body, int) and not isinstance(body, bool) and 0 <= body <= 10_000:
        specs: list[Any] = [{}] * body
    elif isinstance(body, list):
        specs = body
    else:
        return _error(400, "send a count (0-10000) or a list of instruments")
    existing = store.instruments.setdefault(customer_id, [])
    tokens = {i["token"] for i in existing}
    made: list[dict[str, Any]] = []
    for index, spec in enumerate(specs):
        try:
            instrument = make_instrument(store, spec)
        except ValueError as exc:
            return _error(400, str(exc), index=index)
        if instrument["token"] in tokens:
            return _error(409, f"token {instrument['token']!r} already exists", index=index)
        tokens.add(instrument["token"])
        made.append(instrument)
    existing.extend(made)
    return json_response(200, made)


def make_instrument(store: SumUpStore, spec: Any) -> dict[str, Any]:
    """A ``PaymentInstrumentResponse`` from a partial one; raise ``ValueError`` if invalid."""
    if not isinstance(spec, dict):
        raise ValueError("an instrument must be a JSON object")
    active = spec.get("active", True)
    card = spec.get("card", {})
    if not isinstance(active, bool) or not isinstance(card, dict):
        raise ValueError("active must be a boolean and card an object")
    last4 = card.get("last_4_digits", f"{store.ids.number(10_000):04d}")
    card_type = card.get("type", "VISA")
    if not (isinstance(last4, str) and re.fullmatch(r"[0-9]{4}", last4)):
        raise ValueError("card.last_4_digits must be 4 digits")
    if card_type not in CARD_TYPES:
        raise ValueError(f"card.type must be one of {', '.join(sorted(CARD_TYPES))}")
    mandate = spec.get(
        "mandate",
        {
            "type": "recurrent",
            "status": "active" if active else "inactive",
            "merchant_code": "MSANDBOX",
        },
    )
    if not isinstance(mandate, dict) or mandate.get("status", "active") not in (
        "active",
        "inactive",
    ):
        raise ValueError("mandate must be an object whose status is active or inactive")
    token = spec.get("token") or store.ids.uuid()
    created_at = spec.get("created_at") or format_ms(int(time.time() * 1000))
    if not isinstance(token, str) or not isinstance(created_at, str):
        raise ValueError("token and created_at must be strings")
    return {
        "token": token,
        "active": active,
        "type": "card",
        "card": {"last_4_digits": last4, "type": card_type},
        "mandate": mandate,
        "created_at": created_at,
    }


def generate(app: SandboxApp, req: Request) -> Response:
    """``POST /_sandbox/generate {"verifone": n, "sumup": m, "entity_id": …, "seed": s}``.

    Realistic synthetic customers straight into the stores (no HTTP per record): for
    rehearsals and memory measurements at scale. Answers only the counts.
    """
    try:
        body = parse_json(req.body)
    except BodyError as exc:
        return _error(400, str(exc))
    if not isinstance(body, dict):
        return _error(400, "send a JSON object")
    try:
        made = synthetic.generate(app.state, body)
    except ValueError as exc:
        return _error(400, str(exc))
    return json_response(200, made)


def seed_oauth(app: SandboxApp, req: Request) -> Response:
    """``POST /_sandbox/oauth``: register OAuth clients, merchants' refresh tokens and
    merchants' API keys: ``{"clients": [{client_id, client_secret}], "refresh_tokens":
    [{refresh_token, client_id, merchant}], "api_keys": [{api_key, merchant}]}``."""
    try:
        registered = app.state.oauth.seed(parse_json(req.body))
    except (BodyError, ValueError) as exc:
        return _error(400, str(exc))
    return json_response(200, registered)


def expire_tokens(app: SandboxApp, req: Request) -> Response:
    """``POST /_sandbox/oauth/expire``: every access token issued so far expires now."""
    return json_response(200, {"expired": app.state.oauth.expire()})


ROUTES: tuple[tuple[str, Mapping[str, AdminHandler]], ...] = (
    ("/_sandbox/health", {"GET": health}),
    ("/_sandbox/reset", {"POST": reset}),
    ("/_sandbox/counters", {"GET": counters}),
    ("/_sandbox/state", {"GET": state}),
    ("/_sandbox/config", {"GET": config, "PUT": config}),
    ("/_sandbox/seed/verifone", {"POST": seed_verifone}),
    ("/_sandbox/seed/sumup", {"POST": seed_sumup}),
    ("/_sandbox/sumup/customers/{customer_id}/payment-instruments", {"POST": seed_instruments}),
    ("/_sandbox/generate", {"POST": generate}),
    ("/_sandbox/oauth", {"POST": seed_oauth}),
    ("/_sandbox/oauth/expire", {"POST": expire_tokens}),
)
