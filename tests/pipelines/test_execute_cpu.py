"""What issue 14's CPU work changed must record exactly what was recorded before.

- A batch's rows run on a few workers instead of a task each: for any mix of rows and any
  number of workers, the outcomes, snapshot rows, deletes and changes are those of one task
  per row (``workers`` at least the number of rows), and a refusal still leaves the rows not
  sent without an outcome, for :func:`pipelines.halted.settle_unfinished` to close.
- Times are framed through integers, lists of field names through Arrow: the same columns as
  polars' own conversion.
- The heap frozen before the first batch is thawed when the run closes.
"""

from __future__ import annotations

import asyncio
import gc
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.errors import AuthError, RecordRejected
from pipelines.batch import PlanRow
from pipelines.executor import BatchExecutor
from pipelines.halted import NOT_SENT, settle_unfinished
from pipelines.state.frames import (
    CALLS_SCHEMA,
    OUTCOMES_SCHEMA,
    UTC_TIME,
    frame_of,
    outcomes_frame,
    text_list_column,
    utc_column,
)
from tests.pipelines.test_executor import FakeVerifone, person, row

ACTIONS = ("create", "update", "update_gone", "delete", "create_rejected")


def _rows(kinds: list[str]) -> tuple[FakeVerifone, list[PlanRow]]:
    fake = FakeVerifone()
    rows: list[PlanRow] = []
    for i, kind in enumerate(kinds):
        key = f"K{i:03d}"
        email = f"{key.lower()}@x.io"
        if kind == "create":
            rows.append(row("create", key, person(email)))
        elif kind == "create_rejected":
            fake.fail[email] = RecordRejected(
                "too long", provider="verifone", operation="create", status=400
            )
            rows.append(row("create", key, person(email)))
        elif kind == "update":
            base = person(email, phone_number="1")
            fake.records[f"r{i}"] = {"id": f"r{i}", **base, "work_phone": "9"}
            source = person(email, phone_number="2")
            rows.append(row("update", key, source, remote_id=f"r{i}", base=base))
        elif kind == "update_gone":
            rows.append(row("update", key, person(email), remote_id=f"gone{i}"))
        else:
            fake.records[f"r{i}"] = {"id": f"r{i}", **person(email)}
            rows.append(row("delete", key, None, remote_id=f"r{i}"))
    return fake, rows


def _recorded(kinds: list[str], workers: int) -> dict[str, Any]:
    fake, rows = _rows(kinds)
    result = asyncio.run(BatchExecutor(fake, run_id="run", workers=workers).run(rows))
    creates = {r.plan_id for r in rows if r.action == "create"}
    outcomes = sorted(
        (
            {k: v for k, v in o.items() if k != "at"}
            # A create's remote id is the fake's counter: the order of creates decides it.
            | ({"remote_id": None} if o["plan_id"] in creates else {})
            for o in result.outcomes
        ),
        key=lambda o: str(o["plan_id"]),
    )
    changes = result.changes.frame().drop("occurred_at", "remote_id").sort("plan_id", "field")
    return {
        "outcomes": outcomes,
        "upserts": sorted((u["external_id"], u["status"]) for u in result.upserts),
        "deletes": sorted(result.deletes),
        "changes": changes.to_dicts(),
        "calls": sorted(op for op, _ in fake.calls),
        "fatal": result.fatal,
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kinds=st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=40),
    workers=st.integers(min_value=1, max_value=8),
)
def test_a_few_workers_record_what_a_task_per_row_did(kinds: list[str], workers: int) -> None:
    assert _recorded(kinds, workers) == _recorded(kinds, workers=len(kinds))


@settings(max_examples=30, deadline=None)
@given(
    before=st.integers(min_value=0, max_value=20),
    after=st.integers(min_value=1, max_value=20),
    workers=st.integers(min_value=1, max_value=6),
)
def test_a_refusal_leaves_the_rows_not_sent_for_settling(
    before: int, after: int, workers: int
) -> None:
    fake, rows = _rows(["create"] * (before + 1 + after))
    refused = rows[before]
    fake.fail[orjson_email(refused)] = AuthError(
        "refused", provider="verifone", operation="create", status=401
    )
    executor = BatchExecutor(fake, run_id="run", workers=workers)
    result = asyncio.run(executor.run(rows))
    assert isinstance(result.fatal, AuthError)
    assert refused.plan_id in result.refusals
    # (This fake connector knows no send gate: what it was asked before the stop went out.)
    sent = {email for op, email in fake.calls if op == "create"}
    left = settle_unfinished(rows, result, [], executor, reason="refused")
    assert left == 0
    by_plan = {o["plan_id"]: o for o in result.outcomes}
    assert set(by_plan) == {r.plan_id for r in rows}  # every row closed, once
    assert by_plan[refused.plan_id]["http_status"] == 401
    for r in rows:
        if r is refused:
            continue
        outcome = by_plan[r.plan_id]
        if orjson_email(r) in sent:
            assert outcome["result"] == "succeeded"
        else:
            assert (outcome["result"], outcome["error_code"]) == ("skipped", NOT_SENT)


def orjson_email(plan_row: PlanRow) -> str:
    assert plan_row.payload is not None
    return str(pl.Series([plan_row.payload]).str.json_decode()[0]["email_address"])


ZONES = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-7))])
AWARE = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=ZONES
)


@given(values=st.lists(st.one_of(st.none(), AWARE), max_size=30))
def test_times_framed_through_integers_equal_polars_own(values: list[datetime | None]) -> None:
    ours = utc_column(values)
    assert isinstance(ours, pl.Series)
    assert ours.dtype == UTC_TIME
    assert ours.to_list() == pl.Series(values, dtype=UTC_TIME).to_list()


@given(values=st.lists(st.datetimes(min_value=datetime(1971, 1, 1)), min_size=1, max_size=5))
def test_naive_times_are_left_to_polars(values: list[datetime]) -> None:
    assert utc_column(values) is values


@given(
    times=st.lists(AWARE, min_size=1, max_size=10),
    statuses=st.lists(st.one_of(st.none(), st.integers(100, 599)), min_size=10, max_size=10),
)
def test_framed_rows_equal_polars_built_from_dicts(
    times: list[datetime], statuses: list[int | None]
) -> None:
    rows = [
        {"plan_id": f"p{i}", "status": statuses[i], "attempt": 1, "started_at": t}
        for i, t in enumerate(times)
    ]
    columns = {name: [r.get(name) for r in rows] for name in CALLS_SCHEMA.names()}
    expected = pl.DataFrame(rows, schema=CALLS_SCHEMA)
    assert frame_of(columns, CALLS_SCHEMA).equals(expected)
    outcomes = [{"plan_id": f"p{i}", "result": "succeeded", "at": t} for i, t in enumerate(times)]
    assert outcomes_frame(outcomes).equals(pl.DataFrame(outcomes, schema=OUTCOMES_SCHEMA))


def test_the_heap_frozen_for_sending_is_thawed_when_the_run_closes(tmp_path: Any) -> None:
    from pipelines.run import Run
    from pipelines.spec import RunSpec

    spec = RunSpec.from_parameters(
        "sync",
        {
            "extract": [str(tmp_path / "x.csv")],
            "target": "verifone",
            "dry_run": True,
            "state": str(tmp_path / "state.duckdb"),
        },
    )
    run = Run.open(spec, base=None)
    try:
        assert gc.get_freeze_count() == 0
        run.freeze_heap()
        frozen = gc.get_freeze_count()
        assert frozen > 0
        # Once per run: a second call freezes nothing new. (Frozen objects that die leave the
        # count, so it may fall; 10,000 new live containers would raise it if frozen.)
        alive = [[] for _ in range(10_000)]
        run.freeze_heap()
        assert gc.get_freeze_count() <= frozen, (gc.get_freeze_count(), frozen, len(alive))
        asyncio.run(run.aclose())
        assert gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()
        run.store.close()


FIELD = st.text(max_size=12)


@given(values=st.lists(st.lists(FIELD, max_size=4), max_size=30))
def test_text_lists_framed_through_arrow_equal_polars_own(values: list[list[str]]) -> None:
    ours = text_list_column(values)
    assert isinstance(ours, pl.Series)
    assert ours.dtype == pl.List(pl.String)
    assert ours.to_list() == pl.Series(values, dtype=pl.List(pl.String)).to_list()


@given(values=st.lists(st.one_of(st.none(), st.lists(st.integers(), min_size=1)), min_size=1))
def test_lists_with_nulls_or_other_values_are_left_to_polars(values: list[Any]) -> None:
    assert text_list_column(values) is values
