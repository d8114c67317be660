"""The state store refuses files that are not custsync state files, before touching them."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from pipelines.state.store import StateError, StateStore


@pytest.fixture(params=["csv", "random"])
def not_duckdb(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    if request.param == "csv":
        path = tmp_path / "customers.csv"  # DuckDB would open it as an in-memory database
        path.write_text("external_id,email\nCRM-1,ann@example.com\n")
    else:
        path = tmp_path / "state.duckdb"
        path.write_bytes(os.urandom(4096))
    return path


@pytest.mark.parametrize("read_only", [False, True])
def test_a_file_that_is_not_duckdb_is_refused_untouched(not_duckdb: Path, read_only: bool) -> None:
    before = not_duckdb.read_bytes()
    with pytest.raises(StateError, match=r"not a custsync state file \(not a DuckDB database"):
        StateStore(not_duckdb, read_only=read_only)
    assert not_duckdb.read_bytes() == before


@pytest.mark.parametrize("read_only", [False, True])
def test_a_foreign_duckdb_file_is_refused_untouched(tmp_path: Path, read_only: bool) -> None:
    path = tmp_path / "analytics.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE sales (id INTEGER)")
    with pytest.raises(StateError, match="a DuckDB file, but not a custsync state file"):
        StateStore(path, read_only=read_only)
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    assert tables == [("sales",)]  # no custsync table was added


def test_a_new_file_is_set_up_and_then_reads(tmp_path: Path) -> None:
    path = tmp_path / "new" / "state.duckdb"
    with StateStore(path) as store:
        assert store.schema_version > 0
    with StateStore(path, read_only=True) as store:
        assert store.runs().height == 0
