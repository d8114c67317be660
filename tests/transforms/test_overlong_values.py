"""Regression (issue 15): several over-long values against an existing snapshot.

Two rows with a value over a published limit, against a snapshot, stopped the planner with
a polars panic in the rejects' masking. Each case is read from a real file (CSV and
Parquet, as a sync reads it) and planned in mirror and upsert mode.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pipelines.extract import read_extract
from tests.transforms.conftest import ENTITY
from transforms.mapping import map_rows
from transforms.normalise import normalise
from transforms.planner import build_plan
from transforms.schema import EXTRACT_SCHEMA, Mode
from transforms.validate import validate

DAY1 = Path(__file__).resolve().parents[2] / "data" / "customers.csv"

CASES = [
    ("verifone", "first_name", 23, "max_length"),
    ("verifone", "last_name", 23, "max_length"),
    ("verifone", "billing_city", 29, "max_length"),
    ("verifone", "company_name", 101, "max_length"),
    ("verifone", "language", 5000, "max_field_size"),
    ("sumup", "tax_id", 256, "max_length"),
    ("sumup", "last_name", 5000, "max_field_size"),
]


def _day1() -> pl.DataFrame:
    return pl.read_csv(DAY1, infer_schema=False).select(EXTRACT_SCHEMA.names())


def _snapshot(target: str) -> pl.DataFrame:
    valid = validate(normalise(_day1().lazy()), target).valid
    return map_rows(valid, target, constants={"entity_id": ENTITY}).with_columns(
        pl.coalesce("remote_id", pl.format("uuid-{}", "external_id"))
    )


@pytest.mark.parametrize(("target", "column", "length", "rule"), CASES)
@pytest.mark.parametrize("mode", ["mirror", "upsert"])
@pytest.mark.parametrize("kind", ["csv", "parquet"])
@pytest.mark.parametrize("count", [2, 40])
def test_several_over_long_values_against_a_snapshot_are_rejects(
    tmp_path: Path,
    target: str,
    column: str,
    length: int,
    rule: str,
    mode: Mode,
    kind: str,
    count: int,
) -> None:
    day1 = _day1()
    rows = list(range(0, day1.height, max(1, day1.height // count)))[:count]
    long_value = ("Abcdefghij" * (length // 10 + 1))[:length]
    day2 = day1.with_columns(
        pl.when(pl.int_range(pl.len()).is_in(rows))
        .then(pl.lit(long_value))
        .otherwise(pl.col(column))
        .alias(column)
    )
    path = tmp_path / f"day2.{kind}"
    if kind == "csv":
        day2.write_csv(path)
    else:
        day2.write_parquet(path)

    result = build_plan(
        read_extract([path]).frame,
        _snapshot(target),
        target=target,
        mode=mode,
        constants={"entity_id": ENTITY},
    )

    broken = result.rejects.filter(pl.col("field") == column, pl.col("rule") == rule)
    assert broken.get_column("source_row").to_list() == [r + 1 for r in rows]
    assert broken.get_column("value").to_list() == ["Abc***"] * len(rows)
    # rejected keys are neither sent nor, in mirror mode, deleted
    rejected = set(broken.get_column("external_id"))
    assert not rejected & set(result.plan.get_column("external_id"))
    assert result.plan.height == 0
    assert result.unchanged == day1.height - len(rows)
