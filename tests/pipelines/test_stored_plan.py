"""The stored plan cut into batches: every row in exactly one batch, in plan order."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.state.store import StateStore
from pipelines.stored_plan import StoredPlan
from transforms.diff import PLAN_SCHEMA


def _rows(n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "plan_id": [f"p-{i:03}" for i in range(n)],
            "external_id": [f"K-{i:03}" for i in range(n)],
            "action": ["create"] * n,
        }
    )


@pytest.mark.parametrize(
    ("n", "size", "count"), [(5, 2, 3), (4, 2, 2), (0, 500, 0), (3, 0, 3), (12, 5, 3)]
)
def test_every_row_is_in_one_batch_in_plan_order(n: int, size: int, count: int) -> None:
    stored = StoredPlan.from_frame(_rows(n), batch_size=size)
    assert stored.height == n and stored.batch_count == count
    sent = [row.plan_id for no in range(stored.batch_count) for row in stored.batch(no)]
    assert sent == [f"p-{i:03}" for i in range(n)]
    assert stored.batch(count) == []  # past the last batch


def test_an_empty_plan_has_no_batch() -> None:
    assert StoredPlan().batch_count == 0 and StoredPlan().batch(0) == []


_ACTIONS = ("create", "update", "delete", "deactivate")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(["A", "B", "C", "D", "E"]), st.sampled_from(_ACTIONS)),
        max_size=40,
    ),
    size=st.integers(min_value=1, max_value=9),
    window=st.integers(min_value=1, max_value=4),
)
def test_the_stored_plan_read_batch_by_batch_is_the_whole_plan_in_order(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[tuple[str, str]],
    size: int,
    window: int,
) -> None:
    """Issue 14: batches read from the state file one at a time (keys that repeat, as a
    customer's instrument deactivations do) are the whole stored plan, each row once, in
    plan order, cut every ``size`` rows, whether read a batch or a ``window`` of batches at a
    time."""
    store = StateStore(tmp_path_factory.mktemp("plan") / "state.duckdb")
    try:
        run_id = store.begin_run(
            flow="sync", target="sumup", mode="mirror", dry_run=False, extract_paths=[], params={}
        )
        plan = pl.DataFrame(
            [
                {
                    "plan_id": f"p-{n:02}-{key}",
                    "external_id": key,
                    "action": action,
                    "status": "active",
                    "remote_id": f"r-{key}",
                    "payload": '{"v":1}',
                    "content_hash": "h",
                    "base_payload": None,
                    "reason": "test",
                }
                for n, (key, action) in enumerate(rows)
            ],
            schema=PLAN_SCHEMA,
        )
        store.write_plan(run_id, "sumup", plan)
        whole = store.plan(run_id)
        stored = StoredPlan(
            height=store.planned_count(run_id),
            starts=tuple(store.plan_starts(run_id, size)),
            read=lambda start, end: store.plan_rows(run_id, start, end),
            batch_size=size,
            window=window,
        )
        batches = [stored.batch(no) for no in range(stored.batch_count)]
        assert stored.height == whole.height == len(rows)
        assert [len(b) for b in batches] == [
            min(size, len(rows) - i) for i in range(0, len(rows), size)
        ]
        assert [r.plan_id for b in batches for r in b] == whole["plan_id"].to_list()
        in_memory = StoredPlan.from_frame(whole, batch_size=size)
        assert [in_memory.batch(no) for no in range(in_memory.batch_count)] == batches
        assert stored.batch(stored.batch_count) == []
        if batches:
            assert stored.batch(0) == batches[0]  # read again once its window was dropped
    finally:
        store.close()
