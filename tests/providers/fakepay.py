"""A third provider, declared entirely outside custsync's packages: "Fakepay".

It proves the registry is the only joint: a target description (its own body shape with a
nested name, a constant ``account`` from a setting, server-assigned ids, its own content
codes), settings, and a connector over :class:`httpx.MockTransport` speaking a small
in-memory API. Nothing under ``pipelines/`` knows it.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from connectors.config import ClientConfig
from connectors.errors import NotSupported, RecordRejected
from connectors.http import CallRecord, OnCall, call_ref
from connectors.limiter import LimiterStats
from connectors.operation import Operation
from connectors.protocol import Capabilities, CloseResult, CreateResult, EraseResult, OwnedHook
from connectors.providers.base import (
    MissingCredentials,
    Provider,
    ProviderSetting,
    ProviderSettings,
)
from connectors.providers.description import Field, TargetDescription
from connectors.secret import Secret

NAME = "fakepay"
BASE_URL = "http://fakepay.invalid"  # never dialled: the transport answers in memory
TOKEN = "fk_test_token"


@dataclass
class FakepayApi:
    """The provider's side: customers by id, and every request it answered."""

    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, int]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def handle(self, request: httpx.Request) -> httpx.Response:
        response = self._answer(request)
        self.requests.append((request.method, request.url.path, response.status_code))
        return response

    def _answer(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != f"Token {TOKEN}":
            return httpx.Response(401, json={"error": "unauthorized"})
        parts = request.url.path.strip("/").split("/")
        if parts == ["people"] and request.method == "POST":
            body = orjson.loads(request.content)
            if "@" not in str(body.get("email", "@")) or not body.get("account"):
                return httpx.Response(422, json={"error": "invalid"})
            remote_id = f"P{next(self._ids):05d}"
            self.customers[remote_id] = {**body, "id": remote_id, "created": time.time()}
            return httpx.Response(201, json=self.customers[remote_id])
        if len(parts) == 2 and parts[0] == "people":
            found = self.customers.get(parts[1])
            if found is None:
                return httpx.Response(404, json={"error": "not found"})
            if request.method == "GET":
                return httpx.Response(200, json=found)
            if request.method == "PUT":
                body = orjson.loads(request.content)
                self.customers[parts[1]] = {**body, "id": parts[1], "created": found["created"]}
                return httpx.Response(200, json=self.customers[parts[1]])
            if request.method == "DELETE":
                del self.customers[parts[1]]
                return httpx.Response(204)
        return httpx.Response(405, json={"error": "no such route"})


class FakepayClient:
    """The connector: the calls custsync's pipeline drives, each logged as a call record."""

    target = NAME
    # Its creates are not looked up after an unknown outcome: the in-memory API always answers.
    capabilities = Capabilities(
        delete=True, list=False, instruments=False, client_ids=False, look_up_creates=False
    )

    def __init__(
        self, api: FakepayApi, token: Secret, base_url: str, on_call: OnCall | None
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url,
            transport=httpx.MockTransport(api.handle),
            headers={"authorization": f"Token {token.reveal()}"},
        )
        self._on_call = on_call
        self._calls = 0

    async def _call(
        self, operation: Operation, method: str, template: str, path: str, body: Any = None
    ) -> httpx.Response:
        started, clock = datetime.now(UTC), time.perf_counter()
        response = await self._http.request(
            method, path, content=None if body is None else orjson.dumps(body)
        )
        self._calls += 1
        if self._on_call is not None:
            self._on_call(
                CallRecord(
                    target=NAME,
                    operation=operation,
                    method=method,
                    path_template=template,
                    status=response.status_code,
                    error_code=None if response.is_success else str(response.status_code),
                    attempt=1,
                    latency_ms=(time.perf_counter() - clock) * 1000,
                    started_at=started,
                    request_id=f"fk-{self._calls}",
                    ref=call_ref.get(),
                )
            )
        if response.status_code >= 400 and response.status_code != 404:
            raise RecordRejected(
                response.json().get("error", "refused"),
                provider=NAME,
                operation=operation,
                status=response.status_code,
            )
        return response

    async def create(
        self, payload: Mapping[str, Any], *, owned: OwnedHook | None = None
    ) -> CreateResult:
        response = await self._call(Operation.CREATE, "POST", "/people", "/people", dict(payload))
        record = response.json()
        return CreateResult("created", str(record["id"]), record)

    async def find_created(
        self, payload: Mapping[str, Any], *, owned: OwnedHook | None = None
    ) -> CreateResult | None:
        return None

    async def equal_matches(
        self, payload: Mapping[str, Any], *, owned: OwnedHook | None = None
    ) -> list[dict[str, Any]]:
        raise NotSupported("no search", provider=NAME, operation=Operation.FIND)

    def superseded(self, payload: Mapping[str, Any]) -> str | None:
        return None

    async def fetch_many(self, remote_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for remote_id in remote_ids:
            response = await self._call(
                Operation.GET, "GET", "/people/{id}", f"/people/{remote_id}"
            )
            if response.status_code == 200:
                out[remote_id] = response.json()
        return out

    async def update(self, remote_id: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        response = await self._call(
            Operation.UPDATE, "PUT", "/people/{id}", f"/people/{remote_id}", dict(payload)
        )
        if response.status_code == 404:
            raise RecordRejected("gone", provider=NAME, operation=Operation.UPDATE, status=404)
        record: dict[str, Any] = response.json()
        return record

    async def close(self, remote_id: str) -> CloseResult:
        response = await self._call(
            Operation.DELETE, "DELETE", "/people/{id}", f"/people/{remote_id}"
        )
        return CloseResult("already_gone" if response.status_code == 404 else "deleted")

    async def erase(self, remote_id: str) -> EraseResult:
        closed = await self.close(remote_id)
        return EraseResult("deleted" if closed.outcome == "deleted" else "already_gone")

    async def deactivate_instrument(self, remote_id: str, token: str) -> bool:
        raise NotSupported(
            "no instruments", provider=NAME, operation=Operation.DEACTIVATE_INSTRUMENT
        )

    async def find(self, criteria: Mapping[str, str]) -> list[dict[str, Any]]:
        raise NotSupported("no search", provider=NAME, operation=Operation.FIND)

    def stats(self) -> LimiterStats:
        return LimiterStats("unlimited", None, 0, 0, 0, 0.0, 0, self._calls)

    async def aclose(self) -> None:
        await self._http.aclose()


TARGET = TargetDescription(
    name=NAME,
    title="Fakepay",
    fields=(
        Field("first_name", "name.first", 30),
        Field("last_name", "name.last", 30),
        Field("email", "email", 120, format="email"),
        Field("phone", "phone", 13, r"^\+[0-9 ]+$"),  # refuses the 14-character ones
    ),
    content_codes={"account": "901", "name.first": "902", "name.last": "903", "email": "904"}
    | {"phone": "905"},
    constants={"account": "account_id"},
)


def provider(api: FakepayApi) -> Provider:
    """Fakepay, its connector answering from ``api``."""

    def connect(
        settings: ProviderSettings,
        config: ClientConfig,
        transport: httpx.AsyncBaseTransport | None,
        on_call: OnCall | None,
    ) -> FakepayClient:
        token = settings.secret("token")
        if token is None:
            raise MissingCredentials("no Fakepay credentials: set CUSTSYNC_FAKEPAY_TOKEN")
        return FakepayClient(api, token, settings.base_url, on_call)

    return Provider(
        target=TARGET,
        settings=(
            ProviderSetting("base_url", BASE_URL),
            ProviderSetting("token", secret=True),
            ProviderSetting("account_id"),
        ),
        capabilities=FakepayClient.capabilities,
        connect=connect,
    )
