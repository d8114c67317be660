"""Verifone Customer API v2 client.

Create is not idempotent (the server assigns the UUID): when its outcome is unknown (timeout,
reset, 5xx) the client never re-sends it blindly; its look-up (the retry policy's
unknown-outcome strategy) searches for records *equal* to what was sent (no field more, none
fewer) that no other key owns, adopts one such match, re-creates only when there is none, and
reports several as ambiguous.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from connectors import rsql
from connectors.base import BaseClient
from connectors.caller import CallState, json_body
from connectors.config import ClientConfig
from connectors.errors import (
    ConfigError,
    NotSupported,
    RecordRejected,
    TransientError,
    UnknownOutcome,
)
from connectors.http import OnCall, path_segment
from connectors.operation import Operation
from connectors.protocol import Capabilities, CloseResult, CreateResult, EraseResult, OwnedHook
from connectors.providers.verifone.classify import classify_verifone
from connectors.secret import Secret

COLLECTION = "/v2/customer"
ITEM = "/v2/customer/{customerId}"
# Fields of CustomerResponse the server sets; dropped from a body so that a fetched record,
# merged in place, can be sent back as a CustomerRequest.
READ_ONLY_FIELDS = frozenset({"id", "created_at", "updated_at"})
# Room for the scheme, host, path and the other query parameters next to ``search``.
_URL_OVERHEAD = 120


NOT_TEXT_FILTERABLE = frozenset({"shipping.phone"})
"""Fields the published ``search`` parameter types as numbers, not text (``shipping.phone``
takes ``=gt=``..., and a phone such as ``+44 20 7946 0000`` is no number): never filtered
with ``==`` on what was sent."""


def scalar_fields(payload: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Flatten a request body to ``{"billing.first_name": "Ann", ...}`` (non-null scalars)."""
    out: dict[str, str] = {}
    for key, value in payload.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(scalar_fields(value, f"{name}."))
        elif isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            out[name] = str(value)
    return out


def matches_sent(record: Mapping[str, Any], sent: Mapping[str, str]) -> bool:
    """True when every scalar field that was sent has exactly that value in ``record``.

    Containment only: a richer record (or a twin's) also passes. The look-up of a create
    uses :func:`equals_sent`.
    """
    have = scalar_fields(record)
    return all(have.get(name) == value for name, value in sent.items())


def request_fields(record: Mapping[str, Any]) -> dict[str, str]:
    """The ``CustomerRequest`` fields a record holds, flattened, without the server-set ones.

    Empty strings count as absent, like nulls and empty objects: a provider may echo a field
    that was never sent as ``""``, ``null`` or ``{}`` (the sandbox omits it), and custsync never
    sends an empty value (normalisation turns it into null).
    """
    body = {k: v for k, v in record.items() if k not in READ_ONLY_FIELDS}
    return {k: v for k, v in scalar_fields(body).items() if v != ""}


def equals_sent(record: Mapping[str, Any], sent: Mapping[str, str]) -> bool:
    """True when ``record`` holds exactly the fields that were sent: no more, no fewer.

    A record with a field more (a richer record containing a sparse row's fields) is another
    customer, not the outcome of this create.
    """
    wanted = {k: v for k, v in sent.items() if v != ""}
    return request_fields(record) == wanted


class VerifoneClient(BaseClient):
    """Customers of one Verifone entity. Bearer (``token``) or Basic (``user`` + ``api_key``).

    Use as ``async with VerifoneClient(...) as client:``.
    """

    target = "verifone"
    capabilities = Capabilities(
        delete=True, list=True, instruments=False, client_ids=False, look_up_creates=True
    )

    def __init__(
        self,
        base_url: str,
        *,
        entity_id: str,
        token: Secret | None = None,
        user: str | None = None,
        api_key: Secret | None = None,
        config: ClientConfig = ClientConfig(),  # noqa: B008 (frozen, shared safely)
        transport: httpx.AsyncBaseTransport | None = None,
        on_call: OnCall | None = None,
    ) -> None:
        if not entity_id:
            raise ConfigError(
                "entity_id is required", provider=self.target, operation=Operation.CONFIGURE
            )
        super().__init__(
            base_url,
            auth_header=_auth_header(token, user, api_key),
            secrets=tuple(s.reveal() for s in (token, api_key) if s is not None),
            classify=classify_verifone,
            config=config,
            transport=transport,
            on_call=on_call,
        )
        self.entity_id = entity_id

    def __repr__(self) -> str:
        return f"VerifoneClient(base_url={self.base_url!r}, entity_id={self.entity_id!r})"

    # -- create -------------------------------------------------------------------------

    async def create(
        self, payload: Mapping[str, Any], *, owned: OwnedHook | None = None
    ) -> CreateResult:
        """``POST /v2/customer`` with a ``CustomerRequest`` (200 -> ``created``).

        Not safe to repeat, so it runs under the retry policy's unknown-outcome strategy
        (:meth:`RetryPolicy.run <connectors.retry.RetryPolicy.run>`), whose look-up is
        :meth:`find_created` (``owned`` passed on): one match -> ``adopted``, several ->
        ``ambiguous``, none -> it is created again (within ``max_attempts``). Raises
        :class:`UnknownOutcome` when even the look-up could not run: then call
        :meth:`find_created` before any new create.

        Two creates with equal payloads whose outcomes are unknown at the same time cannot be
        told apart by any look-up: the caller sends such twins one at a time (see
        ``docs/connectors.md``).
        """
        body = self._request_body(payload)

        async def send() -> CreateResult:
            response = await self._caller.call(
                Operation.CREATE, "POST", COLLECTION, COLLECTION, body=body, idempotent=False
            )
            record = _record(response, Operation.CREATE)
            return CreateResult("created", str(record["id"]), record)

        async def look_up(unknown: UnknownOutcome) -> CreateResult | None:
            try:
                return await self.find_created(body, owned=owned)
            except TransientError as exc:
                raise UnknownOutcome(
                    f"create outcome unknown ({unknown.message}); reconciliation failed:"
                    f" {exc.message}",
                    provider=self.target,
                    operation=Operation.CREATE,
                    status=unknown.status,
                    code=unknown.code,
                    request_id=unknown.request_id,
                ) from exc

        return await self.retry_policy.run(send, on_unknown_outcome=look_up)

    async def find_created(
        self, payload: Mapping[str, Any], *, owned: OwnedHook | None = None
    ) -> CreateResult | None:
        """The customer a create of ``payload`` made: search for records equal to it
        (:meth:`equal_matches`).

        Returns ``adopted`` (one match), ``ambiguous`` (several; never guessed) or ``None``
        (no match: creating it is safe).
        """
        hits = await self.equal_matches(payload, owned=owned)
        if not hits:
            return None
        if len(hits) == 1:
            return CreateResult("adopted", str(hits[0]["id"]), hits[0])
        ids = tuple(sorted(str(r["id"]) for r in hits))
        return CreateResult("ambiguous", None, None, candidates=ids)

    async def equal_matches(
        self, payload: Mapping[str, Any], *, owned: OwnedHook | None = None
    ) -> list[dict[str, Any]]:
        """Records equal to ``payload``, every field it sets and no other, oldest first.

        Records whose id ``owned`` reports as another key's are left out: they are that key's
        customer, whatever their content.
        """
        body = self._request_body(payload)
        sent = scalar_fields(body)
        # Search on the text fields; the others are compared below, record by record.
        searchable = {k: v for k, v in sent.items() if k not in NOT_TEXT_FILTERABLE}
        records = await self._search_all(rsql.all_equal(searchable), Operation.FIND_CREATED)
        hits = [r for r in records if equals_sent(r, sent)]
        if hits and owned is not None:
            taken = set(owned([str(r["id"]) for r in hits]))
            hits = [r for r in hits if str(r["id"]) not in taken]
        return hits

    def superseded(self, payload: Mapping[str, Any]) -> str | None:
        """Why a create of ``payload`` cannot be looked up by this client, or ``None``.

        A create sent to another entity (the setting was wrong, or moved) cannot be looked up
        by a client bound to the current entity, and must not stop every later run: it is
        planned again under the current entity, and the answer names the entity to check for
        a stray customer.
        """
        sent_to = payload.get("entity_id", self.entity_id)
        if sent_to == self.entity_id:
            return None
        return (
            f"superseded: sent to entity {sent_to!r} with an unknown outcome; the entity id is"
            f" now {self.entity_id!r}, where it is planned again (check {sent_to!r} for a stray"
            " customer)"
        )

    # -- read ---------------------------------------------------------------------------

    async def get(self, remote_id: str) -> dict[str, Any]:
        """``GET /v2/customer/{id}``; raises :class:`RecordRejected` (404) when absent."""
        response = await self._caller.call(Operation.GET, "GET", ITEM, _item(remote_id))
        return _record(response, Operation.GET)

    async def fetch_many(self, remote_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Records by id, in bulk: ``search=entity_id==E;id=in=(…)`` per chunk.

        Chunks hold at most ``fetch_batch_size`` ids and keep the URL under
        ``max_url_bytes``. A chunk is paged until a short page or until every id came back
        (ids are unique, so a full page holding every id is the last). Ids not found, or
        belonging to another entity, are absent from the result.
        """
        wanted = list(dict.fromkeys(remote_ids))
        out: dict[str, dict[str, Any]] = {}
        # Chunks go out concurrently; the limiter spaces and caps them.
        for found in await asyncio.gather(*(self._fetch_chunk(c) for c in self._chunks(wanted))):
            out.update(found)
        return out

    async def get_many(self, remote_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Alias of :meth:`fetch_many`."""
        return await self.fetch_many(remote_ids)

    def _chunks(self, ids: list[str]) -> list[list[str]]:
        scope = rsql.eq("entity_id", self.entity_id) + ";id=in=()"
        budget = self.config.max_url_bytes - len(self.base_url) - _URL_OVERHEAD
        budget -= rsql.encoded_len(scope)
        chunks: list[list[str]] = []
        current: list[str] = []
        used = 0
        for remote_id in ids:
            cost = rsql.encoded_len(rsql.quote(remote_id)) + 3  # the encoded ","
            if current and (len(current) >= self.config.fetch_batch_size or used + cost > budget):
                chunks.append(current)
                current, used = [], 0
            current.append(remote_id)
            used += cost
        if current:
            chunks.append(current)
        return chunks

    async def _fetch_chunk(self, chunk: list[str]) -> dict[str, dict[str, Any]]:
        search = rsql.and_(rsql.eq("entity_id", self.entity_id), rsql.in_("id", chunk))
        wanted = set(chunk)
        found: dict[str, dict[str, Any]] = {}
        size = len(chunk)
        page = 1
        while True:
            items = await self._page(Operation.GET_MANY, search, page, size)
            for item in items:
                remote_id = str(item.get("id"))
                if remote_id in wanted:
                    found[remote_id] = item
            if len(items) < size or len(found) == len(wanted):
                return found
            page += 1

    async def find(self, criteria: Mapping[str, str]) -> list[dict[str, Any]]:
        """Records of this entity whose fields equal ``criteria`` (AND; dotted names such as
        ``billing.last_name`` allowed), all pages."""
        if not criteria:
            raise ValueError("find needs at least one criterion")
        return await self._search_all(rsql.all_equal(criteria), Operation.FIND)

    async def find_by_email(self, email: str) -> list[dict[str, Any]]:
        """Records with this ``email_address``."""
        return await self.find({"email_address": email})

    async def find_by_company_registration_number(self, number: str) -> list[dict[str, Any]]:
        """Records with this ``company_registration_number``."""
        return await self.find({"company_registration_number": number})

    async def search(self, rsql_filter: str) -> list[dict[str, Any]]:
        """Records of this entity matching a raw RSQL filter, all pages."""
        return await self._search_all(rsql_filter, Operation.SEARCH)

    async def _search_all(self, rsql_filter: str, operation: Operation) -> list[dict[str, Any]]:
        search = rsql.and_(rsql.eq("entity_id", self.entity_id), rsql_filter)
        size = self.config.page_size
        seen: dict[str, dict[str, Any]] = {}
        page = 1
        while True:
            items = await self._page(operation, search, page, size)
            for item in items:
                seen.setdefault(str(item.get("id")), item)
            if len(items) < size:
                return list(seen.values())
            page += 1

    async def _page(self, operation: Operation, search: str, page: int, size: int) -> list[Any]:
        params: dict[str, str | int] = {
            "search": search,
            "page_number": page,
            "page_size": size,
            # Oldest first: records created while we page land on later pages, not earlier.
            "order_criteria": "created_at",
            "order_by": "ASC",
        }
        response = await self._caller.call(operation, "GET", COLLECTION, COLLECTION, params=params)
        items = json_body(response, provider=self.target, operation=operation)
        if not isinstance(items, list):
            raise RecordRejected(
                "search answered something other than a JSON array",
                provider=self.target,
                operation=operation,
                status=response.status_code,
            )
        return items

    # -- write --------------------------------------------------------------------------

    async def update(self, remote_id: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /v2/customer/{id}`` with the full ``CustomerRequest`` (the provider
        replaces the record's fields, so send the merged record, not a diff)."""
        body = self._request_body(payload)
        response = await self._caller.call(
            Operation.UPDATE, "POST", ITEM, _item(remote_id), body=body
        )
        return _record(response, Operation.UPDATE)

    async def delete(self, remote_id: str) -> CloseResult:
        """``DELETE /v2/customer/{id}``: 204 -> ``deleted``; 404 -> ``already_gone``."""
        state = CallState()
        try:
            await self._caller.call(Operation.DELETE, "DELETE", ITEM, _item(remote_id), state=state)
        except RecordRejected as exc:
            if exc.status != 404:
                raise
            # After an attempt whose answer was lost, the 404 is our own delete's doing.
            return CloseResult("deleted" if state.unknown_outcome else "already_gone")
        return CloseResult("deleted")

    async def close(self, remote_id: str) -> CloseResult:
        """Closing a Verifone customer deletes it."""
        return await self.delete(remote_id)

    async def erase(self, remote_id: str) -> EraseResult:
        """Erasure is a delete: Verifone's ``DELETE`` removes the customer and its data."""
        deleted = await self.delete(remote_id)
        return EraseResult("deleted" if deleted.outcome == "deleted" else "already_gone")

    async def deactivate_instrument(self, remote_id: str, token: str) -> bool:
        """Not offered by Verifone's Customer API."""
        raise NotSupported(
            "Verifone customers have no payment instruments in this API",
            provider=self.target,
            operation=Operation.DEACTIVATE_INSTRUMENT,
        )

    def _request_body(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        body = {k: v for k, v in payload.items() if k not in READ_ONLY_FIELDS}
        entity = body.setdefault("entity_id", self.entity_id)
        if entity != self.entity_id:
            # Writing into another entity than the one configured is never what was meant.
            raise ConfigError(
                "payload entity_id differs from the client's entity_id",
                provider=self.target,
                operation=Operation.CONFIGURE,
                code="ENTITY_MISMATCH",
            )
        return body


def _auth_header(token: Secret | None, user: str | None, api_key: Secret | None) -> str:
    for name, value in (("token", token), ("api_key", api_key)):
        if value is not None and not isinstance(value, Secret):
            raise TypeError(f"{name} must be a connectors.secret.Secret")
    if token:
        return f"Bearer {token.reveal()}"
    if user and api_key:
        pair = f"{user}:{api_key.reveal()}".encode()
        return f"Basic {base64.b64encode(pair).decode('ascii')}"
    raise ConfigError(
        "Verifone needs a token (Bearer) or user + api_key (Basic)",
        provider="verifone",
        operation=Operation.CONFIGURE,
    )


def _item(remote_id: str) -> str:
    return f"{COLLECTION}/{path_segment(remote_id)}"


def _record(response: httpx.Response, operation: Operation) -> dict[str, Any]:
    data = json_body(response, provider="verifone", operation=operation)
    if isinstance(data, dict) and "id" in data:
        return data
    error = UnknownOutcome if operation is Operation.CREATE else RecordRejected
    # A create answered 200 without a usable record may still have created one: look it up.
    raise error(
        "the response is not a customer record",
        provider="verifone",
        operation=operation,
        status=response.status_code,
        code="BAD_BODY",
    )
