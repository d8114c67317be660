"""The batch executor against an in-memory connector: outcomes, snapshot rows, stops."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import pytest

from connectors.errors import AuthError, RecordRejected, UnknownOutcome
from connectors.protocol import Capabilities, CloseResult, CreateResult, OwnedHook
from pipelines.batch import ExecutionOptions, PlanRow
from pipelines.executor import BatchExecutor

VERIFONE = Capabilities(
    delete=True, list=True, instruments=False, client_ids=False, look_up_creates=True
)


class FakeVerifone:
    """Just enough of a Verifone connector, with a call log."""

    target = "verifone"
    capabilities = VERIFONE

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str | None]] = []
        self.fail: dict[str, Exception] = {}

    def _check(self, op: str, key: str | None) -> None:
        self.calls.append((op, key))
        if key in self.fail:
            raise self.fail[key]

    async def create(
        self, payload: Mapping[str, Any], *, owned: OwnedHook | None = None
    ) -> CreateResult:
        self._check("create", payload.get("email_address"))
        rid = f"id-{len(self.records)}"
        self.records[rid] = {"id": rid, **payload}
        return CreateResult("created", rid, self.records[rid])

    async def fetch_many(self, remote_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        self._check("fetch_many", None)
        return {r: self.records[r] for r in remote_ids if r in self.records}

    async def update(self, remote_id: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        self._check("update", remote_id)
        self.records[remote_id] = {"id": remote_id, **payload}
        return self.records[remote_id]

    async def close(self, remote_id: str) -> CloseResult:
        self._check("close", remote_id)
        return CloseResult("deleted" if self.records.pop(remote_id, None) else "already_gone")

    async def deactivate_instrument(self, remote_id: str, token: str) -> bool:
        raise NotImplementedError

    async def find(self, criteria: Mapping[str, str]) -> list[dict[str, Any]]:
        self._check("find", criteria.get("email_address"))
        return [
            r for r in self.records.values()
            if all(r.get(k) == v for k, v in criteria.items() if "." not in k)
        ]  # fmt: skip

    async def aclose(self) -> None:
        return None


def row(action: str, ext: str, payload: dict[str, Any] | None = None, **kw: Any) -> PlanRow:
    return PlanRow(
        plan_id=f"{action}-{ext}",
        external_id=ext,
        action=action,
        remote_id=kw.get("remote_id"),
        payload=None if payload is None else orjson.dumps(payload).decode(),
        content_hash="h",
        base_payload=None if "base" not in kw else orjson.dumps(kw["base"]).decode(),
        reason=kw.get("reason"),
    )


def person(email: str, **extra: Any) -> dict[str, Any]:
    return {"entity_id": "e", "email_address": email, "company_name": "Acme", **extra}


def run(executor: BatchExecutor, rows: list[PlanRow]):  # type: ignore[no-untyped-def]
    return asyncio.run(executor.run(rows))


def test_update_keeps_a_remote_only_edit_and_reports_drift() -> None:
    fake = FakeVerifone()
    base = person("a@x.io", phone_number="1")
    fake.records["r1"] = {"id": "r1", **base, "work_phone": "9"}  # edited outside custsync
    source = person("a@x.io", phone_number="2")
    result = run(
        BatchExecutor(fake, run_id="run"), [row("update", "A", source, remote_id="r1", base=base)]
    )
    (outcome,) = result.outcomes
    assert outcome["result"] == "succeeded"
    assert outcome["drift_fields"] == ["work_phone"]
    assert fake.records["r1"]["work_phone"] == "9" and fake.records["r1"]["phone_number"] == "2"
    assert [op for op, _ in fake.calls] == ["fetch_many", "update"]  # one bulk fetch
    assert result.upserts[0]["remote_id"] == "r1"


def test_update_already_in_step_sends_no_write() -> None:
    fake = FakeVerifone()
    payload = person("a@x.io")
    fake.records["r1"] = {"id": "r1", **payload}
    result = run(
        BatchExecutor(fake, run_id="run"),
        [row("update", "A", payload, remote_id="r1", base=payload)],
    )
    assert result.outcomes[0]["result"] == "succeeded"
    assert [op for op, _ in fake.calls] == ["fetch_many"]


def test_update_of_a_customer_deleted_remotely_is_forgotten_for_recreation() -> None:
    fake = FakeVerifone()
    result = run(
        BatchExecutor(fake, run_id="run"), [row("update", "A", person("a@x.io"), remote_id="gone")]
    )
    assert result.outcomes[0]["result"] == "failed"
    assert result.outcomes[0]["error_code"] == "NOT_FOUND"
    assert result.deletes == ["A"] and result.upserts == []


def test_a_rejected_record_fails_alone() -> None:
    fake = FakeVerifone()
    fake.fail["bad@x.io"] = RecordRejected(
        "too long", provider="verifone", operation="create", status=400
    )
    rows = [row("create", "A", person("bad@x.io")), row("create", "B", person("ok@x.io"))]
    result = run(BatchExecutor(fake, run_id="run"), rows)
    by_key = {o["external_id"]: o for o in result.outcomes}
    assert by_key["A"]["result"] == "failed" and by_key["A"]["http_status"] == 400
    assert by_key["B"]["result"] == "succeeded"
    assert [u["external_id"] for u in result.upserts] == ["B"], "only confirmed successes advance"


def test_auth_error_stops_the_batch() -> None:
    fake = FakeVerifone()
    fake.fail["a@x.io"] = AuthError("no", provider="verifone", operation="create", status=401)
    result = run(BatchExecutor(fake, run_id="run"), [row("create", "A", person("a@x.io"))])
    assert isinstance(result.fatal, AuthError)
    assert result.outcomes == []


def test_unknown_create_outcome_keeps_the_journal_intent_pending() -> None:
    fake = FakeVerifone()
    fake.fail["a@x.io"] = UnknownOutcome("timeout", provider="verifone", operation="create")
    result = run(BatchExecutor(fake, run_id="run"), [row("create", "A", person("a@x.io"))])
    (outcome,) = result.outcomes
    assert outcome["result"] == "failed"
    assert outcome["plan_id"] is None, "no plan id: record_batch must not close the intent"


def test_a_planned_adoption_brings_the_customer_in_line_and_creates_nothing() -> None:
    fake = FakeVerifone()
    fake.records["old0"] = {"id": "old0", **person("a@x.io", work_phone="7")}
    adopt = row("adopt", "A", person("a@x.io", phone_number="5"), remote_id="old0")
    result = run(BatchExecutor(fake, run_id="run"), [adopt])
    assert result.outcomes[0]["result"] == "adopted"
    assert result.outcomes[0]["remote_id"] == "old0"
    assert [op for op, _ in fake.calls] == ["fetch_many", "update"], "get-merge-post, no create"
    assert fake.records["old0"]["phone_number"] == "5", "source fields win"
    assert fake.records["old0"]["work_phone"] == "7", "remote-only fields stay"
    assert [(u["external_id"], u["remote_id"]) for u in result.upserts] == [("A", "old0")]


@pytest.mark.parametrize(
    ("remote_id", "reason", "owner", "expected", "code"),
    [
        (None, "ambiguous: several existing customers match by email_address", None,
         "ambiguous", None),
        (None, "look-up failed: 400: bad search", None, "failed", None),
        ("gone", "exists: found by email_address", None, "failed", "NOT_FOUND"),
        ("old0", "exists: found by email_address", "OTHER", "failed", "REMOTE_ID_OWNED"),
    ],
)  # fmt: skip
def test_a_planned_adoption_never_guesses_nor_takes_another_keys_customer(
    remote_id: str | None, reason: str, owner: str | None, expected: str, code: str | None
) -> None:
    fake = FakeVerifone()
    fake.records["old0"] = {"id": "old0", **person("a@x.io")}
    executor = BatchExecutor(
        fake, run_id="run", owners=lambda ids: {i: owner for i in ids if owner is not None}
    )
    adopt = row("adopt", "A", person("a@x.io"), remote_id=remote_id, reason=reason)
    result = run(executor, [adopt])
    (outcome,) = result.outcomes
    assert (outcome["result"], outcome["error_code"]) == (expected, code)
    assert result.upserts == []
    assert not [op for op, _ in fake.calls if op in ("create", "update")]


def test_delete_forgets_and_close_keeps_a_closed_row() -> None:
    fake = FakeVerifone()
    fake.records = {"r1": {"id": "r1"}, "r2": {"id": "r2"}}
    result = run(
        BatchExecutor(fake, run_id="run"),
        [row("delete", "A", remote_id="r1"), row("close", "B", person("b@x.io"), remote_id="r2")],
    )
    assert result.deletes == ["A"]
    assert [(u["external_id"], u["status"]) for u in result.upserts] == [("B", "closed")]
    assert fake.records == {}


# -- twins: creates a look-up cannot tell apart go one at a time ------------------------------


class SlowVerifone(FakeVerifone):
    """Creates take a while; records when each one starts and ends."""

    def __init__(self) -> None:
        super().__init__()
        self.timeline: list[tuple[str, str | None]] = []

    async def create(
        self, payload: Mapping[str, Any], *, owned: OwnedHook | None = None
    ) -> CreateResult:
        key = payload.get("email_address")
        self.timeline.append(("start", key))
        await asyncio.sleep(0.01)
        try:
            return await super().create(payload)
        finally:
            self.timeline.append(("end", key))


def _twins(*groups: tuple[str, ...]) -> ExecutionOptions:
    from transforms.twins import Twins

    return ExecutionOptions(
        twins=Twins(group_of={key: min(group) for group in groups for key in group})
    )


def test_twin_creates_are_sent_one_after_another() -> None:
    fake = SlowVerifone()
    rows = [row("create", k, person(f"{k}@x.io")) for k in ("A-1", "A-2", "B")]
    result = run(BatchExecutor(fake, run_id="run", options=_twins(("A-1", "A-2"))), rows)
    assert {o["result"] for o in result.outcomes} == {"succeeded"}
    timeline = fake.timeline
    # A-2 starts only after A-1 ended; B (no twin) runs alongside
    assert timeline.index(("start", "A-2@x.io")) > timeline.index(("end", "A-1@x.io"))
    assert timeline.index(("start", "B@x.io")) < timeline.index(("end", "A-1@x.io"))
    assert len({u["remote_id"] for u in result.upserts}) == 3


def test_an_unconfirmed_twin_holds_the_rest_of_its_group_for_the_run() -> None:
    fake = FakeVerifone()
    fake.fail["A-1@x.io"] = UnknownOutcome("timeout", provider="verifone", operation="create")
    executor = BatchExecutor(fake, run_id="run", options=_twins(("A-1", "A-2", "A-3")))
    first = run(executor, [row("create", k, person(f"{k}@x.io")) for k in ("A-1", "A-2")])
    by_key = {o["external_id"]: o for o in first.outcomes}
    assert by_key["A-1"]["plan_id"] is None  # still in flight: reconciled next run
    assert by_key["A-2"]["result"] == "failed"
    assert by_key["A-2"]["error_code"] == "TWIN_UNCONFIRMED"
    assert "A-1" in by_key["A-2"]["message"]
    assert by_key["A-2"]["plan_id"] == "create-A-2", "never sent: its intent is closed"
    # a later batch of the same run holds the group's remaining twin too
    second = run(executor, [row("create", "A-3", person("A-3@x.io"))])
    assert second.outcomes[0]["error_code"] == "TWIN_UNCONFIRMED"
    assert [k for op, k in fake.calls if op == "create"] == ["A-1@x.io"]
    assert first.upserts == [] and second.upserts == []


def test_an_adoption_of_another_keys_customer_is_refused() -> None:
    class Adopting(FakeVerifone):
        async def create(
            self, payload: Mapping[str, Any], *, owned: OwnedHook | None = None
        ) -> CreateResult:
            return CreateResult("adopted", "taken", {"id": "taken", **payload})

    executor = BatchExecutor(
        Adopting(), run_id="run", owners=lambda ids: {i: "OTHER" for i in ids if i == "taken"}
    )
    result = run(executor, [row("create", "A", person("a@x.io"))])
    assert result.outcomes[0]["result"] == "failed"
    assert result.outcomes[0]["error_code"] == "REMOTE_ID_OWNED"
    assert result.upserts == []


def test_a_twin_held_behind_an_ambiguous_one_is_ambiguous_too() -> None:
    class Ambiguous(FakeVerifone):
        async def create(
            self, payload: Mapping[str, Any], *, owned: OwnedHook | None = None
        ) -> CreateResult:
            self.calls.append(("create", payload.get("email_address")))
            return CreateResult("ambiguous", None, None, candidates=("x", "y"))

    fake = Ambiguous()
    rows = [row("create", k, person("same@x.io")) for k in ("A-1", "A-2")]
    result = run(BatchExecutor(fake, run_id="run", options=_twins(("A-1", "A-2"))), rows)
    by_key = {o["external_id"]: o for o in result.outcomes}
    assert by_key["A-1"]["result"] == by_key["A-2"]["result"] == "ambiguous"
    assert by_key["A-2"]["error_code"] == "TWIN_UNCONFIRMED"
    assert len(fake.calls) == 1, "the held twin is never sent"
