"""Both connectors against the sandbox on loopback: every operation, 429 storms, injected
5xx, resets and commit-then-fail; afterwards the sandbox holds no duplicate customer."""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest

from connectors.config import ClientConfig
from connectors.errors import AuthError, RecordRejected
from connectors.providers.sumup.client import SumUpClient
from connectors.providers.verifone.client import VerifoneClient
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.server import SandboxServer
from connectors.secret import Secret
from tests.connectors.fakes import Calls

pytestmark = pytest.mark.e2e

ENTITY = "sandbox-entity"
FAULTS = ("500", "reset", "commit_500", "commit_reset")
# Fast retries: the sandbox answers in microseconds; Retry-After clamped to keep tests quick.
FAST = ClientConfig(
    rate=math.inf,
    backoff_base_s=0.005,
    backoff_max_s=0.05,
    max_retry_after_s=0.05,
    settle_delay_s=0.0,
    max_attempts=8,
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(seed=7)) as sb:
        yield sb


@pytest.fixture
def sb(sandbox: SandboxServer) -> SandboxServer:
    sandbox.admin.reset(config=True)
    return sandbox


def _verifone(sb: SandboxServer, config: ClientConfig = FAST, **kw: Any) -> VerifoneClient:
    kw.setdefault("token", Secret("sandbox-token"))
    return VerifoneClient(sb.base_url, entity_id=ENTITY, config=config, **kw)


def _sumup(sb: SandboxServer, config: ClientConfig = FAST, **kw: Any) -> SumUpClient:
    kw.setdefault("api_key", Secret("sup_sk_sandbox"))
    return SumUpClient(sb.base_url, config=config, **kw)


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def _vf_payload(i: int) -> dict[str, Any]:
    return {
        "entity_id": ENTITY,
        "email_address": f"person{i}@example.com",
        "billing": {"first_name": "Ann", "last_name": f"Lee {i}", "country_code": "GB"},
    }


def _su_payload(i: int) -> dict[str, Any]:
    return {
        "customer_id": f"cust/{i}",
        "personal_details": {"first_name": "Bo", "last_name": str(i)},
    }


def test_verifone_every_operation(sb: SandboxServer) -> None:
    async def main() -> None:
        async with _verifone(sb) as vf:
            made = await vf.create(_vf_payload(1))
            assert made.outcome == "created" and made.remote_id
            rid = made.remote_id
            assert (await vf.get(rid))["email_address"] == "person1@example.com"
            assert [r["id"] for r in await vf.find_by_email("person1@example.com")] == [rid]
            assert await vf.find({"billing.last_name": "Lee 1"}) != []
            assert await vf.search("email_address==nobody@example.com") == []
            updated = await vf.update(rid, {**_vf_payload(1), "company_name": "Lee Ltd"})
            assert updated["company_name"] == "Lee Ltd"
            many = await vf.fetch_many([rid, "00000000-0000-4000-8000-000000000000"])
            assert list(many) == [rid]
            assert (await vf.close(rid)).outcome == "deleted"
            assert (await vf.close(rid)).outcome == "already_gone"
            with pytest.raises(RecordRejected):
                await vf.get(rid)

    _run(main())
    assert sb.admin.state()["verifone"]["customers"] == []


def test_sumup_every_operation(sb: SandboxServer) -> None:
    async def main() -> None:
        async with _sumup(sb) as su:
            made = await su.create(_su_payload(1))
            assert (made.outcome, made.remote_id) == ("created", "cust/1")
            again = await su.create(_su_payload(1))
            assert again.outcome == "adopted" and again.record == made.record
            assert (await su.get("cust/1"))["personal_details"]["last_name"] == "1"
            await su.update("cust/1", {"personal_details": {"email": "bo@example.com"}})
            many = await su.fetch_many(["cust/1", "nobody"])
            assert many["cust/1"]["personal_details"]["email"] == "bo@example.com"
            assert list(many) == ["cust/1"]
            sb.admin.seed_instruments("cust/1", 3)
            tokens = [i["token"] for i in await su.list_instruments("cust/1")]
            assert await su.deactivate_instrument("cust/1", tokens[0]) is True
            assert await su.deactivate_instrument("cust/1", tokens[0]) is False
            closed = await su.close("cust/1")
            assert closed.outcome == "deactivated" and set(closed.deactivated) == set(tokens[1:])
            assert (await su.close("nobody")).outcome == "already_gone"

    _run(main())
    instruments = sb.admin.state()["sumup"]["instruments"]["cust/1"]
    assert [i["active"] for i in instruments] == [False, False, False]


def test_bulk_fetch_costs_one_call_per_chunk(sb: SandboxServer) -> None:
    seeded = sb.admin.seed_verifone([_vf_payload(i) for i in range(230)])
    ids = [r["id"] for r in seeded]
    calls = Calls()

    async def main() -> dict[str, Any]:
        async with _verifone(sb, on_call=calls) as vf:
            return await vf.fetch_many(ids)

    assert set(_run(main())) == set(ids)
    assert len(calls) == 3  # 100 + 100 + 30


def _no_duplicates(state: dict[str, Any]) -> None:
    emails = Counter(c.get("email_address") for c in state["verifone"]["customers"])
    assert [e for e, n in emails.items() if n > 1] == []
    ids = Counter(c["customer_id"] for c in state["sumup"]["customers"])
    assert [c for c, n in ids.items() if n > 1] == []


def test_faults_never_duplicate_and_every_write_lands(sb: SandboxServer) -> None:
    sb.admin.configure(fault_rate=0.3, fault_kinds=list(FAULTS), seed=3)
    calls = Calls()

    async def main() -> tuple[list[Any], list[Any]]:
        async with _verifone(sb, on_call=calls) as vf, _sumup(sb, on_call=calls) as su:
            vf_made = await asyncio.gather(*(vf.create(_vf_payload(i)) for i in range(40)))
            su_made = await asyncio.gather(*(su.create(_su_payload(i)) for i in range(40)))
            ids = [m.remote_id for m in vf_made]
            await asyncio.gather(
                *(vf.update(ids[i], {**_vf_payload(i), "company_name": "X"}) for i in range(20))
            )
            closed = await asyncio.gather(*(vf.close(ids[i]) for i in range(30, 40)))
            assert {c.outcome for c in closed} == {"deleted"}
            await asyncio.gather(
                *(
                    su.update(f"cust/{i}", {"personal_details": {"email": "e@x.com"}})
                    for i in range(10)
                )
            )
            return vf_made, su_made

    vf_made, su_made = _run(main())
    counters = sb.admin.counters()
    # Every request the server saw was one attempt we recorded (no hidden client retry).
    assert counters["total"] == len(calls)
    faults = counters["faults"]
    assert sum(faults.values()) > 20  # the run really was hit
    assert {"commit_500", "commit_reset", "500", "reset"} <= set(faults)
    assert {m.outcome for m in vf_made} <= {"created", "adopted"}
    assert {m.outcome for m in su_made} <= {"created", "adopted"}
    assert any(c.status is None for c in calls)  # resets seen as "no response"
    assert any(c.operation == "reconcile" for c in calls)  # unknown creates were searched
    state = sb.admin.state()
    _no_duplicates(state)
    customers = {c["id"]: c for c in state["verifone"]["customers"]}
    assert len(customers) == 30
    assert {m.remote_id for m in vf_made[:30]} == set(customers)
    assert all(customers[m.remote_id].get("company_name") == "X" for m in vf_made[:20])
    sumup = {c["customer_id"]: c for c in state["sumup"]["customers"]}
    assert len(sumup) == 40
    assert all(sumup[f"cust/{i}"]["personal_details"]["email"] == "e@x.com" for i in range(10))


@pytest.mark.parametrize("kind", ["commit_500", "commit_reset"])
def test_commit_then_fail_create_is_adopted_not_repeated(sb: SandboxServer, kind: str) -> None:
    sb.admin.configure(fault_rate=1.0, fault_kinds=[kind])  # every write commits, then fails
    calls = Calls()

    async def main() -> Any:
        async with _verifone(sb, on_call=calls) as vf:
            return await vf.create(_vf_payload(5))

    result = _run(main())
    assert result.outcome == "adopted"
    assert [c.operation for c in calls] == ["create", "reconcile"]
    (stored,) = sb.admin.state()["verifone"]["customers"]
    assert stored["id"] == result.remote_id


def test_find_created_finds_a_customer_with_a_shipping_phone(sb: SandboxServer) -> None:
    # The published search types shipping.phone as a number: filtering it with == on a phone
    # such as "+44 20 7946 0000" is a 400, so the look-up must compare it locally instead.
    payload = {**_vf_payload(7), "shipping": {"phone": "+44 20 7946 0000", "city": "London"}}
    (seeded,) = sb.admin.seed_verifone([payload])

    async def main() -> Any:
        async with _verifone(sb) as vf:
            return await vf.find_created(payload)

    result = _run(main())
    assert result is not None and result.outcome == "adopted"
    assert result.remote_id == seeded["id"]


def test_several_identical_records_are_ambiguous_never_guessed(sb: SandboxServer) -> None:
    sb.admin.seed_verifone([_vf_payload(9), _vf_payload(9)])
    sb.admin.configure(fault_rate=1.0, fault_kinds=["commit_500"])

    async def main() -> Any:
        async with _verifone(sb) as vf:
            return await vf.create(_vf_payload(9))

    result = _run(main())
    assert result.outcome == "ambiguous" and len(result.candidates) == 3
    assert len(sb.admin.state()["verifone"]["customers"]) == 3  # nothing more was created


def test_429_storm_pauses_the_target_and_every_call_succeeds(sb: SandboxServer) -> None:
    sb.admin.configure(rate_limit=100, burst=5)
    seeded = sb.admin.seed_verifone([_vf_payload(1)])
    calls = Calls()
    storm = ClientConfig(
        rate=None,
        adaptive_start_rate=1000,
        max_retry_after_s=0.2,
        backoff_base_s=0.01,
        max_attempts=20,
    )

    async def main() -> Any:
        async with _verifone(sb, config=storm, on_call=calls) as vf:
            await asyncio.gather(*(vf.get(seeded[0]["id"]) for _ in range(150)))
            return vf.stats()

    stats = _run(main())
    statuses = Counter(c.status for c in calls)
    assert statuses[200] == 150
    assert statuses[429] == stats.http_429 > 0
    assert stats.pauses > 0 and stats.decreases > 0
    assert stats.rate is not None and stats.rate < 1000
    assert stats.retries == statuses[429]


def test_auth_failures_are_fatal(sb: SandboxServer) -> None:
    async def main() -> None:
        async with _verifone(sb, token=Secret("wrong")) as vf:
            with pytest.raises(AuthError) as info:
                await vf.find_by_email("a@b.c")
            assert info.value.status == 401
        async with VerifoneClient(
            sb.base_url, entity_id="other-entity", token=Secret("sandbox-scoped-token"), config=FAST
        ) as scoped:
            with pytest.raises(AuthError) as info:
                await scoped.create({**_vf_payload(1), "entity_id": "other-entity"})
            assert info.value.status == 403
        async with _sumup(sb, api_key=Secret("sup_sk_sandbox_readonly")) as su:
            with pytest.raises(AuthError) as info:
                await su.create(_su_payload(1))
            assert info.value.status == 403 and info.value.code == "FORBIDDEN"

    _run(main())


def test_no_credential_in_logs_against_a_real_server(
    sb: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sb.admin.configure(fault_rate=0.5, fault_kinds=list(FAULTS), seed=5)

    async def main() -> None:
        async with _verifone(sb, user="sandbox-user", api_key=Secret("sandbox-key")) as vf:
            await asyncio.gather(*(vf.create(_vf_payload(i)) for i in range(10)))
        async with _sumup(sb) as su:
            await asyncio.gather(*(su.create(_su_payload(i)) for i in range(10)))

    _run(main())
    for leak in ("sandbox-key", "sup_sk_sandbox", "c2FuZGJveC11c2VyOnNhbmRib3gta2V5"):
        assert leak not in caplog.text
