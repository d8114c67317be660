"""Issue 14: the state store finds a stored plan's twins without reading every create, and
finds exactly what :func:`transforms.twins.find_twins` finds in the creates read whole."""

from __future__ import annotations

import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.state.store import StateStore
from transforms.diff import PLAN_SCHEMA
from transforms.twins import find_twins

# (external_id, action, content key or None, payload): few keys and contents, so that twins,
# twins of another action, and rows without a content key (grouped by payload) all occur.
ROWS = st.lists(
    st.tuples(
        st.sampled_from(["create", "create", "create", "update", "delete"]),
        st.one_of(st.none(), st.integers(0, 3)),
        st.sampled_from(['{"a":1}', '{"a":2}', None]),
    ),
    max_size=14,
)


def _plan(rows: list[tuple[str, int | None, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "plan_id": f"p{i}",
                "external_id": f"K{i:02}",
                "action": action,
                "status": "active",
                "remote_id": None,
                "payload": payload,
                "content_hash": f"h{i}",
                "base_payload": None,
                "reason": "test",
                "content_key": key,
            }
            for i, (action, key, payload) in enumerate(rows)
        ],
        schema=PLAN_SCHEMA,
    )


@pytest.mark.parametrize("target", ["verifone", "sumup"])
@settings(max_examples=40, deadline=None)
@given(rows=ROWS)
def test_the_stores_twins_are_those_of_the_creates_read_whole(
    target: str, rows: list[tuple[str, int | None, str | None]]
) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        StateStore(Path(tmp) / "state.duckdb") as store,
    ):
        run_id = store.begin_run(
            flow="sync", target=target, mode="mirror", dry_run=True, extract_paths=[], params={}
        )
        store.write_plan(run_id, target, _plan(rows))
        other = store.begin_run(
            flow="sync", target=target, mode="mirror", dry_run=True, extract_paths=[], params={}
        )
        store.write_plan(other, target, _plan(rows))  # another run's plan is not this one's
        expected = find_twins(store.plan_creates(run_id), target=target)
        assert dict(store.plan_twins(run_id, target).group_of) == dict(expected.group_of)
