"""Without a Prefect API a CLI run calls the stages itself: no temporary server, no Prefect."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from connectors.sandbox.server import SandboxServer
from tests.e2e.conftest import DAY1, DAY2
from tests.e2e.test_preflight import PROBE

pytestmark = pytest.mark.e2e


def _cli(sandbox: SandboxServer, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTSYNC_", "PREFECT_API"))}
    env.update(
        CUSTSYNC_STATE=str(state),
        CUSTSYNC_CONFIG=str(state.with_name("absent.toml")),
        CUSTSYNC_SUMUP_BASE_URL=sandbox.base_url,
        CUSTSYNC_SUMUP_API_KEY="sup_sk_sandbox",
    )
    return subprocess.run(
        [sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, timeout=300
    )


def test_a_sync_without_a_prefect_api_never_imports_prefect(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    sandbox.admin.reset(config=True)
    state = tmp_path / "state.duckdb"
    first = _cli(sandbox, state, "sync", str(DAY1), "-t", "sumup", "--json")
    assert first.returncode == 0, first.stderr
    assert "prefect imported: False" in first.stderr and "Traceback" not in first.stderr
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    assert summary["create"]["succeeded"] == 40
    assert len(sandbox.admin.state()["sumup"]["customers"]) == 40
    # A day with rejects: exit 1, recorded like a flow's run, shown as a table.
    day2 = _cli(
        sandbox, state, "sync", str(DAY2), "-t", "sumup", "--mode", "mirror", "--allow-deletes"
    )
    assert day2.returncode == 1, day2.stderr
    assert "Prefect is not configured" in day2.stdout and "prefect imported: False" in day2.stderr
    with duckdb.connect(str(state), read_only=True) as con:
        rows = con.execute(
            "SELECT status, exit_code, prefect_flow_run_id FROM runs ORDER BY started_at"
        ).fetchall()
    assert rows == [("done", 0, None), ("done", 1, None)]
