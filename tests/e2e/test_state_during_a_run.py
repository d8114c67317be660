"""While a sync writes a state file: reports answer, a second writer is refused (no Prefect).

A real ``custsync sync`` (a subprocess, no Prefect API) against a slow sandbox of its own;
meanwhile ``custsync report`` in other processes reads the same file, and a second sync tries
to write it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.server import SandboxServer
from tests.e2e.conftest import CREDENTIALS
from tests.e2e.gen import write_extract

pytestmark = pytest.mark.e2e
CLI = [sys.executable, "-m", "pipelines.cli"]


@pytest.fixture
def slow_sandbox() -> Iterator[SandboxServer]:
    # 200 ms a call at concurrency 4: the run crawls until the test lets it go
    with SandboxServer(SandboxConfig(latency_ms=200)) as server:
        yield server


def _env(sandbox: SandboxServer, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTSYNC_", "PREFECT_API"))}
    return {
        **env,
        **CREDENTIALS,
        "CUSTSYNC_VERIFONE_BASE_URL": sandbox.base_url,
        "CUSTSYNC_SUMUP_BASE_URL": sandbox.base_url,
        "CUSTSYNC_STATE": str(tmp_path / "state.duckdb"),
        "CUSTSYNC_CONFIG": str(tmp_path / "absent.toml"),
    }


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=120)


def test_reports_answer_while_a_sync_writes_and_a_second_writer_is_refused(
    slow_sandbox: SandboxServer, tmp_path: Path
) -> None:
    env = _env(slow_sandbox, tmp_path)
    extract = write_extract(tmp_path / "customers.csv", 400)
    sync = [
        "sync", str(extract), "--target", "sumup", "--concurrency", "4", "--batch-size", "50",
        "--json",
    ]  # fmt: skip
    writer = subprocess.Popen(
        [*CLI, *sync], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        deadline = time.monotonic() + 60
        while not int(slow_sandbox.admin.counters()["total"]) and time.monotonic() < deadline:
            assert writer.poll() is None, writer.communicate()
            time.sleep(0.05)
        # The run is sending: its journal and first batches are in the file, its row open.
        reports = [_cli("report", "--format", "json", env=env) for _ in range(2)]
        second = _cli(*sync, env=env)
        sent_meanwhile = int(slow_sandbox.admin.counters()["total"])
        assert writer.poll() is None, "the sync ended before the readers were done"
        slow_sandbox.admin.configure(latency_ms=0)
        out, err = writer.communicate(timeout=120)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert sent_meanwhile < 400  # the readers and the refusal happened during the run
    for report in reports:
        assert report.returncode == 0, report.stderr
        runs = json.loads(report.stdout)
        assert [r["status"] for r in runs] == ["running"]
    assert second.returncode == 2, second.stdout + second.stderr
    assert "Traceback" not in second.stderr
    assert f"locked by another process (PID {writer.pid})" in second.stderr
    assert writer.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["create"]["succeeded"] == 400
    assert len(slow_sandbox.admin.state()["sumup"]["customers"]) == 400
    after = _cli("report", "--format", "json", env=env)
    assert [r["status"] for r in json.loads(after.stdout)] == ["done"]
