"""Serving the sandbox: in a background thread, in the foreground, or in a child process.

- :class:`SandboxServer`: ``with SandboxServer(SandboxConfig(rate_limit=200)) as sb:`` for
  tests; an ephemeral loopback port; ``sb.base_url``, ``sb.admin``.
- :class:`SandboxProcess`: the same in a separate Python process, so a benchmark client
  does not share a GIL with the server.
- :func:`run_sandbox`: serve in the foreground until Ctrl-C (the CLI).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType

import uvicorn

from connectors.sandbox.admin import SandboxAdmin
from connectors.sandbox.app import SandboxApp
from connectors.sandbox.config import ENV_PREFIX, SandboxConfig
from connectors.sandbox.protocol import SandboxHttpProtocol

_START_TIMEOUT_S = 15.0


class SandboxError(RuntimeError):
    """The sandbox could not start."""


def uvicorn_config(app: SandboxApp, *, configure_logging: bool) -> uvicorn.Config:
    """One worker, uvloop (where available) and httptools: the fast path, measured."""
    return uvicorn.Config(
        app,
        loop="auto",
        http=SandboxHttpProtocol,
        ws="none",
        lifespan="off",
        access_log=False,
        log_level="warning",
        # In-process servers must not reconfigure the host program's logging.
        log_config=uvicorn.config.LOGGING_CONFIG if configure_logging else None,
        timeout_graceful_shutdown=2,
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket; ``port=0`` picks a free port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        # Listening now (not when uvicorn starts) lets callers connect as soon as they know
        # the URL: early connections wait in the backlog instead of being refused.
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise SandboxError(f"cannot listen on {host}:{port}: {exc}") from exc
    return sock


def base_url_of(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class SandboxServer:
    """The sandbox on a background thread (its own event loop), for tests and demos."""

    def __init__(
        self, config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.app = SandboxApp(config)
        self.host = host
        self.port = port
        self.base_url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._admin: SandboxAdmin | None = None

    @property
    def admin(self) -> SandboxAdmin:
        """An admin client for this server (created on first use)."""
        if not self.base_url:
            raise SandboxError("the sandbox is not running")
        if self._admin is None:
            self._admin = SandboxAdmin(self.base_url)
        return self._admin

    def start(self) -> SandboxServer:
        """Start serving; return once the port accepts connections."""
        if self._thread is not None:
            raise SandboxError("the sandbox is already running")
        sock = bind(self.host, self.port)
        self.base_url = base_url_of(sock)
        server = uvicorn.Server(uvicorn_config(self.app, configure_logging=False))
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="custsync-sandbox", daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise SandboxError("the sandbox did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread (idempotent)."""
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout=10)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def run_sandbox(
    host: str = "127.0.0.1",
    port: int = 8765,
    config: SandboxConfig | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve in the foreground until SIGINT/SIGTERM; ``on_ready(base_url)`` once bound."""
    app = SandboxApp(config)
    sock = bind(host, port)
    if on_ready is not None:
        on_ready(base_url_of(sock))
    uvicorn.Server(uvicorn_config(app, configure_logging=True)).run(sockets=[sock])


def config_env(config: SandboxConfig) -> dict[str, str]:
    """``CUSTSYNC_SANDBOX_*`` variables that reproduce ``config`` in another process."""
    env: dict[str, str] = {}
    for name, value in config.to_dict().items():
        if isinstance(value, list):
            env[ENV_PREFIX + name.upper()] = ",".join(value)
        else:
            env[ENV_PREFIX + name.upper()] = "none" if value is None else str(value)
    return env


class SandboxProcess:
    """The sandbox in a child process (``python -m connectors.sandbox --port 0``)."""

    def __init__(self, config: SandboxConfig | None = None, host: str = "127.0.0.1") -> None:
        self.config = config or SandboxConfig()
        self.host = host
        self.base_url = ""
        self.process: subprocess.Popen[str] | None = None
        self._admin: SandboxAdmin | None = None

    @property
    def admin(self) -> SandboxAdmin:
        """An admin client for the child's server."""
        if self._admin is None:
            self._admin = SandboxAdmin(self.base_url)
        return self._admin

    @property
    def pid(self) -> int:
        """The child's process id (for psutil measurements)."""
        if self.process is None:
            raise SandboxError("the sandbox process is not running")
        return self.process.pid

    def start(self) -> SandboxProcess:
        """Start the child; return once it printed its URL (its first line of output)."""
        env = {**os.environ, **config_env(self.config)}
        command = [sys.executable, "-m", "connectors.sandbox", "--host", self.host, "--port", "0"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline().strip()
        if not first.startswith("http"):
            self.stop()
            raise SandboxError(f"the sandbox process did not start (said {first!r})")
        self.base_url = first.split()[0]
        return self

    def stop(self) -> None:
        """SIGINT (a graceful uvicorn shutdown), then SIGKILL if it lingers."""
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
