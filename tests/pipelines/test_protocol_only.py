"""The executor and crash recovery drive any connector through the protocol and its
capabilities: a look-up-creates connector that is no ``VerifoneClient`` gets the same look-ups."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import pytest

from connectors.errors import NotSupported
from connectors.limiter import LimiterStats
from connectors.operation import Operation
from connectors.protocol import (
    Capabilities,
    CloseResult,
    CreateResult,
    CustomerConnector,
    EraseResult,
    OwnedHook,
)
from pipelines.batch import BatchResult, ExecutionOptions, PlanRow
from pipelines.executor import BatchExecutor
from pipelines.pending import ENTITY_CHANGED, settle_pending

PAYLOAD = {"scope": "s-1", "company_name": "Acme"}


class LookingUp:
    """A server-assigned-id provider with look-ups, known to the pipeline only by its protocol."""

    target = "verifone"  # the executor's outcome rows name a known target
    capabilities = Capabilities(
        delete=True, list=True, instruments=False, client_ids=False, look_up_creates=True
    )

    def __init__(self, existing: dict[str, dict[str, Any]] | None = None) -> None:
        self.records = dict(existing or {})
        self.calls: list[str] = []

    def _equal(self, payload: Mapping[str, Any], owned: OwnedHook | None) -> list[dict[str, Any]]:
        hits = [r for r in self.records.values() if {**r, "id": None} == {**payload, "id": None}]
        taken = set(owned([r["id"] for r in hits])) if owned is not None else set()
        return [r for r in hits if r["id"] not in taken]

    async def create(
        self, payload: Mapping[str, Any], *, owned: OwnedHook | None = None
    ) -> CreateResult:
        self.calls.append("create")
        rid = f"new-{len(self.records)}"
        self.records[rid] = {"id": rid, **payload}
        return CreateResult("created", rid, self.records[rid])

    async def find_created(
        self, payload: Mapping[str, Any], *, owned: OwnedHook | None = None
    ) -> CreateResult | None:
        self.calls.append("find_created")
        hits = self._equal(payload, owned)
        return CreateResult("adopted", hits[0]["id"], hits[0]) if len(hits) == 1 else None

    async def equal_matches(
        self, payload: Mapping[str, Any], *, owned: OwnedHook | None = None
    ) -> list[dict[str, Any]]:
        self.calls.append("equal_matches")
        return self._equal(payload, owned)

    def superseded(self, payload: Mapping[str, Any]) -> str | None:
        return None if payload.get("scope") == "s-1" else "sent to another scope"

    async def fetch_many(self, remote_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return {r: self.records[r] for r in remote_ids if r in self.records}

    async def update(self, remote_id: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        self.records[remote_id] = {"id": remote_id, **payload}
        return self.records[remote_id]

    async def close(self, remote_id: str) -> CloseResult:
        return CloseResult("deleted" if self.records.pop(remote_id, None) else "already_gone")

    async def erase(self, remote_id: str) -> EraseResult:
        return EraseResult("deleted" if self.records.pop(remote_id, None) else "already_gone")

    async def deactivate_instrument(self, remote_id: str, token: str) -> bool:
        raise NotSupported("none", provider=self.target, operation=Operation.DEACTIVATE_INSTRUMENT)

    async def find(self, criteria: Mapping[str, str]) -> list[dict[str, Any]]:
        return []

    def stats(self) -> LimiterStats:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


def _row(key: str, payload: Mapping[str, Any] = PAYLOAD) -> PlanRow:
    return PlanRow(
        plan_id=f"p-{key}",
        external_id=key,
        action="create",
        remote_id=None,
        payload=orjson.dumps(payload).decode(),
        content_hash="h",
        content_key=1,
    )


def test_the_fake_fits_the_protocol() -> None:
    assert isinstance(LookingUp(), CustomerConnector)


def test_a_key_to_verify_first_is_looked_up_through_the_protocol() -> None:
    fake = LookingUp({"old": {"id": "old", **PAYLOAD}})
    executor = BatchExecutor(
        fake, run_id="run", options=ExecutionOptions(verify_first=frozenset({"A"}))
    )
    result = asyncio.run(executor.run([_row("A")]))
    assert fake.calls == ["find_created"], "found: adopted, not created again"
    assert (result.outcomes[0]["result"], result.outcomes[0]["remote_id"]) == ("adopted", "old")


@pytest.mark.parametrize(("look_up", "expected"), [(True, "adopted"), (False, "skipped")])
def test_crash_recovery_looks_up_only_when_creates_need_it(look_up: bool, expected: str) -> None:
    fake = LookingUp({"made": {"id": "made", **PAYLOAD}})
    fake.capabilities = Capabilities(
        delete=True, list=True, instruments=False, client_ids=False, look_up_creates=look_up
    )
    executor = BatchExecutor(fake, run_id="run")
    result = BatchResult()
    unsettled, halted = asyncio.run(
        settle_pending(fake, executor, [_row("A")], result, lambda: None)
    )
    assert unsettled == [] and halted is None
    assert result.outcomes[0]["result"] == expected
    assert fake.calls == (["equal_matches"] if look_up else [])


def test_crash_recovery_asks_the_connector_whether_a_create_is_superseded() -> None:
    fake = LookingUp()
    executor = BatchExecutor(fake, run_id="run")
    result = BatchResult()
    asyncio.run(
        settle_pending(
            fake, executor, [_row("A", {**PAYLOAD, "scope": "s-0"})], result, lambda: None
        )
    )
    (outcome,) = result.outcomes
    assert (outcome["result"], outcome["error_code"]) == ("skipped", ENTITY_CHANGED)
    assert outcome["message"] == "sent to another scope" and fake.calls == []
