"""A bug is not a traceback: the real CLI, as a subprocess, with a panic planted in it.

The subprocess runs ``tests/e2e/panicking_cli.py``, which patches the planner or the executor in
its own process and calls ``pipelines.cli.main``: nothing in the product knows about it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from connectors.sandbox.server import SandboxServer
from tests.e2e.conftest import CREDENTIALS, DAY1, sync
from tests.e2e.expect import assert_in_step

pytestmark = pytest.mark.e2e
PANICKING_CLI = Path(__file__).with_name("panicking_cli.py")


def run_panicking(where: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The CLI with a panic planted ``where`` (``plan`` or ``execute``)."""
    from prefect.settings import get_current_settings

    # The harness's Prefect server: spares each subprocess starting its own (15-40 s here).
    full_env = {**os.environ, **env, "PREFECT_API_URL": str(get_current_settings().api.url)}
    return subprocess.run(
        [sys.executable, str(PANICKING_CLI), where, *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
    )


def customer_values() -> list[str]:
    """Values of the extract that must never reach a crash file."""
    frame = pl.read_csv(DAY1, infer_schema=False)
    return [
        v
        for column in ("external_id", "email", "phone", "last_name", "billing_address_1")
        for v in frame[column].drop_nulls().to_list()
    ]


def crash_file_of(stderr: str) -> Path:
    """The one line on stderr, and the crash file it names."""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("custsync: internal error (PanicException); details in "), stderr
    assert lines[0].endswith("; please report it")
    path = Path(lines[0].split("details in ", 1)[1].split(" (run ", 1)[0])
    assert path.is_file(), path
    return path


def run_row(state: str) -> dict[str, object]:
    with duckdb.connect(state, read_only=True) as con:
        row = con.execute("SELECT run_id, status, exit_code, summary FROM runs").fetchall()
    assert len(row) == 1
    run_id, status, exit_code, summary = row[0]
    return {"run_id": run_id, "status": status, "exit_code": exit_code, "summary": summary}


def test_a_panic_while_planning_is_one_line_a_crash_file_and_exit_70(
    env: dict[str, str], sandbox: SandboxServer, tmp_path: Path
) -> None:
    done = run_panicking("plan", "sync", str(DAY1), "--target", "sumup", env=env)
    assert done.returncode == 70, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    crash_file = crash_file_of(done.stderr)
    assert crash_file.parent == tmp_path / "crashes"  # beside the state file
    text = crash_file.read_text()
    row = run_row(env["CUSTSYNC_STATE"])
    assert (row["status"], row["exit_code"]) == ("crashed", 70)
    assert f"(run {row['run_id']})" in done.stderr
    assert f"run id:  {row['run_id']}" in text
    assert "error:   pyo3_runtime.PanicException" in text
    assert "Traceback (most recent call last):" in text and "in _make_plan" in text
    assert "polars " in text and "duckdb " in text and "custsync 0.1.0" in text
    assert "command: custsync sync <…> --target sumup" in text
    for value in [*customer_values(), *CREDENTIALS.values()]:
        assert value not in text, value
    summary = json.loads(str(row["summary"]))
    assert summary["message"] == f"internal error (PanicException); details in {crash_file}"
    assert sandbox.admin.counters()["total"] == 0  # it crashed before sending anything


def test_a_panic_mid_run_keeps_the_batches_already_recorded(
    env: dict[str, str], sandbox: SandboxServer
) -> None:
    args = ("sync", str(DAY1), "--target", "sumup", "--batch-size", "10", "--json")
    done = run_panicking("execute", *args, env=env)
    assert done.returncode == 70, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    crash_file = crash_file_of(done.stderr)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert (summary["status"], summary["exit_code"]) == ("crashed", 70)
    assert summary["crash_file"] == str(crash_file)
    assert summary["create"]["succeeded"] == 10  # the first batch, recorded before the panic
    assert "in _execute_batch" in crash_file.read_text()
    state = env["CUSTSYNC_STATE"]
    assert run_row(state)["status"] == "crashed"
    with duckdb.connect(state, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM snapshot").fetchone() == (10,)
        pending = con.execute("SELECT count(*) FROM journal WHERE state = 'pending'").fetchone()
    assert pending == (10,)  # the batch in flight, for the next run to settle
    assert len(sandbox.admin.state()["sumup"]["customers"]) == 10
    after = sync(extract=[str(DAY1)], target="sumup")
    assert after["exit_code"] == 0, after
    assert_in_step(sandbox, state, "sumup", DAY1)
