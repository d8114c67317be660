"""The fleet's end-to-end set-up, shared by its tests: a Prefect server with the ``custsync``
process work pool and the fleet's deployments, workers started as ``prefect worker start``
(each in its own process group), the environments they run with, and reading results back.

``fleet_server`` (a pytest fixture, exposed to ``tests/e2e`` by its ``conftest.py``) is one
server for the session, with the pool and the ``tenant-sync`` and ``fleet-nightly``
deployments. The tests sharing it leave no run scheduled behind (each waits for its runs), so
the workers of one test never pick up another's. ``pipelines/fleet_demo.py`` is the same
set-up for people (no pytest): these use its pieces (the worker's command, the deployments),
and so does the benchmark.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from connectors.sandbox.server import SandboxServer
from pipelines.fleet_demo import (
    REPO,
    WORKER_ENV,
    deploy,
    prefect_bin,
    stop_group,
    worker_command,
)
from tests.e2e.prefect_server import PrefectServer

__all__ = ["Worker", "cli_env", "fleet_server", "prefect_bin", "run_ok", "statuses", "with_api"]
T = TypeVar("T")


def cli_env(server: PrefectServer, **extra: str) -> dict[str, str]:
    """This process's environment without any ``CUSTSYNC_*`` or ``PREFECT_*`` variable, talking
    to ``server``; plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTSYNC_", "PREFECT_"))}
    env.update(PREFECT_API_URL=server.api_url, PREFECT_HOME=str(server.home), **extra)
    return env


def run_ok(command: list[str], env: dict[str, str], cwd: Path = REPO) -> None:
    """Run ``command``; fail the test with its output unless it exits 0."""
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stdout.decode()[-2000:] + done.stderr.decode()[-2000:]


@pytest.fixture(scope="session")
def fleet_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A Prefect server with the ``custsync`` pool and the ``tenant-sync`` and
    ``fleet-nightly`` deployments."""
    with PrefectServer(tmp_path_factory.mktemp("prefect-fleet")) as server:
        server.wait()
        deploy(cli_env(server))
        yield server


class Worker:
    """``prefect worker start --pool custsync --type process --name NAME [--limit N]`` in its
    own process group (stopped, group and all, on the way out), its output in ``log``."""

    def __init__(
        self, env: dict[str, str], log: Path, name: str = "worker", limit: int | None = None
    ) -> None:
        self.env = {**WORKER_ENV, **env}
        self.log, self.name, self.limit = log, name, limit
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Worker:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                worker_command(self.name, self.limit),
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def __exit__(self, *exc: object) -> None:
        process, self.process = self.process, None
        if process is not None:
            stop_group(process)

    def submitted(self) -> set[str]:
        """The ids of the flow runs this worker says (in its log) it submitted."""
        text = self.log.read_text(errors="replace")
        pattern = rf"Worker '{re.escape(self.name)}' submitting flow run '([0-9a-f-]{{36}})'"
        return set(re.findall(pattern, text))


def with_api(server: PrefectServer, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` against ``server``'s API (flushing its logs while the server answers)."""
    from prefect.logging.handlers import APILogHandler
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def main() -> T:
        try:
            return await coro
        finally:
            await APILogHandler.aflush()

    with temporary_settings({PREFECT_API_URL: server.api_url}):
        return asyncio.run(main())


def statuses(sandbox: SandboxServer) -> dict[str, int]:
    """The sandbox's answers so far, by HTTP status, over every route."""
    out: dict[str, int] = {}
    for route in sandbox.admin.counters()["by_route"].values():
        for status, n in route.items():
            out[status] = out.get(status, 0) + int(n)
    return out
