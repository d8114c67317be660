"""``custsync report`` as people use it: one table per CSV, full run ids, a stopped run's reason."""

from __future__ import annotations

import io
import json

import polars as pl
import pytest

from connectors.sandbox.server import SandboxServer
from tests.e2e.conftest import DAY1, DAY2
from tests.e2e.test_cli import run_cli

pytestmark = pytest.mark.e2e


def test_csv_is_one_table_per_file_and_tables_keep_run_ids(
    env: dict[str, str], sandbox: SandboxServer
) -> None:
    assert run_cli("sync", str(DAY1), "--target", "sumup", env=env).returncode == 0
    done = run_cli("sync", str(DAY2), "--target", "sumup", "--mode", "mirror", "--json", env=env)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    run_id = summary["run_id"]
    assert summary["rejected"] >= 1

    failures = run_cli("report", "--run", run_id, "--format", "csv", env=env)
    assert failures.returncode == 0, failures.stderr
    table = pl.read_csv(io.StringIO(failures.stdout))  # one header: it reads back
    assert set(table["kind"]) == {"rejected"} and set(table["run_id"]) == {run_id}

    rejects = run_cli("report", "--run", run_id, "--what", "rejects", "--format", "csv", env=env)
    frame = pl.read_csv(io.StringIO(rejects.stdout))
    assert frame.height >= summary["rejected"] and "value" in frame.columns

    runs = run_cli("report", "--run", run_id, "--what", "runs", "--format", "csv", env=env)
    (row,) = pl.read_csv(io.StringIO(runs.stdout)).to_dicts()
    assert row["run_id"] == run_id and "rejected" in str(row["reason"])

    # A guard's stop: its reason is in the listing; a narrow terminal never shortens a run id.
    stopped = run_cli(
        "sync", str(DAY2), "-t", "sumup", "--max-reject-fraction", "0", "--json", env=env
    )
    stopped_id = json.loads(stopped.stdout.strip().splitlines()[-1])["run_id"]
    assert stopped.returncode == 3
    wide = run_cli("report", "--format", "json", env=env)
    reasons = {r["run_id"]: r["reason"] for r in json.loads(wide.stdout)}
    assert "extract rows were rejected" in reasons[stopped_id]
    narrow = run_cli("report", env={**env, "COLUMNS": "70"})
    assert narrow.returncode == 0 and run_id in narrow.stdout and stopped_id in narrow.stdout
    assert run_cli("report", "--what", "rejects", env=env).returncode == 2  # needs --run
