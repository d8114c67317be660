"""Under Prefect, two runs that write one state file queue: the second waits for the first.

Two ``custsync sync`` processes, each a flow run of a real ``prefect server``, on one state
file; the first is slowed by its sandbox so that the second starts while it runs. Without the
file's concurrency limit the second would be refused (exit 2, the file's writer lock). The
audit-report flow, a reader, answers meanwhile.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.server import SandboxServer
from pipelines.runlock import limit_name
from tests.e2e.conftest import CREDENTIALS
from tests.e2e.gen import write_extract

pytestmark = pytest.mark.e2e
CLI = [sys.executable, "-m", "pipelines.cli"]
AUDIT = (
    "import sys; from pipelines.flows.audit import audit_report_flow;"
    " print(audit_report_flow(state=sys.argv[1]))"
)


def _running(api: str) -> int:
    """Flow runs in a Running state on the server."""
    body = {"flow_runs": {"state": {"type": {"any_": ["RUNNING"]}}}}
    return len(httpx.post(f"{api}/flow_runs/filter", json=body).json())


def _wait(condition: Callable[[], bool], first: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert first.poll() is None, first.communicate()  # the first run must still be running
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_second_run_of_a_state_file_waits_for_the_first(
    trigger_server: Any, tmp_path: Path
) -> None:
    state = tmp_path / "state.duckdb"
    api = trigger_server.api_url
    # 200 ms a call, two at a time: the first run crawls until the test lets it go
    with SandboxServer(SandboxConfig(latency_ms=200)) as sandbox:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CUSTSYNC_")},
            **CREDENTIALS,
            "CUSTSYNC_SUMUP_BASE_URL": sandbox.base_url,
            "CUSTSYNC_VERIFONE_BASE_URL": sandbox.base_url,
            "CUSTSYNC_STATE": str(state),
            "CUSTSYNC_CONFIG": str(tmp_path / "absent.toml"),
            "PREFECT_API_URL": api,
        }
        extract = write_extract(tmp_path / "customers.csv", 600)
        args = ["sync", str(extract), "--target", "sumup", "--concurrency", "2", "--json"]
        pipes: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
        first = subprocess.Popen([*CLI, *args], text=True, env=env, **pipes)
        second = None
        try:
            _wait(lambda: int(sandbox.admin.counters()["total"]) > 0, first)
            # The first run is sending: it holds the file's slot. The audit-report flow, a
            # reader, answers meanwhile, taking no slot.
            audit = subprocess.run(
                [sys.executable, "-c", AUDIT, str(state)],
                capture_output=True, text=True, env=env, timeout=180,
            )  # fmt: skip
            # The second is a dry run of the same extract: it writes a plan, so it needs the
            # file too. Once its flow run runs beside the first, the first may finish.
            second = subprocess.Popen([*CLI, *args, "--dry-run"], text=True, env=env, **pipes)
            _wait(lambda: _running(api) == 2, first)
            sandbox.admin.configure(latency_ms=0)
            out, err = first.communicate(timeout=180)
            out2, err2 = second.communicate(timeout=180)
        finally:
            for proc in (first, second):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait()
    assert first.returncode == 0, err
    assert second.returncode == 0, out2 + err2
    assert audit.returncode == 0, audit.stderr
    assert "| running |" in audit.stdout  # it read the file while the first run wrote it
    first_id = json.loads(out.strip().splitlines()[-1])["run_id"]
    second_summary = json.loads(out2.strip().splitlines()[-1])
    # It planned after the first run had recorded everything: nothing left to create.
    assert second_summary["create"]["planned"] == 0
    assert second_summary["unchanged"]["planned"] == 600
    with duckdb.connect(str(state), read_only=True) as con:
        rows = con.execute(
            "SELECT run_id, started_at, finished_at, prefect_flow_run_id FROM runs"
        ).fetchall()
    runs = {run_id: (started, finished, flow_run) for run_id, started, finished, flow_run in rows}
    first_finished = runs[first_id][1]
    second_started, _, second_flow_run = runs[second_summary["run_id"]]
    flow_run = httpx.get(f"{api}/flow_runs/{second_flow_run}").json()
    # The second flow run was running before the first had finished, yet opened the state
    # file only after: it waited for the slot.
    assert datetime.fromisoformat(flow_run["start_time"]) < first_finished <= second_started
    limit = httpx.get(f"{api}/v2/concurrency_limits/{limit_name(state)}")
    assert limit.status_code == 200 and limit.json()["limit"] == 1
    assert limit.json()["active_slots"] == 0  # both runs gave the slot back
