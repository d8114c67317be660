"""The stored plan cut into batches: every row in exactly one batch, in plan order."""

from __future__ import annotations

import polars as pl
import pytest

from pipelines.stored_plan import StoredPlan


def _rows(n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "plan_id": [f"p-{i}" for i in range(n)],
            "external_id": [f"K-{i}" for i in range(n)],
            "action": ["create"] * n,
        }
    )


@pytest.mark.parametrize(("n", "size", "count"), [(5, 2, 3), (4, 2, 2), (0, 500, 0), (3, 0, 3)])
def test_every_row_is_in_one_batch_in_plan_order(n: int, size: int, count: int) -> None:
    stored = StoredPlan(rows=_rows(n), batch_size=size)
    assert stored.height == n and stored.batch_count == count
    sent = [row.plan_id for no in range(stored.batch_count) for row in stored.batch(no)]
    assert sent == [f"p-{i}" for i in range(n)]
    assert stored.batch(count) == []  # past the last batch


def test_an_empty_plan_has_no_batch() -> None:
    assert StoredPlan().batch_count == 0 and StoredPlan().batch(0) == []
