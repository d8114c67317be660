"""A SumUp sync through a merchant's OAuth grant, from the CLI to the state file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from connectors.sandbox.server import SandboxServer
from tests.e2e.conftest import DAY1

pytestmark = pytest.mark.e2e

CLIENT_SECRET = "cc_sk_cli_platform_secret"
REFRESH = "rt_cli_merchant_refresh"


def _sync(
    sandbox: SandboxServer, state: Path, client_secret: str = CLIENT_SECRET
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTSYNC_", "PREFECT_API"))}
    env.update(
        CUSTSYNC_STATE=str(state),
        CUSTSYNC_CONFIG=str(state.with_name("absent.toml")),
        CUSTSYNC_SUMUP_BASE_URL=sandbox.base_url,
        CUSTSYNC_SUMUP_REFRESH_TOKEN=REFRESH,
        CUSTSYNC_SUMUP_CLIENT_ID="cc_cli",
        CUSTSYNC_SUMUP_CLIENT_SECRET=client_secret,
    )
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "sync", str(DAY1), "-t", "sumup", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def grant(sandbox: SandboxServer) -> SandboxServer:
    sandbox.admin.reset(config=True)
    sandbox.admin.seed_oauth(
        clients=[{"client_id": "cc_cli", "client_secret": CLIENT_SECRET}],
        refresh_tokens=[{"refresh_token": REFRESH, "client_id": "cc_cli", "merchant": "m1"}],
    )
    return sandbox


def _no_secret_in(done: subprocess.CompletedProcess[str], state: Path) -> None:
    stored = state.read_bytes()
    for secret in (CLIENT_SECRET, REFRESH, "sup_at_"):
        assert secret not in done.stdout and secret not in done.stderr
        assert secret.encode() not in stored


def test_a_sync_through_an_oauth_grant(grant: SandboxServer, tmp_path: Path) -> None:
    state = tmp_path / "state.duckdb"
    done = _sync(grant, state)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    account = grant.admin.state()["sumup"]["merchants"]["m1"]  # the merchant's own account
    assert summary["create"]["succeeded"] == len(account["customers"]) == 40
    with duckdb.connect(str(state), read_only=True) as con:
        trades = con.execute(
            "SELECT status, path_template FROM calls WHERE operation = 'refresh_token'"
        ).fetchall()
    assert trades == [(200, "/token")]
    _no_secret_in(done, state)


def test_a_token_refused_after_its_refresh_stops_the_run_with_exit_4(
    grant: SandboxServer, tmp_path: Path
) -> None:
    grant.admin.configure(oauth_token_lifetime_s=0)  # every access token is stale on arrival
    state = tmp_path / "state.duckdb"
    done = _sync(grant, state)
    assert done.returncode == 4, done.stderr
    assert grant.admin.state()["sumup"]["merchants"].get("m1", {}).get("customers", []) == []
    _no_secret_in(done, state)


def test_a_refused_refresh_is_exit_4_naming_the_oauth_error(
    grant: SandboxServer, tmp_path: Path
) -> None:
    state = tmp_path / "state.duckdb"
    done = _sync(grant, state, client_secret="cc_sk_cli_wrong_secret")
    assert done.returncode == 4, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert "refused the OAuth refresh (invalid_client)" in summary["message"]
    assert "cc_sk_cli_wrong_secret" not in done.stdout + done.stderr
    _no_secret_in(done, state)
