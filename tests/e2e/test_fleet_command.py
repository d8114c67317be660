"""``custsync fleet`` against a real Prefect server: no deployment is exit 2 naming it; with
the deployments, ``--no-wait --json`` starts one fleet run with the tenants file made absolute
and returns its id (the full run, with workers, is ``test_fleet_demo``)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from uuid import UUID

import pytest

from tests.e2e.conftest import REPO
from tests.e2e.prefect_server import PrefectServer

pytestmark = pytest.mark.e2e

VALID = '[[tenants]]\nid = "acme"\nextract = "x.csv"\n[tenants.sumup]\napi_key = "ACME_KEY"\n'


def _env(server: PrefectServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTSYNC_", "PREFECT_"))}
    env.update(PREFECT_API_URL=server.api_url, PREFECT_HOME=str(server.home))
    return env


def _custsync(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("custsync")), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_the_command_needs_the_deployment_then_starts_a_fleet_run(tmp_path: Path) -> None:
    (tmp_path / "tenants.toml").write_text(VALID, encoding="utf-8")
    with PrefectServer(tmp_path / "prefect-home") as server:
        server.wait()
        env = _env(server)
        done = _custsync(["fleet", "tenants.toml"], env, tmp_path)
        assert done.returncode == 2, done.stdout + done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        assert "no deployment custsync-fleet/fleet-nightly" in lines[0]
        assert "prefect deploy --name fleet-nightly" in lines[0]

        prefect = str(Path(sys.executable).with_name("prefect"))
        for command in (
            [prefect, "work-pool", "create", "custsync", "--type", "process"],
            [prefect, "--no-prompt", "deploy", "--name", "tenant-sync", "--name", "fleet-nightly"],
        ):
            made = subprocess.run(command, cwd=REPO, env=env, capture_output=True, timeout=300)
            assert made.returncode == 0, made.stdout.decode()[-2000:] + made.stderr.decode()

        done = _custsync(
            ["fleet", "tenants.toml", "--no-wait", "--json", "--dry-run"], env, tmp_path
        )
        assert done.returncode == 0, done.stdout + done.stderr
        started = json.loads(done.stdout)
        run_id = UUID(started["flow_run_id"])

        async def read() -> dict[str, object]:
            from prefect.client.orchestration import get_client
            from prefect.settings import PREFECT_API_URL, temporary_settings

            with temporary_settings({PREFECT_API_URL: server.api_url}):
                async with get_client() as client:
                    run = await client.read_flow_run(run_id)
            return {"name": run.name, "parameters": run.parameters, "state": run.state_name}

        run = asyncio.run(read())
    assert run["name"] == started["name"]
    assert run["parameters"] == {
        "tenants_file": str(tmp_path / "tenants.toml"),
        "dry_run": True,
    }
    assert run["state"] == "Scheduled"  # no worker here: it waits for one
