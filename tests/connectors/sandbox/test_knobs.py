"""The behaviour knobs: rate limit, latency, seeded faults, commit-then-fail, reset."""

from __future__ import annotations

import time

import httpx
import pytest

from connectors.sandbox.behaviour import FaultInjector, Latency, RateLimiter, TokenBucket
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.server import SandboxServer
from tests.connectors.sandbox.conftest import SUMUP, VERIFONE, VERIFONE_BASIC, person


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_is_precise() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=200.0, burst=10, clock=clock)
    granted = 0
    for _ in range(10_000):  # one attempt per simulated millisecond, 10 s
        granted += bucket.take() == 0.0
        clock.now += 0.001
    assert granted in {10 + 200 * 10 - 1, 10 + 200 * 10}


def test_refusals_take_no_token_and_say_how_long_to_wait() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=0.5, burst=1, clock=clock)
    assert limiter.check("a") is None
    assert limiter.check("a") == 2  # 1 token at 0.5/s
    clock.now = 1.5
    assert limiter.check("a") == 1  # ceil(0.5 s), never 0
    clock.now = 2.0
    assert limiter.check("a") is None, "waiting Retry-After is enough: refusals cost nothing"
    assert limiter.check("b") is None, "each credential has its own bucket"
    assert RateLimiter(rate=None, burst=1).check("a") is None


def test_429_carries_retry_after_and_the_provider_shape(
    sb: SandboxServer, client: httpx.Client
) -> None:
    sb.admin.configure(rate_limit=0.5, burst=3)
    statuses = [client.get("/v0.1/customers/x", headers=SUMUP).status_code for _ in range(4)]
    assert statuses == [404, 404, 404, 429]
    limited = client.get("/v0.1/customers/x", headers=SUMUP)
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["content-type"] == "application/problem+json"
    assert limited.json()["type"] == "https://developer.sumup.com/problem/too-many-requests"
    assert limited.json()["status"] == 429

    # Verifone: another credential, another bucket; the body is an ErrorResponse.
    search = {"search": "id==x"}
    statuses = [
        client.get("/v2/customer", params=search, headers=VERIFONE).status_code for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    limited = client.get("/v2/customer", params=search, headers=VERIFONE)
    assert limited.json()["code"] == 429 and int(limited.headers["retry-after"]) >= 1
    assert client.get("/v2/customer", params=search, headers=VERIFONE_BASIC).status_code == 200


def test_unidentified_calls_are_not_rate_limited(sb: SandboxServer, client: httpx.Client) -> None:
    sb.admin.configure(rate_limit=0.5, burst=2)
    assert {client.get("/v0.1/customers/x").status_code for _ in range(5)} == {401}
    assert [client.get("/v0.1/customers/x", headers=SUMUP).status_code for _ in range(3)] == [
        404,
        404,
        429,
    ]


def test_latency_is_added_to_api_calls_only(sb: SandboxServer, client: httpx.Client) -> None:
    sb.admin.configure(latency_ms=150)
    start = time.perf_counter()
    client.get("/v0.1/customers/x", headers=SUMUP)
    assert time.perf_counter() - start >= 0.14  # a lower bound: a sleep never ends early
    latency = Latency(SandboxConfig(latency_ms=10, jitter_ms=5, seed=1))
    draws = [latency.draw() for _ in range(100)]
    assert all(0.010 <= d <= 0.015 for d in draws) and len(set(draws)) > 50


@pytest.mark.parametrize("status", ["500", "502", "503"])
def test_server_errors_change_nothing(sb: SandboxServer, client: httpx.Client, status: str) -> None:
    sb.admin.configure(fault_rate=1.0, fault_kinds=[status])
    response = client.post("/v2/customer", json=person(), headers=VERIFONE)
    assert response.status_code == int(status)
    assert response.json()["code"] == int(status)
    assert (status == "503") == ("retry-after" in response.headers)
    sumup = client.post("/v0.1/customers", json={"customer_id": "c"}, headers=SUMUP)
    assert sumup.status_code == int(status)
    state = sb.admin.state()
    assert state["verifone"]["customers"] == [] and state["sumup"]["customers"] == []
    assert sb.admin.counters()["faults"] == {status: 2}


def test_reset_drops_the_connection_without_a_response(
    sb: SandboxServer, client: httpx.Client
) -> None:
    sb.admin.configure(fault_rate=1.0, fault_kinds=["reset"])
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.get("/v0.1/customers/x", headers=SUMUP)
    counters = sb.admin.counters()
    assert counters["by_route"]["GET /v0.1/customers/{customer_id}"] == {"reset": 1}
    assert counters["faults"] == {"reset": 1}
    sb.admin.configure(fault_rate=0.0)
    assert client.get("/v0.1/customers/x", headers=SUMUP).status_code == 404, "the client recovers"


def test_commit_then_500_really_commits(sb: SandboxServer, client: httpx.Client) -> None:
    sb.admin.configure(fault_rate=1.0, fault_kinds=["commit_500"])
    response = client.post("/v2/customer", json=person(company_name="Kept"), headers=VERIFONE)
    assert response.status_code == 500
    kept = sb.admin.state()["verifone"]["customers"]
    assert [c["company_name"] for c in kept] == ["Kept"]
    # Reads never get a commit fault; a refused write is not turned into one either.
    assert client.get(f"/v2/customer/{kept[0]['id']}", headers=VERIFONE).status_code == 200
    assert client.post("/v2/customer", json={"entity_id": "e"}, headers=VERIFONE).status_code == 400
    deleted = client.delete(f"/v2/customer/{kept[0]['id']}", headers=VERIFONE)
    assert deleted.status_code == 500
    assert sb.admin.state()["verifone"]["customers"] == []


def test_commit_then_reset_really_commits(sb: SandboxServer, client: httpx.Client) -> None:
    sb.admin.configure(fault_rate=1.0, fault_kinds=["commit_reset"])
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.post("/v0.1/customers", json={"customer_id": "c"}, headers=SUMUP)
    assert sb.admin.state()["sumup"]["customers"] == [{"customer_id": "c"}]
    sb.admin.configure(fault_rate=0.0)
    retry = client.post("/v0.1/customers", json={"customer_id": "c"}, headers=SUMUP)
    assert retry.status_code == 409, "the retry finds what the lost answer created"
    assert sb.admin.counters()["by_route"]["POST /v0.1/customers"] == {"reset": 1, "409": 1}


def outcomes(client: httpx.Client, n: int) -> list[str]:
    result = []
    for _ in range(n):
        try:
            result.append(str(client.get("/v0.1/customers/x", headers=SUMUP).status_code))
        except (httpx.RemoteProtocolError, httpx.ReadError):
            result.append("reset")
    return result


def test_seeded_faults_are_reproducible(sb: SandboxServer, client: httpx.Client) -> None:
    sb.admin.configure(seed=42, fault_rate=0.3, fault_kinds=["500", "503", "reset"])
    first = outcomes(client, 60)
    sb.admin.reset()  # keeps the config, restarts the generators from the seed
    assert outcomes(client, 60) == first
    assert {"404", "500", "503", "reset"} <= set(first)
    sb.admin.configure(fault_rate=0.0)
    client.post("/v0.1/customers", json={"customer_id": "kept"}, headers=SUMUP)
    sb.admin.configure(seed=43, fault_rate=0.3)
    assert sb.admin.health()["sumup_customers"] == 1, "a new seed keeps the data"
    assert outcomes(client, 60) != first


def test_fault_rate_and_applicable_kinds() -> None:
    injector = FaultInjector(SandboxConfig(fault_rate=0.2, seed=1))
    drawn = [injector.draw(mutating=True) for _ in range(5000)]
    hits = [d for d in drawn if d is not None]
    assert 0.17 < len(hits) / len(drawn) < 0.23
    assert {"500", "502", "503", "reset", "commit_500", "commit_reset"} == set(hits)
    reads = FaultInjector(SandboxConfig(fault_rate=1.0, seed=1, fault_kinds=("commit_500",)))
    assert {reads.draw(mutating=False) for _ in range(100)} == {None}


def test_reset_really_resets(sb: SandboxServer, client: httpx.Client) -> None:
    sb.admin.configure(rate_limit=1000)
    client.post("/v2/customer", json=person(), headers=VERIFONE)
    client.post("/v0.1/customers", json={"customer_id": "c"}, headers=SUMUP)
    sb.admin.seed_instruments("c", 2)
    sb.admin.seed_oauth(api_keys=[{"api_key": "sup_sk_m1", "merchant": "m1"}])
    merchant = {"authorization": "Bearer sup_sk_m1"}
    assert client.post("/v0.1/customers", json={"customer_id": "c"}, headers=merchant).is_success
    assert len(sb.admin.state()["sumup"]["merchants"]["m1"]["customers"]) == 1
    sb.admin.reset()
    assert sb.admin.state() == {
        "verifone": {"customers": []},
        "sumup": {"customers": [], "instruments": {}, "merchants": {}},
    }
    assert sb.admin.counters() == {"total": 0, "by_route": {}, "faults": {}}
    assert client.get("/v0.1/customers/c", headers=merchant).status_code == 401  # key forgotten
    assert sb.admin.config()["rate_limit"] == 1000, "config is kept"
    sb.admin.reset(config=True)
    assert sb.admin.config()["rate_limit"] is None, "unless asked"
