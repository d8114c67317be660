"""The fleet on real parts: a Prefect server, a process work pool with a worker, the sandbox.

Four tenants: one on SumUp through an OAuth grant, one on Verifone, one on SumUp with its own
API key, and one whose key the provider refuses. The fleet runs each as a child flow run on
the worker; the refused one fails alone, the others sync, and the fleet says how many failed.
"""

from __future__ import annotations

import asyncio
import csv
import time
from pathlib import Path
from typing import Any

import pytest

from connectors.sandbox.server import SandboxServer
from tests.e2e.conftest import DAY1
from tests.e2e.fleet_parts import Worker, cli_env, with_api
from tests.e2e.prefect_server import PrefectServer

pytestmark = pytest.mark.e2e

CLIENT_SECRET = "cc_sk_fleet_platform_secret"
ACME_REFRESH = "rt_fleet_acme_refresh"
CORA_KEY = "sup_sk_fleet_cora_own"
SECRETS = (CLIENT_SECRET, ACME_REFRESH, CORA_KEY, "sup_sk_fleet_wrong", "sandbox-token")
ROWS = 10


def _split(tmp: Path, names: list[str]) -> dict[str, Path]:
    """A different slice of the sample extract per tenant (SumUp ids never collide)."""
    with DAY1.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    out = {}
    for i, name in enumerate(names):
        path = tmp / "landing" / name / "customers.csv"
        path.parent.mkdir(parents=True)
        with path.open("w", encoding="utf-8", newline="") as f:
            csv.writer(f).writerows([header, *body[i * ROWS : (i + 1) * ROWS]])
        out[name] = path
    return out


TENANTS = """
state_dir = "state"

[defaults.sumup]
base_url = "{url}"
client_id = "cc_fleet"
client_secret = "FLEET_SUMUP_CLIENT_SECRET"

[defaults.verifone]
base_url = "{url}"

[[tenants]]
id = "acme"
extract = "landing/acme/*.csv"
[tenants.sumup]
refresh_token = "ACME_SUMUP_REFRESH"

[[tenants]]
id = "bolt"
extract = "landing/bolt/customers.csv"
[tenants.verifone]
token = "BOLT_VERIFONE_TOKEN"
entity_id = "sandbox-entity"

[[tenants]]
id = "cora"
extract = "landing/cora/*.csv"
[tenants.sumup]
api_key = "CORA_SUMUP_API_KEY"

[[tenants]]
id = "dud"
extract = "landing/dud/*.csv"
[tenants.sumup]
api_key = "DUD_SUMUP_API_KEY"
"""


def test_runs_of_one_tenant_and_target_never_overlap(fleet_server: PrefectServer) -> None:
    from pipelines.flows.tenant import one_at_a_time

    held: list[str] = []

    async def run(label: str) -> None:
        async with one_at_a_time("acme", "sumup"):
            held.append(f"{label}+")
            await asyncio.sleep(0.5)
            held.append(f"{label}-")

    async def main() -> None:
        await asyncio.gather(run("a"), run("b"))

    with_api(fleet_server, main())
    assert held in (["a+", "a-", "b+", "b-"], ["b+", "b-", "a+", "a-"])


def test_a_fleet_fans_out_and_one_failing_tenant_stops_no_other(
    fleet_server: PrefectServer, sandbox: SandboxServer, tmp_path: Path
) -> None:
    sandbox.admin.reset(config=True)
    sandbox.admin.seed_oauth(
        clients=[{"client_id": "cc_fleet", "client_secret": CLIENT_SECRET}],
        refresh_tokens=[
            {"refresh_token": ACME_REFRESH, "client_id": "cc_fleet", "merchant": "acme"}
        ],
        api_keys=[{"api_key": CORA_KEY, "merchant": "cora"}],
    )
    _split(tmp_path, ["acme", "bolt", "cora", "dud"])
    tenants_file = tmp_path / "tenants.toml"
    tenants_file.write_text(TENANTS.format(url=sandbox.base_url), encoding="utf-8")

    worker_env = {
        **cli_env(fleet_server),
        "CUSTSYNC_CONFIG": str(tmp_path / "absent.toml"),
        # The worker's own credentials, valid ones: no tenant may be served by them.
        "CUSTSYNC_SUMUP_API_KEY": "sup_sk_sandbox",
        "CUSTSYNC_VERIFONE_TOKEN": "sandbox-token",
        "FLEET_SUMUP_CLIENT_SECRET": CLIENT_SECRET,
        "ACME_SUMUP_REFRESH": ACME_REFRESH,
        "BOLT_VERIFONE_TOKEN": "sandbox-token",
        "CORA_SUMUP_API_KEY": CORA_KEY,
        "DUD_SUMUP_API_KEY": "sup_sk_fleet_wrong",
    }

    async def fleet() -> tuple[Any, dict[str, Any], list[str]]:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import (
            ArtifactFilter,
            ArtifactFilterFlowRunId,
            ArtifactFilterKey,
        )

        from pipelines.flows.fleet import fleet_flow

        state = await fleet_flow(
            tenants_file=str(tenants_file), poll_interval_s=1.0, return_state=True
        )
        summary = await state.result(raise_on_failure=False)
        async with get_client() as client:
            # This fleet run's (the server is shared with the other fleet tests).
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    key=ArtifactFilterKey(any_=["custsync-fleet"]),
                    flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]),
                )
            )
            limits = await client.read_global_concurrency_limits(limit=50)
        names = [f"{lim.name}:{lim.limit}" for lim in limits]
        return state, summary, [str(a.data) for a in artifacts] + names

    started = time.monotonic()
    with Worker(worker_env, tmp_path / "worker.log"):
        state, summary, seen = with_api(fleet_server, fleet())
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert time.monotonic() - started < 600

    assert state.is_failed(), log[-3000:]
    assert state.message == "1 of 4 tenant run(s) failed: dud/sumup"
    by_tenant = {r["tenant"]: r for r in summary["results"]}
    assert {t: (r["result"], r["exit_code"]) for t, r in by_tenant.items()} == {
        "acme": ("ok", 0),
        "bolt": ("ok", 0),
        "cora": ("ok", 0),
        "dud": ("failed", 4),
    }, log[-3000:]
    for tenant in ("acme", "bolt", "cora"):
        assert by_tenant[tenant]["counts"]["succeeded"] == ROWS
    assert (summary["failed"], summary["exit_code"]) == (1, 4)

    remote = sandbox.admin.state()
    # Each tenant in its own merchant account; nothing through the worker's own key (dud).
    merchants = remote["sumup"]["merchants"]
    assert {m: len(a["customers"]) for m, a in merchants.items()} == {"acme": ROWS, "cora": ROWS}
    assert remote["sumup"]["customers"] == []
    assert len(remote["verifone"]["customers"]) == ROWS
    files = sorted(p.name for p in (tmp_path / "state").glob("*.duckdb"))
    assert files == [
        "acme-sumup.duckdb",
        "bolt-verifone.duckdb",
        "cora-sumup.duckdb",
        "dud-sumup.duckdb",
    ]

    artifact = seen[0]
    assert "| acme | sumup | ok | 0 | 10 | 10 | 0 |" in artifact
    assert "| dud | sumup | failed | 4 |" in artifact
    for tenant, target in (("acme", "sumup"), ("bolt", "verifone"), ("dud", "sumup")):
        assert f"custsync-run-{tenant}-{target}:1" in seen
    everything = "\n".join(seen) + log + repr(summary)
    stored = b"".join(p.read_bytes() for p in (tmp_path / "state").glob("*.duckdb*"))
    for secret in SECRETS:
        assert secret not in everything
        assert secret.encode() not in stored
