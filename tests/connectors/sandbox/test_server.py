"""Starting and stopping the sandbox: thread, child process, CLI, in-process ASGI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from connectors.sandbox.app import SandboxApp
from connectors.sandbox.cli import sandbox_command
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.server import SandboxError, SandboxProcess, SandboxServer
from tests.connectors.sandbox.conftest import SUMUP, VERIFONE, person


def test_server_binds_an_ephemeral_port_and_stops_cleanly() -> None:
    server = SandboxServer(SandboxConfig(rate_limit=200))
    with pytest.raises(SandboxError):
        _ = server.admin
    with server as sb:
        assert sb.base_url.startswith("http://127.0.0.1:") and not sb.base_url.endswith(":0")
        assert sb.admin.config()["rate_limit"] == 200
        with pytest.raises(SandboxError):
            sb.start()
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.base_url + "/_sandbox/health", timeout=2)
    server.stop()  # idempotent


def test_child_process_takes_its_config_from_the_parent() -> None:
    with SandboxProcess(SandboxConfig(rate_limit=321, seed=5)) as sp:
        assert sp.admin.config()["rate_limit"] == 321 and sp.pid != os.getpid()
        created = httpx.post(sp.base_url + "/v2/customer", json=person(), headers=VERIFONE)
        assert created.status_code == 200
        process = sp.process
    assert process is not None and process.returncode == 0


def test_cli_help() -> None:
    result = CliRunner().invoke(sandbox_command, ["--help"])
    assert result.exit_code == 0
    for option in (
        "--host",
        "--port",
        "--rate-limit",
        "--burst",
        "--latency-ms",
        "--fault-rate",
        "--seed",
    ):
        assert option in result.output


def test_cli_refuses_bad_knobs() -> None:
    result = CliRunner().invoke(sandbox_command, ["--fault-rate", "2", "--port", "0"])
    assert result.exit_code == 2 and "fault_rate" in result.output


def test_cli_serves_prints_url_and_credentials_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    env = {**os.environ, "CUSTSYNC_SANDBOX_RATE_LIMIT": "77"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "connectors.sandbox",
            "--port",
            "0",
            "--seed",
            "3",
            "--port-file",
            str(port_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        banner = [process.stdout.readline() for _ in range(3)]
        assert url == f"http://127.0.0.1:{port_file.read_text().strip()}"
        assert "Bearer sandbox-token" in "".join(banner)
        config = httpx.get(url + "/_sandbox/config").json()
        assert (config["rate_limit"], config["seed"]) == (77, 3)
        assert httpx.get(url + "/v0.1/customers/x", headers=SUMUP).status_code == 404
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert "Traceback" not in err


@pytest.mark.anyio
async def test_in_process_asgi_transport() -> None:
    """Quick route tests can skip the network; a reset then surfaces as an exception."""
    app = SandboxApp(SandboxConfig())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        response = await client.post("/v0.1/customers", json={"customer_id": "c"}, headers=SUMUP)
        assert response.status_code == 201
        app.apply_config(app.config.updated({"fault_rate": 1.0, "fault_kinds": ["reset"]}))
        with pytest.raises(ConnectionResetError):
            await client.get("/v0.1/customers/c", headers=SUMUP)
