"""What bounds a run's DuckDB memory (issue 14): the state file's row group size on every
connection, the run's ``state_memory_limit`` on every connection its store opens, spills beside
the state file, and the setting's validation."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.settings import Settings, SettingsError, load_settings
from pipelines.state.access import ROW_GROUP_ROWS
from pipelines.state.base import adapts_memory
from pipelines.state.store import StateStore

UNITS = ["KB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "TiB", "%", "B", "", "bytes", "M", "mb"]


def _reference(number: float, unit: str) -> bool:
    """The rule, written out: a size with a K/M/G/T unit (decimal or binary, any case) of at
    least 16,000,000 bytes, or a share of the machine in (0, 100] %."""
    u = unit.lower()
    if u == "%":
        return 0 < number <= 100
    powers = {"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12}
    binary = {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
    scale = powers.get(u) or binary.get(u)
    return scale is not None and number * scale >= 16e6


@settings(max_examples=150, deadline=None)
@given(
    number=st.one_of(
        st.integers(min_value=0, max_value=5000).map(float),
        st.floats(min_value=0, max_value=5000, allow_nan=False).map(lambda x: round(x, 2)),
    ),
    unit=st.sampled_from(UNITS),
    space=st.sampled_from(["", " "]),
)
def test_memory_limit_setting_follows_the_rule(number: float, unit: str, space: str) -> None:
    text = f"{number:g}{space}{unit}"
    if "e" in text.lower().replace("bytes", ""):  # 1e+03: not how anyone writes a size
        return
    if _reference(number, unit):
        Settings(state_memory_limit=text)
        # What the rule lets through, DuckDB takes (and runs a query with).
        con = duckdb.connect()
        con.execute(f"SET memory_limit = '{text}'")
        assert con.execute("SELECT 1").fetchall() == [(1,)]
    else:
        with pytest.raises(SettingsError, match="state_memory_limit"):
            Settings(state_memory_limit=text)


@given(text=st.text(max_size=12))
def test_memory_limit_setting_refuses_anything_else(text: str) -> None:
    if re.fullmatch(r"\s*\d+(\.\d+)?\s*(%|[kmgtKMGT][iI]?[bB])\s*", text):
        return  # a size: the test above
    with pytest.raises(SettingsError, match="state_memory_limit"):
        Settings(state_memory_limit=text)


def test_memory_limit_comes_from_the_environment(tmp_path: Path) -> None:
    absent = tmp_path / "absent.toml"
    assert load_settings(env={}, config_file=absent).state_memory_limit == "64MB"
    env = {"CUSTSYNC_STATE_MEMORY_LIMIT": "256MiB"}
    assert load_settings(env=env, config_file=absent).state_memory_limit == "256MiB"
    with pytest.raises(SettingsError, match="less than the 16 MB"):
        load_settings(env={"CUSTSYNC_STATE_MEMORY_LIMIT": "8MB"}, config_file=absent)


def _setting(store: StateStore, name: str) -> str:
    return str(store.con.execute(f"SELECT current_setting('{name}')").fetchall()[0][0])


def test_every_connection_of_a_store_has_its_memory_limit(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.duckdb", memory_limit="100MiB") as store:
        assert _setting(store, "memory_limit") == "100.0 MiB"
        store.release()  # between a run's batches: the next use opens the file again
        assert _setting(store, "memory_limit") == "100.0 MiB"
    with StateStore(tmp_path / "s.duckdb") as store:  # none given: DuckDB's default
        assert _setting(store, "memory_limit") != "100.0 MiB"


def test_spills_go_beside_the_state_file(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with StateStore(path) as store:
        assert _setting(store, "temp_directory") == f"{path}.tmp"
    with StateStore(path, read_only=True) as store:
        assert _setting(store, "temp_directory") == f"{path}.tmp"


def test_a_table_grown_a_batch_at_a_time_keeps_small_row_groups(tmp_path: Path) -> None:
    """What a run does to its audit tables: commit a batch, close the file now and then. The
    checkpoint merges the small row groups, into groups of ROW_GROUP_ROWS at most (DuckDB's
    default, 122,880, made it recompress that many rows of each table at once)."""
    path = tmp_path / "s.duckdb"
    with StateStore(path) as store:
        store.con.execute("CREATE TABLE grown (k VARCHAR, v VARCHAR)")
        for part in range(12):
            store.con.execute(
                "INSERT INTO grown SELECT 'K' || (range + $lo), repeat('x', 40) FROM range(4000)",
                {"lo": part * 4000},
            )
            store.release()
        groups = store.con.execute(
            "SELECT row_group_id, max(count) FROM pragma_storage_info('grown')"
            " WHERE segment_type <> 'VALIDITY' GROUP BY ALL"
        ).fetchall()
        total = store.con.execute("SELECT count(*) FROM grown").fetchall()[0][0]
    assert total == 48_000
    assert max(rows for _, rows in groups) <= ROW_GROUP_ROWS
    assert len(groups) <= 4  # merged (about 3 of 16,000), not left as 12 groups of 4,000


def test_checkpoint_empties_the_write_ahead_log(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with StateStore(path) as store:
        store.con.execute("CREATE TABLE part AS SELECT range AS k FROM range(50000)")
        store.checkpoint()
        wal = Path(f"{path}.wal")
        assert not wal.exists() or wal.stat().st_size == 0


class _Heavy(StateStore):
    """A store with one method that needs more memory than DuckDB can spill (a string of
    about 40 MB built whole): what a run's DuckDB may meet on some data."""

    calls = 0

    def __enter__(self) -> _Heavy:
        return self

    @adapts_memory
    def heavy(self) -> int:
        type(self).calls += 1
        return int(
            self._run("SELECT length(string_agg(range::VARCHAR, ',')) FROM range(5000000)")[0][0]
        )


def test_a_store_gives_duckdb_more_memory_when_it_ran_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _Heavy.calls = 0
    with _Heavy(tmp_path / "s.duckdb", memory_limit="20MB") as store:
        assert store.heavy() == 38_888_889
        assert _Heavy.calls >= 2  # it ran out at 20 MB, then had more
        assert store.memory_limit is not None
        raised = float(store.memory_limit.removesuffix("B"))
        assert raised >= 2 * 19 * 2**20
        # Every connection from now on has the higher limit: the next batch's too.
        store.release()
        shown = _setting(store, "memory_limit")
        assert shown != "19.0 MiB" and shown.endswith("MiB")
    assert "needed more than its 19.0 MiB" in caplog.text


def test_without_a_limit_to_raise_running_out_is_an_error(tmp_path: Path) -> None:
    _Heavy.calls = 0
    with _Heavy(tmp_path / "s.duckdb") as store:
        store.con.execute("SET memory_limit = '20MB'")  # DuckDB's own, not the store's
        with pytest.raises(duckdb.OutOfMemoryException):
            store.heavy()
    assert _Heavy.calls == 1


def test_a_transaction_that_ran_out_is_run_again_whole(tmp_path: Path) -> None:
    """record_batch's transaction: rolled back by the failure, then run again from its start,
    so nothing is written twice."""
    path = tmp_path / "s.duckdb"
    with StateStore(path, memory_limit="20MB") as store:
        store.con.execute("CREATE TABLE t (k INTEGER, v VARCHAR)")
        tries = 0

        @adapts_memory
        def write(s: StateStore) -> None:
            nonlocal tries
            tries += 1
            with s.transaction():
                s._run("INSERT INTO t VALUES (1, 'a')")
                s._run("SELECT length(string_agg(range::VARCHAR, ',')) FROM range(5000000)")

        write(store)
        assert tries >= 2
        assert store.con.execute("SELECT count(*) FROM t").fetchall() == [(1,)]
