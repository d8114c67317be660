"""SumUp OAuth2: the sandbox's token endpoint and the connector's refresh-once, on loopback."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connectors.config import ClientConfig
from connectors.errors import AuthError
from connectors.oauth import OAuthCredentials
from connectors.operation import Operation
from connectors.providers.base import MissingCredentials, ProviderSettings
from connectors.providers.registry import get_provider
from connectors.providers.sumup.client import SumUpClient
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.server import SandboxServer
from connectors.secret import Secret
from tests.connectors.fakes import Calls

pytestmark = pytest.mark.e2e

CLIENT_ID = "cc_platform"
CLIENT_SECRET = "cc_sk_platform_secret_value"
REFRESH = {"acme": "rt_acme_refresh_value", "bolt": "rt_bolt_refresh_value"}
FAST = ClientConfig(rate=math.inf, backoff_base_s=0.005, backoff_max_s=0.05, max_retry_after_s=0.05)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(seed=3)) as sb:
        yield sb


@pytest.fixture
def sb(sandbox: SandboxServer) -> SandboxServer:
    sandbox.admin.reset(config=True)
    sandbox.admin.seed_oauth(
        clients=[{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}],
        refresh_tokens=[
            {"refresh_token": token, "client_id": CLIENT_ID, "merchant": merchant}
            for merchant, token in REFRESH.items()
        ],
    )
    return sandbox


def _grant(merchant: str = "acme", secret: str = CLIENT_SECRET) -> OAuthCredentials:
    return OAuthCredentials(CLIENT_ID, Secret(secret), Secret(REFRESH[merchant]))


def _client(sb: SandboxServer, calls: Calls | None = None, **kw: Any) -> SumUpClient:
    kw.setdefault("oauth", _grant())
    return SumUpClient(sb.base_url, config=FAST, on_call=calls, **kw)


def _payload(i: int) -> dict[str, Any]:
    return {"customer_id": f"c{i}", "personal_details": {"first_name": "Bo", "last_name": str(i)}}


def _token_form(**form: str) -> dict[str, str]:
    base = {
        "grant_type": "refresh_token",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH["acme"],
    }
    return {**base, **form}


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "nobody"}, 401, "invalid_client"),
        ({"refresh_token": "rt_unknown"}, 400, "invalid_grant"),
    ],
)
def test_the_token_endpoint_refuses_as_rfc_6749_says(
    sb: SandboxServer, change: dict[str, str], status: int, error: str
) -> None:
    response = httpx.post(f"{sb.base_url}/token", data=_token_form(**change))
    assert (response.status_code, response.json()) == (status, {"error": error})


def test_an_access_token_works_until_it_expires(sb: SandboxServer) -> None:
    answer = httpx.post(f"{sb.base_url}/token", data=_token_form()).json()
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == 3600
    assert answer["refresh_token"] == REFRESH["acme"] and "customers.write" in answer["scope"]
    headers = {"authorization": f"Bearer {answer['access_token']}"}
    url = f"{sb.base_url}/v0.1/customers/nobody"
    assert httpx.get(url, headers=headers).status_code == 404  # authorised: no such customer
    assert sb.admin.expire_tokens() == 1
    assert httpx.get(url, headers=headers).status_code == 401


def test_each_merchant_credential_has_its_own_rate_limit_bucket(sb: SandboxServer) -> None:
    sb.admin.configure(rate_limit=0.01, burst=1)
    sb.admin.seed_oauth(api_keys=[{"api_key": "sup_sk_bolt_own", "merchant": "bolt"}])
    acme = httpx.post(f"{sb.base_url}/token", data=_token_form()).json()["access_token"]
    url = f"{sb.base_url}/v0.1/customers/nobody"

    def status(bearer: str) -> int:
        return httpx.get(url, headers={"authorization": f"Bearer {bearer}"}).status_code

    assert [status(acme), status("sup_sk_bolt_own"), status("sup_sk_sandbox")] == [404] * 3
    assert [status(acme), status("sup_sk_bolt_own")] == [429, 429]


def test_the_connector_refreshes_once_when_its_token_expires(sb: SandboxServer) -> None:
    calls = Calls()

    async def main() -> int:
        async with _client(sb, calls) as client:
            await asyncio.gather(*(client.create(_payload(i)) for i in range(5)))
            sb.admin.expire_tokens()
            # Every call in flight meets the expired token; one trade serves them all.
            await asyncio.gather(*(client.create(_payload(i)) for i in range(5, 25)))
            assert client.tokens is not None
            return client.tokens.refreshes

    assert asyncio.run(main()) == 2  # the first token, and one after the expiry
    sumup = sb.admin.state()["sumup"]
    assert len(sumup["merchants"]["acme"]["customers"]) == 25  # the merchant's own account
    assert sumup["customers"] == []
    trades = [c for c in calls if c.operation == Operation.REFRESH_TOKEN]
    assert [(c.status, c.path_template) for c in trades] == [(200, "/token")] * 2
    refused = [c for c in calls if c.status == 401]
    assert 1 <= len(refused) <= 20


def test_each_merchant_reaches_its_own_account(sb: SandboxServer) -> None:
    async def create(merchant: str, ids: range) -> list[str]:
        async with _client(sb, oauth=_grant(merchant)) as client:
            made = await asyncio.gather(*(client.create(_payload(i)) for i in ids))
            return [m.outcome for m in made]

    assert asyncio.run(create("acme", range(3))) == ["created"] * 3
    # The same ids at another merchant are new customers there, not a 409 of acme's.
    assert asyncio.run(create("bolt", range(3))) == ["created"] * 3
    merchants = sb.admin.state()["sumup"]["merchants"]
    assert {m: len(a["customers"]) for m, a in merchants.items()} == {"acme": 3, "bolt": 3}


def test_a_token_refused_again_after_the_refresh_stops_the_run(sb: SandboxServer) -> None:
    sb.admin.configure(oauth_token_lifetime_s=0)  # every token is stale on arrival

    async def main() -> AuthError:
        async with _client(sb) as client:
            with pytest.raises(AuthError) as refused:
                await client.get("c1")
            assert client.tokens is not None and client.tokens.refreshes == 2
            return refused.value

    error = asyncio.run(main())
    assert (error.status, error.operation) == (401, Operation.GET)


def test_a_refused_refresh_is_refused_credentials(
    sb: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    calls = Calls()

    async def main() -> AuthError:
        async with _client(sb, calls, oauth=_grant(secret="cc_sk_wrong_secret_value")) as client:
            with pytest.raises(AuthError) as refused:
                await client.create(_payload(1))
            return refused.value

    error = asyncio.run(main())
    assert (error.status, error.code, error.operation) == (
        401,
        "invalid_client",
        Operation.REFRESH_TOKEN,
    )
    assert sb.admin.state()["sumup"]["customers"] == []
    shown = f"{error} {error!r} {caplog.text} {calls!r}"
    for secret in ("cc_sk_wrong_secret_value", REFRESH["acme"]):
        assert secret not in shown


def test_no_oauth_secret_reaches_logs_records_or_errors(
    sb: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    calls = Calls()
    issued: list[str] = []

    async def main() -> str:
        async with _client(sb, calls) as client:
            await client.create(_payload(1))
            sb.admin.expire_tokens()
            await client.create(_payload(2))
            assert client.tokens is not None
            issued.extend(s for s in client.tokens.secrets() if s.startswith("sup_at_"))
            sb.admin.reset()  # the grant is gone: the next refresh is refused
            sb.admin.expire_tokens()
            try:
                await client.get("c1")
            except AuthError as exc:
                return f"{exc} {exc!r} {client!r} {client.tokens!r}"
            raise AssertionError("a revoked grant must be refused")

    shown = asyncio.run(main()) + caplog.text + repr(calls)
    assert issued
    for secret in (CLIENT_SECRET, REFRESH["acme"], *issued):
        assert secret not in shown


def test_the_provider_builds_an_oauth_client_from_settings() -> None:
    provider = get_provider("sumup")
    base = {s.name: s.default for s in provider.settings}
    grant = {**base, "refresh_token": Secret("rt"), "client_id": CLIENT_ID}
    with pytest.raises(MissingCredentials, match="CUSTSYNC_SUMUP_CLIENT_SECRET"):
        provider.connect(ProviderSettings("sumup", grant), FAST, None, None)
    full = {**grant, "client_secret": Secret("s")}
    client = provider.connect(ProviderSettings("sumup", full), FAST, None, None)
    assert isinstance(client, SumUpClient) and client.tokens is not None
    keyed = {**full, "api_key": Secret("sup_sk_x")}  # an API key wins over a grant
    client = provider.connect(ProviderSettings("sumup", keyed), FAST, None, None)
    assert isinstance(client, SumUpClient) and client.tokens is None
