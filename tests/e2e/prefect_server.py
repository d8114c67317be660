"""A real ``prefect server`` on a free loopback port, for tests that run many CLI processes.

Without ``PREFECT_API_URL`` every ``custsync sync`` starts and stops Prefect's temporary server
(15–30 s a run here); against one running server a run costs its own work only.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx
import psutil


def free_port() -> int:
    """A loopback port nobody listens on now (the OS's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


TRIGGER_SERVICES = {
    # What automations need: the triggers setting runs both the triggers (reactive and
    # proactive) and the actions (notifications). The rest stays off: CPU, and nothing to test.
    "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "true",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_REPOSSESSOR_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_FOREMAN_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_CANCELLATION_CLEANUP_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_EVENT_LOGGER_ENABLED": "false",
    # Proactive triggers are evaluated this often (default 5 s).
    "PREFECT_SERVER_EVENTS_PROACTIVE_GRANULARITY": "PT1S",
}
"""Settings of a server that evaluates automations (``PrefectServer(..., services=...)``)."""


class PrefectServer:
    """``prefect server start`` with its own PREFECT_HOME, no UI, no analytics, and no services
    unless ``services`` (settings such as :data:`TRIGGER_SERVICES`) says which."""

    def __init__(
        self,
        home: Path,
        *,
        startup_timeout: float = 180.0,
        services: dict[str, str] | None = None,
    ) -> None:
        self.home = home
        self.services = services
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log = home / "server.log"

    def start(self) -> PrefectServer:
        """Start the server; :meth:`wait` blocks until it answers ``/api/health``."""
        self.home.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "PREFECT_HOME": str(self.home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_UI_ENABLED": "false",
            **(self.services or {}),
        }
        env.pop("PREFECT_API_URL", None)
        prefect = Path(sys.executable).with_name("prefect")
        command = [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)]
        flags = ["--no-ui", "--analytics-off", *([] if self.services else ["--no-services"])]
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                [*command, *flags],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # so that stop() reaches uvicorn's children too
            )
        return self

    def wait(self) -> None:
        """Block until the API is healthy; raise (with the server's log) if it never is."""
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"prefect server exited:\n{self._log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"prefect server not healthy:\n{self._log.read_text()[-2000:]}")

    def cpu_seconds(self) -> float:
        """CPU-seconds the server's processes have used so far (for measurements)."""
        if self._process is None:
            return 0.0
        root = psutil.Process(self._process.pid)
        total = 0.0
        for proc in [root, *root.children(recursive=True)]:
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total

    def stop(self) -> None:
        """Stop the server's process group (SIGTERM, then SIGKILL after 15 s)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)

    def __enter__(self) -> PrefectServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
