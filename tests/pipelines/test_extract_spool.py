"""Issue 14: a CSV extract parsed into a spool directory (the plan stage's way, so that it is
read a slice at a time) reads exactly as one held in memory, and fails the same way."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.extract import ExtractError, read_extract

DATA = Path(__file__).resolve().parents[2] / "data"

CELL = st.one_of(
    st.none(),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=6),
    st.sampled_from(["", " ", '"', "a,b", "line\nbreak", "0012"]),
)


@pytest.mark.parametrize("name", ["customers.csv", "customers_day2.csv"])
def test_the_sample_extracts_read_the_same_spooled(tmp_path: Path, name: str) -> None:
    held = read_extract([DATA / name])
    spooled = read_extract([DATA / name], spool=tmp_path)
    assert spooled.rows == held.rows
    assert spooled.frame.collect().equals(held.frame.collect())
    assert [p.suffix for p in tmp_path.iterdir()] == [".parquet"]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(st.tuples(CELL, CELL), max_size=12))
def test_generated_csv_reads_the_same_spooled(
    tmp_path: Path, rows: list[tuple[str | None, str | None]]
) -> None:
    source, other = tmp_path / "x.csv", tmp_path / "y.csv"
    pl.DataFrame(
        rows, schema={"external_id": pl.String, "email": pl.String}, orient="row"
    ).write_csv(source)
    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    for old in spool.iterdir():
        old.unlink()
    other.write_bytes(source.read_bytes())
    held = read_extract([source, other])  # two files: concatenated, positions run on
    spooled = read_extract([source, other], spool=spool)
    assert spooled.rows == held.rows == [len(rows), len(rows)]
    assert spooled.frame.collect().equals(held.frame.collect())


def test_a_ragged_row_fails_the_same_spooled(tmp_path: Path) -> None:
    source = tmp_path / "x.csv"
    source.write_text("external_id,email\nA,a@example.com\nB,b@example.com,extra\n")
    with pytest.raises(ExtractError) as held:
        read_extract([source])
    with pytest.raises(ExtractError) as spooled:
        read_extract([source], spool=tmp_path)
    assert str(spooled.value) == str(held.value)
    assert spooled.value.line == 3
