"""``custsync fleet`` against a real Prefect server: no deployment is exit 2 naming it; with
the deployments, ``--no-wait --json`` starts one fleet run with the tenants file made absolute
and returns its id (the full run, with workers, is ``test_fleet_demo``)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from uuid import UUID

import pytest

from pipelines.fleet_demo import deploy
from tests.e2e.fleet_parts import cli_env, prefect_bin
from tests.e2e.prefect_server import PrefectServer

pytestmark = pytest.mark.e2e

VALID = '[[tenants]]\nid = "acme"\nextract = "x.csv"\n[tenants.sumup]\napi_key = "ACME_KEY"\n'


def _custsync(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [prefect_bin("custsync"), *args],
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
        env = cli_env(server)
        done = _custsync(["fleet", "tenants.toml"], env, tmp_path)
        assert done.returncode == 2, done.stdout + done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        assert "no deployment custsync-fleet/fleet-nightly" in lines[0]
        assert "prefect deploy --name fleet-nightly" in lines[0]

        deploy(env)

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
