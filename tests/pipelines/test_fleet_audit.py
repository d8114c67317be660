"""The cross-tenant audit answers while a tenant's run holds its state file: it waits for the
writer's release (a sync releases its file while each batch is sent) and names a file still
held after its wait, answering the others."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.fleet_audit import fleet_audit
from pipelines.state.store import StateStore
from pipelines.tenants import TenantsFile, parse_tenants

TENANTS = "\n".join(
    f'[[tenants]]\nid = "{t}"\nextract = "x.csv"\n[tenants.sumup]\napi_key = "KEY_{t.upper()}"\n'
    for t in ("acme", "bolt", "cargo")
)

# Holds the file for writing (a run's writer) for argv[2] seconds, saying when it holds it.
HOLDER = (
    "import sys, time, duckdb\n"
    "con = duckdb.connect(sys.argv[1])\n"
    "print('held', flush=True)\n"
    "time.sleep(float(sys.argv[2]))\n"
    "con.close()\n"
)


def _fleet(tmp_path: Path) -> TenantsFile:
    tenants = parse_tenants(TENANTS, tmp_path / "tenants.toml")
    for index, (tenant, target) in enumerate(tenants.runs()):
        if tenant.id == "cargo":
            continue  # never ran: no state file yet
        path = tenants.state_file(tenant.id, target)
        path.parent.mkdir(parents=True, exist_ok=True)
        with StateStore(path) as store:
            store.con.execute(
                "INSERT INTO runs (run_id, flow, target, mode, dry_run, extract_paths,"
                " started_at, status, exit_code) VALUES (?, 'sync', ?, 'upsert', false,"
                " ['x.csv'], now(), 'done', 0)",
                [f"run-{index}", target],
            )
    return tenants


def _hold(path: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_every_tenant_that_ran_is_answered_and_one_that_never_ran_is_named(
    tmp_path: Path,
) -> None:
    audit = fleet_audit(_fleet(tmp_path))
    assert audit.runs["tenant"].to_list() == ["acme", "bolt"]
    assert set(audit.runs["run_id"]) == {"run-0", "run-1"}
    assert audit.skipped == ("cargo/sumup",)


def test_a_file_being_written_is_waited_for_and_then_answered(tmp_path: Path) -> None:
    tenants = _fleet(tmp_path)
    holder = _hold(tenants.state_file("bolt", "sumup"), 1.5)
    try:
        # bolt's file is held when the audit starts: answered only if the audit waits
        audit = fleet_audit(tenants, wait_s=30)
    finally:
        holder.wait(timeout=30)
    assert audit.runs["tenant"].to_list() == ["acme", "bolt"]
    assert audit.skipped == ("cargo/sumup",)


@pytest.mark.parametrize("wait_s", [0.0, 0.3])
def test_a_file_held_past_the_wait_is_named_and_the_others_answered(
    tmp_path: Path, wait_s: float
) -> None:
    tenants = _fleet(tmp_path)
    holder = _hold(tenants.state_file("acme", "sumup"), 20)
    try:
        audit = fleet_audit(tenants, wait_s=wait_s)
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert audit.runs["tenant"].to_list() == ["bolt"]
    assert audit.skipped == ("acme/sumup", "cargo/sumup")
