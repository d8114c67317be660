"""The ledger: a batch's calls, outcomes and snapshot rows, typed once, in one transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import get_type_hints

import pytest

from connectors.http import CallRecord
from pipelines.batch import BatchResult
from pipelines.ledger import Ledger, call_row
from pipelines.state.frames import (
    CALLS_SCHEMA,
    OUTCOMES_SCHEMA,
    SNAPSHOT_SCHEMA,
    CallRow,
    OutcomeRow,
    SnapshotRow,
)
from pipelines.state.store import StateStore

T0 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def _call(ref: str | None, status: int | None = 201, attempt: int = 1) -> CallRecord:
    return CallRecord(
        target="sumup",
        operation="create",
        method="POST",
        path_template="/v0.1/customers",
        status=status,
        error_code=None if status else "ReadTimeout",
        attempt=attempt,
        latency_ms=12.5,
        started_at=T0,
        request_id=f"req-{ref}-{attempt}",
        ref=ref,
    )


def _outcome(run_id: str, key: str, remote_id: str) -> OutcomeRow:
    return {
        "run_id": run_id,
        "target": "sumup",
        "plan_id": f"p-{key}",
        "external_id": key,
        "action": "create",
        "result": "succeeded",
        "remote_id": remote_id,
        "http_status": 201,
        "error_class": None,
        "error_code": None,
        "message": None,
        "changed_fields": [],
        "drift_fields": [],
        "at": T0,
    }


def _upsert(key: str, remote_id: str) -> SnapshotRow:
    return {
        "external_id": key,
        "remote_id": remote_id,
        "content_hash": f"h-{key}",
        "payload": "{}",
        "status": "active",
        "content_key": 1,
    }


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    with StateStore(tmp_path / "state.duckdb") as opened:
        yield opened  # type: ignore[misc]


def _begin(store: StateStore) -> str:
    return store.begin_run(
        flow="sync", target="sumup", mode="upsert", dry_run=False, extract_paths=[], params={}
    )


def test_each_row_type_has_the_columns_of_its_frame() -> None:
    # run_id and target of a call are the batch's: record_batch fills them in
    assert [*get_type_hints(CallRow)] == [
        n for n in CALLS_SCHEMA.names() if n not in ("run_id", "target")
    ]
    assert [*get_type_hints(OutcomeRow)] == OUTCOMES_SCHEMA.names()
    assert [*get_type_hints(SnapshotRow)] == SNAPSHOT_SCHEMA.names()


def test_a_call_record_becomes_its_calls_row() -> None:
    row = call_row(_call("p-A", status=None, attempt=2))
    assert row["plan_id"] == "p-A" and row["status"] is None
    assert (row["error_code"], row["attempt"], row["request_id"]) == ("ReadTimeout", 2, "req-p-A-2")


def test_a_batch_is_recorded_with_the_calls_kept_since_the_last_one(store: StateStore) -> None:
    run_id = _begin(store)
    ledger = Ledger(store, run_id, "sumup")
    ledger.add(_call("p-A", status=None))
    ledger.add(_call("p-A", attempt=2))
    result = BatchResult(outcomes=[_outcome(run_id, "A", "r-A")], upserts=[_upsert("A", "r-A")])
    assert ledger.record(result) == 0
    assert ledger.calls == []
    calls = store.con.execute(
        "SELECT run_id, target, plan_id, status, attempt FROM calls ORDER BY attempt"
    ).fetchall()
    assert calls == [(run_id, "sumup", "p-A", None, 1), (run_id, "sumup", "p-A", 201, 2)]
    outcome = store.con.execute("SELECT plan_id, result, remote_id FROM outcomes").fetchall()
    assert outcome == [("p-A", "succeeded", "r-A")]
    assert store.snapshot("sumup")["remote_id"].to_list() == ["r-A"]

    ledger.add(_call(None))  # a late answer, recorded with an empty batch
    assert ledger.record(BatchResult()) == 0
    (count,) = store.con.execute("SELECT count(*) FROM calls").fetchone() or (0,)
    assert count == 3


def test_the_number_of_refused_snapshot_rows_is_returned(store: StateStore) -> None:
    run_id = _begin(store)
    ledger = Ledger(store, run_id, "sumup")
    ledger.record(
        BatchResult(outcomes=[_outcome(run_id, "A", "r-1")], upserts=[_upsert("A", "r-1")])
    )
    taken = BatchResult(outcomes=[_outcome(run_id, "B", "r-1")], upserts=[_upsert("B", "r-1")])
    assert ledger.record(taken) == 1  # r-1 belongs to A
    assert store.snapshot("sumup")["external_id"].to_list() == ["A"]


def test_calls_are_framed_a_column_at_a_time_as_row_by_row() -> None:
    """Issue 14: the ledger frames a batch's calls column by column; the frame is the one
    built from :func:`call_row` dicts."""
    from datetime import UTC, datetime

    from connectors.http import CallRecord
    from pipelines.ledger import calls_of
    from pipelines.state.frames import calls_frame

    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    calls = [
        CallRecord(
            target="verifone",
            operation=op,
            method="POST",
            path_template="/v2/customer",
            status=status,
            error_code=code,
            attempt=n,
            latency_ms=1.5 * n,
            started_at=started,
            request_id=f"req-{n}",
            ref=f"p-{n}" if n else None,
        )
        for n, (op, status, code) in enumerate(
            [("create", 200, None), ("create", 429, "RATE"), ("get", None, "TIMEOUT")]
        )
    ]
    assert calls_of(calls).equals(calls_frame([call_row(c) for c in calls]))
    assert calls_of([]).equals(calls_frame([]))
