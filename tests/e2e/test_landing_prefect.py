"""The nightly deployment and the landing folder, the way they run in production.

A real ``prefect server``, the repository's ``prefect.yaml`` deployed with ``prefect deploy
--all`` to a process work pool, a ``prefect worker`` that starts each flow run as its own
process, and the sandbox. Two nights are dropped in a landing folder: the scheduled
deployment's run reads the newest, moves both to ``processed/``; a rerun reads nothing and ends
in the Completed state named ``Nothing new``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import polars as pl
import pytest

from connectors.sandbox.server import SandboxServer
from tests.e2e.conftest import CREDENTIALS, DAY1, DAY2, REPO, total_calls
from tests.e2e.prefect_server import PrefectServer

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent
DEPLOYMENT = "custsync-sync/nightly-sync-sumup"
_FLOW_RUN_ID = re.compile(r"UUID: ([0-9a-f-]{36})")


class Worker:
    """A process work pool named as in prefect.yaml, the repository deployed, one worker."""

    def __init__(self, server: PrefectServer, root: Path, sandbox: SandboxServer) -> None:
        self.api_url = server.api_url
        self.state = root / "state.duckdb"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("CUSTSYNC_", "PREFECT_"))},
            **CREDENTIALS,
            "PREFECT_API_URL": server.api_url,
            "PREFECT_HOME": str(root / "client"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "CUSTSYNC_SUMUP_BASE_URL": sandbox.base_url,
            "CUSTSYNC_VERIFONE_BASE_URL": sandbox.base_url,
            "CUSTSYNC_STATE": str(self.state),
            "CUSTSYNC_CONFIG": str(root / "absent.toml"),
            "CUSTSYNC_LANDING_SETTLE_S": "0.1",
        }
        self.log = root / "worker.log"
        self._process: subprocess.Popen[bytes] | None = None

    def prefect(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(BIN / "prefect"), *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        return done

    def start(self) -> None:
        self.prefect("work-pool", "create", "custsync", "--type", "process")
        self.prefect("--no-prompt", "deploy", "--all")
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(
                [str(BIN / "prefect"), "worker", "start", "--pool", "custsync"],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)

    def run(self, **params: Any) -> dict[str, Any]:
        """Run the nightly SumUp deployment now (its prefect.yaml parameters, ``params`` on
        top), wait for its end and return the flow run as the API shows it."""
        done = self.prefect(
            "deployment", "run", DEPLOYMENT, "--params", json.dumps(params),
            "--watch", "--watch-timeout", "240",
        )  # fmt: skip
        match = _FLOW_RUN_ID.search(done.stdout)
        assert match, done.stdout
        flow_run: dict[str, Any] = httpx.get(
            f"{self.api_url}/flow_runs/{match.group(1)}", timeout=30
        ).json()
        return flow_run

    def artifact(self, flow_run_id: str) -> str:
        """The markdown artifact the flow run published."""
        found = httpx.post(
            f"{self.api_url}/artifacts/filter",
            json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}},
            timeout=30,
        ).json()
        assert len(found) == 1, found
        return str(found[0]["data"])


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory, sandbox: SandboxServer) -> Iterator[Worker]:
    root = tmp_path_factory.mktemp("landing-prefect")
    with PrefectServer(root / "server") as server:
        server.wait()
        worker = Worker(server, root, sandbox)
        try:
            worker.start()
            yield worker
        finally:
            worker.stop()


def _parquet(source: Path, target: Path) -> None:
    pl.read_csv(source, infer_schema=False).write_parquet(target)


def test_two_nights_dropped_the_newest_is_synced_by_the_deployment_and_a_rerun_reads_nothing(
    worker: Worker, sandbox: SandboxServer, tmp_path: Path
) -> None:
    sandbox.admin.reset(config=True)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    _parquet(DAY2, incoming / "customers-20261205.parquet")  # last night's, never synced
    day1 = pl.read_csv(DAY1, infer_schema=False)
    day1.head(20).write_parquet(incoming / "customers-20261206-part1.parquet")
    day1.tail(20).write_parquet(incoming / "customers-20261206-part2.parquet")
    params = {
        # Where this test's landing folder is; landing, target and mode come from prefect.yaml.
        "extract": [str(incoming / "customers-*.parquet")],
        "instruments": [str(incoming / "instruments-*.csv")],  # none tonight
    }

    first = worker.run(**params)

    assert (first["state"]["type"], first["state"]["name"]) == ("COMPLETED", "Completed")
    customers = sandbox.admin.state()["sumup"]["customers"]
    assert len(customers) == 40  # both parts of the newest night, nothing of the older one
    processed = tmp_path / "processed"
    assert sorted(p.name for p in processed.iterdir()) == [
        "customers-20261205.parquet",
        "customers-20261206-part1.parquet",
        "customers-20261206-part2.parquet",
    ]
    assert not list(incoming.iterdir())
    artifact = worker.artifact(first["id"])
    assert "#### Landing folder (night 20261206)" in artifact
    assert "customers-20261205.parquet` | customers | superseded (not read) |" in artifact
    calls = total_calls(sandbox)

    rerun = worker.run(**params)

    assert (rerun["state"]["type"], rerun["state"]["name"]) == ("COMPLETED", "Nothing new")
    assert total_calls(sandbox) == calls
    with duckdb.connect(str(worker.state), read_only=True) as con:
        rows = con.execute(
            "SELECT prefect_flow_run_id, prefect_deployment, mode, inputs, summary->>'message'"
            " FROM runs ORDER BY started_at"
        ).fetchall()
    (run1, run2) = rows
    assert run1[:3] == (first["id"], "nightly-sync-sumup", "mirror")
    read = json.loads(run1[3])
    assert [(Path(e["path"]).name, e["rows"], e["night"]) for e in read] == [
        ("customers-20261206-part1.parquet", 20, "20261206"),
        ("customers-20261206-part2.parquet", 20, "20261206"),
    ]
    assert all(Path(e["processed"]).parent == processed for e in read)
    assert run2[0] == rerun["id"] and json.loads(run2[3]) == []
    assert run2[4].startswith("nothing new in the landing folder")
