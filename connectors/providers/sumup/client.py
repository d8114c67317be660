"""SumUp Customers API v0.1 client.

The client chooses ``customer_id``, so create is naturally idempotent: a 409
``CUSTOMER_ALREADY_EXISTS`` means the customer exists and is adopted. SumUp has no customer
delete and no list: closing a customer deactivates its active payment instruments.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from connectors.base import BaseClient
from connectors.caller import CallState, json_body
from connectors.config import ClientConfig
from connectors.errors import ConfigError, NotSupported, RecordRejected
from connectors.http import OnCall, path_segment
from connectors.oauth import OAuthCredentials
from connectors.operation import Operation
from connectors.protocol import Capabilities, CloseResult, CreateResult, EraseResult, OwnedHook
from connectors.providers.sumup.classify import classify_sumup
from connectors.secret import Secret

COLLECTION = "/v0.1/customers"
ITEM = "/v0.1/customers/{customer_id}"
INSTRUMENTS = "/v0.1/customers/{customer_id}/payment-instruments"
INSTRUMENT = "/v0.1/customers/{customer_id}/payment-instruments/{token}"

ERASED_DETAILS: dict[str, Any] = {
    "first_name": "",
    "last_name": "",
    "email": "",
    "phone": "",
    "tax_id": "",
    "address": {
        "line_1": "",
        "line_2": "",
        "city": "",
        "state": "",
        "postal_code": "",
        "country": "",
    },
}
"""The ``personal_details`` an erasure writes. SumUp has no customer delete, and its ``PUT``
overwrites only the fields it is sent, none of which may be ``null`` (every one is typed
``string``): an empty string is the emptiest value the published contract allows."""
PLACEHOLDER_BIRTH_DATE = "1900-01-01"
"""``birth_date`` is ``format: date``: an empty string is no date, so a birth date held is
overwritten with this fixed placeholder (it says nothing of the person)."""


class SumUpClient(BaseClient):
    """Customers of the merchant that owns ``api_key`` (sent as ``Authorization: Bearer``),
    or that granted ``oauth`` (a refresh token traded for short-lived access tokens,
    :mod:`connectors.oauth`).

    Use as ``async with SumUpClient(...) as client:``.
    """

    target = "sumup"
    capabilities = Capabilities(
        delete=False, list=False, instruments=True, client_ids=True, look_up_creates=False
    )

    def __init__(
        self,
        base_url: str,
        *,
        api_key: Secret | None = None,
        oauth: OAuthCredentials | None = None,
        config: ClientConfig = ClientConfig(),  # noqa: B008 (frozen, shared safely)
        transport: httpx.AsyncBaseTransport | None = None,
        on_call: OnCall | None = None,
    ) -> None:
        if api_key is not None and not isinstance(api_key, Secret):
            raise TypeError("api_key must be a connectors.secret.Secret")
        if not api_key and oauth is None:
            raise ConfigError(
                "SumUp needs an api_key or an OAuth refresh token",
                provider=self.target,
                operation=Operation.CONFIGURE,
            )
        super().__init__(
            base_url,
            auth_header=f"Bearer {api_key.reveal()}" if api_key else None,
            secrets=(api_key.reveal(),) if api_key else (),
            classify=classify_sumup,
            config=config,
            transport=transport,
            on_call=on_call,
            oauth=None if api_key else oauth,
        )

    async def create(
        self, payload: Mapping[str, Any], *, owned: OwnedHook | None = None
    ) -> CreateResult:
        """``POST /v0.1/customers`` with a ``Customer`` (201 -> ``created``); 409
        ``CUSTOMER_ALREADY_EXISTS`` -> ``adopted`` with the record fetched by GET.

        ``owned`` is not consulted: the id is the key's own, so a 409 is that key's customer.
        """
        customer_id = payload.get("customer_id")
        if not isinstance(customer_id, str) or not customer_id:
            raise RecordRejected(
                "customer_id is required",
                provider=self.target,
                operation=Operation.CREATE,
                code="MISSING",
            )
        try:
            response = await self._caller.call(
                Operation.CREATE, "POST", COLLECTION, COLLECTION, body=dict(payload)
            )
        except RecordRejected as exc:
            if exc.status != 409 or exc.code != "CUSTOMER_ALREADY_EXISTS":
                raise
            return CreateResult("adopted", customer_id, await self.get(customer_id))
        record = self._customer(response, Operation.CREATE)
        return CreateResult("created", str(record.get("customer_id", customer_id)), record)

    async def find_created(
        self, payload: Mapping[str, Any], *, owned: OwnedHook | None = None
    ) -> CreateResult | None:
        """Always ``None``, without a call: creating again is the look-up (a 409 adopts)."""
        return None

    async def equal_matches(
        self, payload: Mapping[str, Any], *, owned: OwnedHook | None = None
    ) -> list[dict[str, Any]]:
        """SumUp has no customer search (and needs none: see ``find_created``)."""
        raise NotSupported(
            "SumUp has no customer list or search",
            provider=self.target,
            operation=Operation.FIND_CREATED,
        )

    def superseded(self, payload: Mapping[str, Any]) -> str | None:
        """Always ``None``: SumUp customers live in the one merchant account of the key."""
        return None

    async def get(self, customer_id: str) -> dict[str, Any]:
        """``GET /v0.1/customers/{id}``; raises :class:`RecordRejected` (404) when absent."""
        response = await self._caller.call(Operation.GET, "GET", ITEM, _item(customer_id))
        return self._customer(response, Operation.GET)

    async def fetch_many(self, remote_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Concurrent GETs (the limiter caps them); a 404 leaves the id out."""
        wanted = list(dict.fromkeys(remote_ids))
        records = await asyncio.gather(*(self._get_or_none(cid) for cid in wanted))
        return {cid: rec for cid, rec in zip(wanted, records, strict=True) if rec is not None}

    async def _get_or_none(self, customer_id: str) -> dict[str, Any] | None:
        try:
            return await self.get(customer_id)
        except RecordRejected as exc:
            if exc.status == 404:
                return None
            raise

    async def update(self, remote_id: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT /v0.1/customers/{id}`` with ``{personal_details}`` (SumUp overwrites only
        the fields sent). ``payload`` may be a whole ``Customer``: only
        ``personal_details`` is sent."""
        if "personal_details" not in payload:
            raise RecordRejected(
                "update needs personal_details",
                provider=self.target,
                operation=Operation.UPDATE,
                code="MISSING",
            )
        body = {"personal_details": payload["personal_details"]}
        response = await self._caller.call(
            Operation.UPDATE, "PUT", ITEM, _item(remote_id), body=body
        )
        return self._customer(response, Operation.UPDATE)

    async def list_instruments(self, customer_id: str) -> list[dict[str, Any]]:
        """``GET /v0.1/customers/{id}/payment-instruments`` (a bare array, no paging)."""
        path = f"{_item(customer_id)}/payment-instruments"
        response = await self._caller.call(Operation.LIST_INSTRUMENTS, "GET", INSTRUMENTS, path)
        data = json_body(response, provider=self.target, operation=Operation.LIST_INSTRUMENTS)
        if not isinstance(data, list):
            raise RecordRejected(
                "payment instruments are not a JSON array",
                provider=self.target,
                operation=Operation.LIST_INSTRUMENTS,
                status=response.status_code,
                code="BAD_BODY",
            )
        return data

    async def deactivate_instrument(self, remote_id: str, token: str) -> bool:
        """``DELETE …/payment-instruments/{token}``: True when deactivated now (204), False
        when it was already inactive (400 ``INVALID_REQUEST``)."""
        path = f"{_item(remote_id)}/payment-instruments/{path_segment(token)}"
        state = CallState()
        try:
            await self._caller.call(
                Operation.DEACTIVATE_INSTRUMENT, "DELETE", INSTRUMENT, path, state=state
            )
        except RecordRejected as exc:
            if exc.status == 400 and exc.code == "INVALID_REQUEST":
                # Inactive already; by our own earlier attempt if its answer was lost.
                return state.unknown_outcome
            raise
        return True

    async def close(self, remote_id: str) -> CloseResult:
        """Deactivate every active payment instrument (SumUp has no customer delete).

        ``already_gone`` when the customer does not exist.
        """
        try:
            instruments = await self.list_instruments(remote_id)
        except RecordRejected as exc:
            if exc.status == 404:
                return CloseResult("already_gone")
            raise
        tokens = [str(i["token"]) for i in instruments if i.get("active", True) and i.get("token")]
        done = await asyncio.gather(*(self.deactivate_instrument(remote_id, t) for t in tokens))
        return CloseResult(
            "deactivated", tuple(t for t, now in zip(tokens, done, strict=True) if now)
        )

    async def erase(self, remote_id: str) -> EraseResult:
        """As far as SumUp's API allows: deactivate every active payment instrument, then
        overwrite the personal details with empty values (:data:`ERASED_DETAILS`; a birth date
        with :data:`PLACEHOLDER_BIRTH_DATE`). The customer id stays at SumUp (there is no
        customer delete); ``already_gone`` when SumUp holds no such customer."""
        try:
            record = await self.get(remote_id)
        except RecordRejected as exc:
            if exc.status == 404:
                return EraseResult("already_gone")
            raise
        closed = await self.close(remote_id)
        details = dict(ERASED_DETAILS)
        held = record.get("personal_details")
        if isinstance(held, Mapping) and held.get("birth_date"):
            details["birth_date"] = PLACEHOLDER_BIRTH_DATE
        await self.update(remote_id, {"personal_details": details})
        return EraseResult(
            "overwritten",
            closed.deactivated,
            note="SumUp has no customer delete: the customer id stays, with empty personal"
            " details and no active payment instrument",
        )

    async def find(self, criteria: Mapping[str, str]) -> list[dict[str, Any]]:
        """SumUp has no customer search."""
        raise NotSupported(
            "SumUp has no customer list or search", provider=self.target, operation=Operation.FIND
        )

    def _customer(self, response: httpx.Response, operation: Operation) -> dict[str, Any]:
        data = json_body(response, provider=self.target, operation=operation)
        if not isinstance(data, dict):
            raise RecordRejected(
                "the response is not a customer",
                provider=self.target,
                operation=operation,
                status=response.status_code,
                code="BAD_BODY",
            )
        return data


def _item(customer_id: str) -> str:
    return f"{COLLECTION}/{path_segment(customer_id)}"
