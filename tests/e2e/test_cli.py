"""The ``custsync`` command as a user runs it: a subprocess, exit codes, no tracebacks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from connectors.sandbox.server import SandboxServer
from tests.e2e.conftest import DAY1, sync, total_calls
from tests.e2e.expect import assert_in_step
from tests.e2e.gen import write_extract

pytestmark = pytest.mark.e2e
CLI = [sys.executable, "-m", "pipelines.cli"]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 180):  # type: ignore[no-untyped-def]
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=full_env, timeout=timeout
    )


@pytest.mark.parametrize("command", ["sync", "migrate", "report", "sandbox", "demo", "fleet"])
def test_every_command_has_help(command: str) -> None:
    done = run_cli(command, "--help")
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout


def test_missing_extract_is_exit_2_without_traceback(tmp_path: Path) -> None:
    done = run_cli("sync", str(tmp_path / "nope.csv"), "--target", "sumup")
    assert done.returncode == 2
    assert "nope.csv" in done.stderr and "Traceback" not in done.stderr + done.stdout


def test_malformed_extract_is_exit_2_naming_the_problem(
    tmp_path: Path, env: dict[str, str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("id,name\n1,Ann\n")
    done = run_cli("sync", str(bad), "--target", "sumup", "--json", env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert "external_id" in summary["message"]


def test_bad_setting_is_exit_2(tmp_path: Path) -> None:
    done = run_cli("sync", str(DAY1), "--target", "sumup", env={"CUSTSYNC_CONCURRENCY": "lots"})
    assert done.returncode == 2 and "CONCURRENCY" in done.stderr.upper()


def test_json_summary_and_report(env: dict[str, str], sandbox: SandboxServer) -> None:
    done = run_cli("sync", str(DAY1), "--target", "sumup", "--json", env=env)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    for key in (
        "run_id",
        "target",
        "mode",
        "dry_run",
        "exit_code",
        "calls",
        "rejected",
        "drift",
        "retries",
        "http_429",
        "duration_s",
        "create",
        "update",
        "delete",
        "close",
        "deactivate",
        "unchanged",
    ):
        assert key in summary, key
    assert "sup_sk_sandbox" not in done.stdout + done.stderr
    report = run_cli("report", "--run", summary["run_id"], "--format", "json", env=env)
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["run"]["run_id"] == summary["run_id"]
    listing = run_cli("report", "--format", "csv", env=env)
    assert summary["run_id"] in listing.stdout


def test_dry_run_plan_is_shown_by_report(env: dict[str, str], sandbox: SandboxServer) -> None:
    done = run_cli("sync", str(DAY1), "--target", "verifone", "--dry-run", "--json", env=env)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["dry_run"] and summary["calls"] == 0
    assert sandbox.admin.counters()["total"] == 0
    plan = run_cli("report", "--run", summary["run_id"], "--plan", "--format", "json", env=env)
    assert plan.returncode == 0, plan.stderr
    rows = json.loads(plan.stdout)
    assert len(rows) == summary["create"]["planned"] == 40
    assert {r["action"] for r in rows} == {"create"}
    assert run_cli("report", "--plan", env=env).returncode == 2


@pytest.mark.parametrize("target", ["verifone", "sumup"])
def test_killed_run_is_reconciled_by_the_next(
    target: str, env: dict[str, str], sandbox: SandboxServer, tmp_path: Path
) -> None:
    extract = write_extract(tmp_path / "big.csv", 300)
    sandbox.admin.configure(latency_ms=15)
    try:
        proc = subprocess.Popen(
            [
                *CLI,
                "sync",
                str(extract),
                "--target",
                target,
                "--concurrency",
                "8",
                "--batch-size",
                "50",
            ],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: the kill takes Prefect's server too
        )
        deadline = time.monotonic() + 120
        while total_calls(sandbox) < 60 and time.monotonic() < deadline:
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # as a crashed machine would: no clean-up at all
        proc.wait(timeout=30)
    finally:
        sandbox.admin.configure(latency_ms=0)
    assert 0 < len(sandbox.admin.state()[target]["customers"]) < 300
    summary = sync(extract=[str(extract)], target=target)
    assert summary["exit_code"] == 0, summary
    assert_in_step(sandbox, env["CUSTSYNC_STATE"], target, extract)


def test_a_state_file_in_use_is_exit_2_with_a_clear_message(
    tmp_path: Path, env: dict[str, str]
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pipelines.state.store import StateStore; "
         "s = StateStore(sys.argv[1]); print('held', flush=True); time.sleep(600)",
         env["CUSTSYNC_STATE"]],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        done = run_cli("sync", str(DAY1), "--target", "sumup", env=env)
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 2
    assert "lock" in done.stderr and "Traceback" not in done.stderr + done.stdout
