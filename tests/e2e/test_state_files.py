"""``custsync report`` and ``sync`` on a state file they cannot use: one line, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from tests.e2e.conftest import DAY1
from tests.e2e.test_cli import run_cli

pytestmark = pytest.mark.e2e


def _csv(path: Path) -> Path:
    path = path.with_name("customers.csv")
    path.write_bytes(DAY1.read_bytes())
    return path


def _random(path: Path) -> Path:
    path.write_bytes(os.urandom(8192))
    return path


def _foreign_duckdb(path: Path) -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE sales AS SELECT 1 AS id")
    return path


UNUSABLE: dict[str, tuple[Callable[[Path], Path], str]] = {
    "csv": (_csv, "not a custsync state file (not a DuckDB database"),
    "random bytes": (_random, "not a custsync state file (not a DuckDB database"),
    "foreign duckdb": (_foreign_duckdb, "a DuckDB file, but not a custsync state file"),
}


def one_error_line(done: subprocess.CompletedProcess[str], expected: str) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert expected in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("kind", UNUSABLE)
def test_report_on_a_file_that_is_not_a_state_file(kind: str, tmp_path: Path) -> None:
    make, expected = UNUSABLE[kind]
    path = make(tmp_path / "state.duckdb")
    before = path.read_bytes()
    line = one_error_line(run_cli("report", "--state", str(path)), expected)
    assert str(path) in line
    assert path.read_bytes() == before


def test_report_on_a_missing_file(tmp_path: Path) -> None:
    one_error_line(run_cli("report", "--state", str(tmp_path / "nope.duckdb")), "no state file")


def test_report_on_a_state_file_a_sync_holds(tmp_path: Path) -> None:
    path = tmp_path / "state.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pipelines.state.store import StateStore; "
         "s = StateStore(sys.argv[1]); print('held', flush=True); time.sleep(120)",
         str(path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        # It never lets go, as no sync does: the report waits CUSTSYNC_STATE_WAIT, then says so.
        done = run_cli("report", "--state", str(path), env={"CUSTSYNC_STATE_WAIT": "1"})
    finally:
        holder.kill()
        holder.wait()
    line = one_error_line(done, "locked by another process")
    assert f"(PID {holder.pid})" in line
    assert run_cli("report", "--state", str(path)).returncode == 0  # and it reads once free


@pytest.mark.parametrize("kind", ["csv", "foreign duckdb"])
def test_sync_on_a_file_that_is_not_a_state_file(
    kind: str, tmp_path: Path, env: dict[str, str]
) -> None:
    from prefect.settings import get_current_settings

    make, expected = UNUSABLE[kind]
    path = make(tmp_path / "state.duckdb")
    before = path.read_bytes()
    done = run_cli(
        "sync", str(DAY1), "--target", "sumup", "--dry-run", "--state", str(path),
        env={**env, "PREFECT_API_URL": str(get_current_settings().api.url)},
    )  # fmt: skip
    one_error_line(done, expected)
    assert path.read_bytes() == before
