"""A tenant with a landing folder, run as the fleet's child flow in process (Prefect's test
harness, the sandbox): the first night is read, moved to ``processed/`` and published to the
Parquet audit; the next run finds nothing new and ends in the Completed state ``Nothing new``,
which the fleet counts as ok; the published audit shows both runs as the state file does."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import polars as pl
import pytest

from connectors.sandbox.server import SandboxServer
from pipelines.audit_view import V_RUNS_COLUMNS
from pipelines.fleet_audit import fleet_audit
from pipelines.state.store import StateStore
from pipelines.tenants import load_tenants
from tests.e2e.conftest import DAY1

pytestmark = pytest.mark.e2e


def _tenants_file(root: Path, sandbox: SandboxServer) -> Path:
    (root / "landing" / "acme").mkdir(parents=True)
    shutil.copy(DAY1, root / "landing" / "acme" / "customers-20261205.csv")
    path = root / "tenants.toml"
    path.write_text(
        f"""
[[tenants]]
id = "acme"
landing = "landing/acme"
mode = "upsert"
[tenants.sumup]
api_key = "CUSTSYNC_SUMUP_API_KEY"
base_url = "{sandbox.base_url}"
""",
        encoding="utf-8",
    )
    return path


def _child(tenants_file: Path) -> Any:
    from pipelines.flows.tenant import tenant_sync_flow

    async def main() -> Any:
        return await tenant_sync_flow(
            tenants_file=str(tenants_file), tenant="acme", target="sumup", return_state=True
        )

    return asyncio.run(main())


def test_a_landing_tenant_reads_its_night_then_has_nothing_new(
    env: dict[str, str],
    sandbox: SandboxServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipelines.flows.fleet import result_of

    monkeypatch.setenv("CUSTSYNC_LANDING_SETTLE_S", "0")
    tenants_file = _tenants_file(tmp_path, sandbox)
    tenants = load_tenants(tenants_file)

    first = _child(tenants_file)
    assert first.is_completed(), first.message
    assert not list((tmp_path / "landing" / "acme").iterdir())  # moved ...
    assert [p.name for p in (tmp_path / "landing" / "processed").iterdir()] == [
        "customers-20261205.csv"  # ... to processed/ beside the landing folder
    ]

    second = _child(tenants_file)
    assert second.is_completed() and second.name == "Nothing new", second.name
    assert "nothing new in the landing folder" in (second.message or "")
    run = SimpleNamespace(id="00000000-0000-0000-0000-000000000000", state=second)
    assert result_of(tenants, "acme", "sumup", run, 1.0).result == "ok"  # type: ignore[arg-type]

    audit = fleet_audit(tenants, last=2, published=True)
    assert audit.skipped == ()
    with StateStore(tenants.state_file("acme", "sumup"), read_only=True) as store:
        stored = store.query("SELECT * FROM v_runs ORDER BY started_at DESC")
    shown = ["run_id", *(c for c in audit.runs.columns if c in V_RUNS_COLUMNS[1:])]
    assert audit.runs.select(shown).rows() == stored.select(shown).rows()
    assert stored["succeeded"][1] > 0 and stored["planned"][0] == 0
    # no secret in the published files (the runs rows' settings say set/unset)
    published = [pl.read_parquet(f) for f in tenants.audit_folder().rglob("*.parquet")]
    text = " ".join(str(frame.rows()) for frame in published)
    assert "settings" in published_columns(published)
    assert '"set"' in text  # the api_key setting: set, not its value
    assert env["CUSTSYNC_SUMUP_API_KEY"] not in text


def published_columns(frames: list[pl.DataFrame]) -> set[str]:
    """Every column of the published files."""
    return {c for frame in frames for c in frame.columns}


def test_the_fleet_reads_a_childs_counts_from_its_published_audit_without_its_state_file(
    env: dict[str, str],
    sandbox: SandboxServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A child that ran on another machine: the fleet sees its audit folder, not its state
    file; the counts it reports are the same."""
    from pipelines.flows.fleet import result_of

    monkeypatch.setenv("CUSTSYNC_LANDING_SETTLE_S", "0")
    tenants_file = _tenants_file(tmp_path, sandbox)
    tenants = load_tenants(tenants_file)
    state = _child(tenants_file)
    assert state.is_completed(), state.message
    run = SimpleNamespace(id=state.state_details.flow_run_id, state=state)
    local = result_of(tenants, "acme", "sumup", run, 1.0)  # type: ignore[arg-type]
    assert local.counts["succeeded"] > 0, local
    state_file = tenants.state_file("acme", "sumup")
    state_file.rename(tmp_path / "elsewhere.duckdb")  # out of the fleet's reach
    remote = result_of(tenants, "acme", "sumup", run, 1.0)  # type: ignore[arg-type]
    assert (remote.counts, remote.exit_code, remote.result) == (
        local.counts,
        local.exit_code,
        local.result,
    )
    shutil.rmtree(tenants.audit_folder())  # neither: the result stands, without counts
    bare = result_of(tenants, "acme", "sumup", run, 1.0)  # type: ignore[arg-type]
    assert bare.result == "ok" and not any(bare.counts.values()), bare
