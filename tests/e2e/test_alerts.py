"""The shipped automations, applied by ``custsync alerts apply`` to a real ``prefect server``
whose triggers run, notify a real webhook receiver on loopback: on a failed run, on a run with
rejects over the threshold (and not on one under it), and on a nightly run not completed by
its deadline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.server import SandboxServer
from pipelines.alerts import FAILED, LATE, REJECTS
from pipelines.summary import failed_records
from tests.e2e.conftest import CREDENTIALS, DAY1, DAY2

pytestmark = pytest.mark.e2e
CLI = [sys.executable, "-m", "pipelines.cli"]


class Receiver(ThreadingHTTPServer):
    """A webhook receiver: keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/custsync"

    def wait_for(self, count: int, timeout: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.2)
        return list(self.received)


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.received.append({"path": self.path, **json.loads(body)})
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _nightly_run_left_pending(api: str) -> str:
    """A flow run of the nightly sync that a worker took (Pending) and that never completes."""
    flow = httpx.post(f"{api}/flows/", json={"name": "custsync-sync"}).json()
    run = httpx.post(
        f"{api}/flow_runs/",
        json={
            "flow_id": flow["id"],
            "name": "nightly-left-pending",
            "tags": ["custsync", "nightly"],
        },
    ).json()
    done = httpx.post(
        f"{api}/flow_runs/{run['id']}/set_state",
        json={"state": {"type": "PENDING", "name": "Pending"}, "force": True},
    )
    assert done.status_code in (200, 201), done.text
    return str(run["name"])


def test_alerts_reach_the_webhook(trigger_server: Any, receiver: Receiver, tmp_path: Path) -> None:
    api = trigger_server.api_url
    with SandboxServer(SandboxConfig()) as sandbox:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CUSTSYNC_")},
            **CREDENTIALS,
            "CUSTSYNC_SUMUP_BASE_URL": sandbox.base_url,
            "CUSTSYNC_VERIFONE_BASE_URL": sandbox.base_url,
            "CUSTSYNC_CONFIG": str(tmp_path / "absent.toml"),
            "CUSTSYNC_MAX_REJECT_FRACTION": "1",  # day 2's invalid rows go through
            "PREFECT_API_URL": api,
        }
        apply = [
            "alerts", "apply", "--webhook-url", receiver.url, "--rejects-threshold", "1",
            "--deadline", "10s",
        ]  # fmt: skip
        first = subprocess.run([*CLI, *apply], capture_output=True, text=True, env=env)
        assert first.returncode == 0, first.stderr
        assert first.stdout.count(": created") == 3 and receiver.url not in first.stdout
        # Again, through the block by name (as a Slack or Teams block would be given): the
        # same automations are updated, not doubled.
        block = ["--block", "custom-webhook/custsync-alerts"]
        again = subprocess.run(
            [*CLI, *apply[:2], *block, *apply[4:]], capture_output=True, text=True, env=env
        )
        assert again.returncode == 0, again.stderr
        assert again.stdout.count(": updated") == 3
        missing = subprocess.run(
            [*CLI, *apply[:2], "--block", "slack-webhook/nowhere"],
            capture_output=True, text=True, env=env,
        )  # fmt: skip
        assert missing.returncode == 2 and "no notification block" in missing.stderr
        names = [a["name"] for a in httpx.post(f"{api}/automations/filter", json={}).json()]
        assert sorted(names) == sorted([FAILED, REJECTS, LATE])

        nightly = _nightly_run_left_pending(api)
        # Three runs at once, each on a state file of its own: one the provider refuses (exit
        # 4: Failed, with failed records: no rejects alert), day 1 without rejects (no alert),
        # day 2 with some, over the threshold of 1.
        runs = {
            "refused": (DAY1, {"CUSTSYNC_SUMUP_API_KEY": "sup_sk_wrong"}),
            "clean": (DAY1, {}),
            "rejects": (DAY2, {}),
        }
        procs = {
            name: subprocess.Popen(
                [*CLI, "sync", str(extract), "--target", "sumup", "--json"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**env, **extra, "CUSTSYNC_STATE": str(tmp_path / f"{name}.duckdb")},
            )
            for name, (extract, extra) in runs.items()
        }
        summaries = {}
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=180)
            assert out.strip(), err
            summaries[name] = json.loads(out.strip().splitlines()[-1])
    assert {n: s["exit_code"] for n, s in summaries.items()} == {
        "refused": 4,
        "clean": 0,
        "rejects": 1,
    }
    count = failed_records(summaries["rejects"])
    assert count > 1 and failed_records(summaries["clean"]) == 0

    received = receiver.wait_for(3, timeout=60)
    subjects = [r["subject"] for r in received]
    assert len(received) == 3, subjects
    assert all(r["path"] == "/custsync" and r["text"].startswith(r["subject"]) for r in received)
    failed = [s for s in subjects if "ended Failed" in s]
    rejects = [s for s in subjects if "failed or rejected in run" in s]
    late = [s for s in subjects if "not completed" in s]
    assert len(failed) == 1 and "custsync-sync" in failed[0], subjects
    assert rejects == [
        f"custsync: {count} record(s) failed or rejected in run {summaries['rejects']['run_id']}"
        " (threshold 1)"
    ], subjects
    assert len(late) == 1 and nightly in late[0], subjects
