"""Plan, then apply (issue 10, deliverable 7): a dry run stores what the real run will do, and
``custsync apply RUN_ID`` does exactly that, or refuses.

The CLI runs as a child process without a Prefect API (the local path); the sandbox serves
both providers on loopback; the state file is a real DuckDB file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from connectors.sandbox.server import SandboxServer
from tests.e2e.conftest import CREDENTIALS, DAY1, DAY2, migrate, route_counts
from tests.e2e.conftest import _run as run_flow
from tests.e2e.prefect_server import PrefectServer

pytestmark = pytest.mark.e2e

SEEDED = 3
"""Customers the provider already holds, each matching one extract row's e-mail address."""


def _cli(
    sandbox: SandboxServer, state: Path, *args: str, prefect: PrefectServer | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTSYNC_", "PREFECT_API"))}
    if prefect is not None:  # the runs are flow runs of this server
        env.update(PREFECT_API_URL=prefect.api_url, PREFECT_HOME=str(prefect.home))
    env.update(
        CREDENTIALS,
        CUSTSYNC_STATE=str(state),
        CUSTSYNC_CONFIG=str(state.with_name("absent.toml")),
        CUSTSYNC_VERIFONE_BASE_URL=sandbox.base_url,
        CUSTSYNC_SUMUP_BASE_URL=sandbox.base_url,
    )
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _json(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


def _seed_verifone(sandbox: SandboxServer) -> dict[str, str]:
    """Existing Verifone customers for the first rows with an e-mail; e-mail -> remote id."""
    people = pl.read_csv(DAY1, infer_schema=False).filter(pl.col("email").is_not_null())
    seeded = sandbox.admin.seed_verifone(
        [
            {
                "entity_id": "sandbox-entity",
                "email_address": p["email"].strip().lower(),
                "company_name": "Pre-existing Ltd",
                "work_phone": "+44 20 0000 0000",
            }
            for p in people.head(SEEDED).to_dicts()
        ]
    )
    return {str(c["email_address"]): str(c["id"]) for c in seeded}


def _query(state: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(state), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


@pytest.fixture
def extract(tmp_path: Path) -> Path:
    """A copy of the sample extract that a test may change."""
    path = tmp_path / "customers.csv"
    shutil.copyfile(DAY1, path)
    return path


def test_a_migration_applies_its_dry_run_plan_call_for_call(
    sandbox: SandboxServer, tmp_path: Path, extract: Path
) -> None:
    sandbox.admin.reset(config=True)
    seeded = _seed_verifone(sandbox)
    state = tmp_path / "state.duckdb"

    dry = _cli(sandbox, state, "migrate", str(extract), "-t", "verifone", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    planned = _json(dry)
    assert (planned["create"]["planned"], planned["adopt"]["planned"]) == (40 - SEEDED, SEEDED)
    assert len(sandbox.admin.state()["verifone"]["customers"]) == SEEDED, "a dry run sends nothing"
    writes = {r: n for r, n in route_counts(sandbox).items() if not r.startswith("GET")}
    assert set(writes) <= {"POST /_sandbox/seed/verifone"}, writes

    # The plan, as `report --plan` shows it: each adoption names the customer it takes.
    shown = _cli(sandbox, state, "report", "--run", planned["run_id"], "--plan", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    plan = {row["external_id"]: row for row in json.loads(shown.stdout)}
    adopts = {k: r["remote_id"] for k, r in plan.items() if r["action"] == "adopt"}
    assert sorted(adopts.values()) == sorted(seeded.values())

    before = route_counts(sandbox)
    done = _cli(sandbox, state, "apply", planned["run_id"], "--json")
    assert done.returncode == 0, done.stderr
    applied = _json(done)
    assert applied["flow"] == "apply" and applied["plan_run_id"] == planned["run_id"]
    assert (applied["created"], applied["adopted"]) == (40 - SEEDED, SEEDED)

    # What apply did, per key, is the plan: the same action on the same key and customer ...
    outcomes = _query(
        state,
        "SELECT external_id, action, result, remote_id FROM outcomes WHERE run_id = ?",
        applied["run_id"],
    )
    assert {k: a for k, a, _, _ in outcomes} == {k: r["action"] for k, r in plan.items()}
    assert {k: res for k, _, res, _ in outcomes} == {
        k: "adopted" if r["action"] == "adopt" else "succeeded" for k, r in plan.items()
    }
    assert {k: rid for k, a, _, rid in outcomes if a == "adopt"} == adopts
    # ... call for call: one create per planned create, one update (get-merge-post) per
    # adoption, their fetch in one bulk search, and no look-up (the plan holds its results).
    calls = _query(
        state,
        "SELECT c.operation, p.action FROM calls c LEFT JOIN plan p"
        " ON p.run_id = c.run_id AND p.plan_id = c.plan_id WHERE c.run_id = ?",
        applied["run_id"],
    )
    assert Counter(calls) == Counter(
        {("create", "create"): 40 - SEEDED, ("update", "adopt"): SEEDED, ("get_many", None): 1}
    )
    sent = {r: n - before.get(r, 0) for r, n in route_counts(sandbox).items()}
    assert sent["POST /v2/customer"] == 40 - SEEDED
    assert sent["POST /v2/customer/{customerId}"] == SEEDED
    customers = sandbox.admin.state()["verifone"]["customers"]
    assert len(customers) == 40, "every extract row has one customer: none duplicated"
    assert {c["id"] for c in customers} >= set(seeded.values())

    # A plan is applied once.
    again = _cli(sandbox, state, "apply", planned["run_id"])
    assert again.returncode == 3, again.stderr
    assert "already applied" in again.stderr


def test_apply_refuses_when_the_extract_changed(
    sandbox: SandboxServer, tmp_path: Path, extract: Path
) -> None:
    sandbox.admin.reset(config=True)
    state = tmp_path / "state.duckdb"
    dry = _cli(sandbox, state, "sync", str(extract), "-t", "sumup", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    run_id = _json(dry)["run_id"]
    extract.write_text(extract.read_text(encoding="utf-8").replace("Schmidt", "Schmitt"))
    before = sandbox.admin.counters()["total"]
    refused = _cli(sandbox, state, "apply", run_id)
    assert refused.returncode == 3, refused.stderr
    assert "changed since dry run" in refused.stderr and "Traceback" not in refused.stderr
    assert sandbox.admin.counters()["total"] == before, "nothing sent"
    assert _query(state, "SELECT flow, status, plan_run_id FROM runs WHERE flow = 'apply'") == [
        ("apply", "stopped", None)
    ]


def test_apply_refuses_when_the_snapshot_changed(
    sandbox: SandboxServer, tmp_path: Path, extract: Path
) -> None:
    sandbox.admin.reset(config=True)
    state = tmp_path / "state.duckdb"
    dry = _cli(sandbox, state, "sync", str(extract), "-t", "sumup", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    # Another sync ran in between: the plan was made against a snapshot that is gone.
    other = _cli(sandbox, state, "sync", str(DAY1), "-t", "sumup")
    assert other.returncode == 0, other.stderr
    customers = len(sandbox.admin.state()["sumup"]["customers"])
    refused = _cli(sandbox, state, "apply", _json(dry)["run_id"])
    assert refused.returncode == 3, refused.stderr
    assert "snapshot changed" in refused.stderr
    assert len(sandbox.admin.state()["sumup"]["customers"]) == customers


def test_apply_refuses_what_is_not_an_applicable_dry_run(
    sandbox: SandboxServer, tmp_path: Path, extract: Path
) -> None:
    sandbox.admin.reset(config=True)
    state = tmp_path / "state.duckdb"
    unknown = _cli(sandbox, state, "apply", "20261122T061000.000000Z-abcdef")
    assert unknown.returncode == 2 and "no state file" in unknown.stderr
    real = _cli(sandbox, state, "sync", str(extract), "-t", "sumup", "--json")
    assert real.returncode == 0, real.stderr
    unknown = _cli(sandbox, state, "apply", "20261122T061000.000000Z-abcdef")
    assert unknown.returncode == 2 and "no run" in unknown.stderr
    not_dry = _cli(sandbox, state, "apply", _json(real)["run_id"])
    assert not_dry.returncode == 3 and "not a dry run" in not_dry.stderr


def test_a_sync_plan_shows_each_updates_changes_and_apply_makes_them(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    sandbox.admin.reset(config=True)
    state = tmp_path / "state.duckdb"
    assert _cli(sandbox, state, "sync", str(DAY1), "-t", "sumup").returncode == 0
    day2 = ("sync", str(DAY2), "-t", "sumup", "--max-reject-fraction", "1", "--dry-run", "--json")
    dry = _cli(sandbox, state, *day2)
    assert dry.returncode == 1, dry.stderr  # day 2 holds rejects: the real run's exit code too
    run_id = _json(dry)["run_id"]

    def shown(fmt: str) -> str:
        done = _cli(sandbox, state, "report", "--run", run_id, "--plan", "--format", fmt)
        assert done.returncode == 0, done.stderr
        return done.stdout

    plan = {row["external_id"]: row for row in json.loads(shown("json"))}
    moved = [c for c in plan["CRM-00002"]["changes"] if c["old"] == "Lindenallee 3"]
    assert plan["CRM-00002"]["action"] == "update"
    assert [c["new"] for c in moved] == ["Lindenallee 5"], plan["CRM-00002"]
    assert all(r["changes"] == [] for r in plan.values() if r["action"] != "update")
    assert "Lindenallee 3 → Lindenallee 5" in shown("csv")

    applied = _cli(sandbox, state, "apply", run_id, "--json")
    assert applied.returncode == 1, applied.stderr  # the dry run's rejects, as a real run's
    summary = _json(applied)
    assert summary["update"]["succeeded"] == _json(dry)["update"]["planned"]
    assert summary["rejected"] == _json(dry)["rejected"]
    customers = {c["customer_id"]: c for c in sandbox.admin.state()["sumup"]["customers"]}
    lines = [c["personal_details"].get("address", {}).get("line_1") for c in customers.values()]
    assert "Lindenallee 5" in lines and "Lindenallee 3" not in lines
    # The dry run's plan keeps its old values once applied (its merge bases are stored).
    assert "Lindenallee 3 → Lindenallee 5" in shown("csv")


def test_a_migration_planned_and_applied_as_prefect_flows(
    env: dict[str, str], sandbox: SandboxServer
) -> None:
    from pipelines.flows.apply import apply_flow

    seeded = _seed_verifone(sandbox)
    dry = migrate(extract=[str(DAY1)], target="verifone", dry_run=True)
    assert (dry["create"]["planned"], dry["adopt"]["planned"]) == (40 - SEEDED, SEEDED), dry
    applied = run_flow(apply_flow, {"run_id": dry["run_id"]})
    assert applied["exit_code"] == 0, applied
    assert (applied["created"], applied["adopted"]) == (40 - SEEDED, SEEDED)
    state = Path(env["CUSTSYNC_STATE"])
    ((flow_run, plan_run),) = _query(
        state, "SELECT prefect_flow_run_id, plan_run_id FROM runs WHERE flow = 'apply'"
    )
    assert flow_run is not None and plan_run == dry["run_id"]
    adopted = _query(
        state, "SELECT remote_id FROM outcomes WHERE run_id = ? AND result = 'adopted'",
        applied["run_id"],
    )  # fmt: skip
    assert sorted(r for (r,) in adopted) == sorted(seeded.values())
    again = run_flow(apply_flow, {"run_id": dry["run_id"]})
    assert again["exit_code"] == 3 and "already applied" in again["message"]


def test_the_cli_plans_and_applies_through_a_prefect_server(
    sandbox: SandboxServer, tmp_path: Path, extract: Path
) -> None:
    sandbox.admin.reset(config=True)
    seeded = _seed_verifone(sandbox)
    state = tmp_path / "state.duckdb"
    with PrefectServer(tmp_path / "prefect-server") as server:
        server.wait()
        dry = _cli(
            sandbox, state, "migrate", str(extract), "-t", "verifone", "--dry-run", "--json",
            prefect=server,
        )  # fmt: skip
        assert dry.returncode == 0, dry.stderr
        planned = _json(dry)
        assert planned["adopt"]["planned"] == SEEDED
        done = _cli(sandbox, state, "apply", planned["run_id"], "--json", prefect=server)
        assert done.returncode == 0, done.stderr
        assert _json(done)["adopted"] == SEEDED
        extract.write_text(extract.read_text(encoding="utf-8") + "\n")
        dry2 = _cli(sandbox, state, "sync", str(extract), "-t", "verifone", "--dry-run", "--json")
        extract.write_text(extract.read_text(encoding="utf-8") + "\n")
        refused = _cli(sandbox, state, "apply", _json(dry2)["run_id"], prefect=server)
        assert refused.returncode == 3, refused.stderr
        assert "error:" in refused.stderr and "Traceback" not in refused.stderr
    runs = _query(state, "SELECT flow, dry_run, status, prefect_flow_run_id IS NOT NULL FROM runs")
    assert sorted(runs) == sorted(
        [
            ("migrate", True, "planned", True),
            ("apply", False, "done", True),
            ("sync", True, "planned", False),
            ("apply", False, "stopped", True),
        ]
    )
    assert len(sandbox.admin.state()["verifone"]["customers"]) == 40
    assert set(seeded.values()) <= {c["id"] for c in sandbox.admin.state()["verifone"]["customers"]}


def test_a_sumup_migration_plans_its_adoptions_by_customer_id(
    sandbox: SandboxServer, tmp_path: Path, extract: Path
) -> None:
    from connectors.providers.sumup import customer_id

    sandbox.admin.reset(config=True)
    keys = pl.read_csv(DAY1, infer_schema=False)["external_id"].head(SEEDED).to_list()
    ids = {customer_id(k): k for k in keys}
    sandbox.admin.seed_sumup(
        [{"customer_id": cid, "personal_details": {"first_name": "Old"}} for cid in ids]
    )
    state = tmp_path / "state.duckdb"
    dry = _cli(sandbox, state, "migrate", str(extract), "-t", "sumup", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    run_id = _json(dry)["run_id"]
    looked = _query(state, "SELECT DISTINCT method FROM calls WHERE run_id = ?", run_id)
    assert looked == [("GET",)], "a dry run's look-ups are reads"
    plan = _query(state, "SELECT external_id, remote_id FROM plan WHERE action = 'adopt'")
    assert dict(plan) == {k: cid for cid, k in ids.items()}
    done = _cli(sandbox, state, "apply", run_id, "--json")
    assert done.returncode == 0, done.stderr
    assert (_json(done)["created"], _json(done)["adopted"]) == (40 - SEEDED, SEEDED)
    # No create was sent for an adopted key (a 409 would have shown one).
    creates = _query(
        state,
        "SELECT count(*) FROM calls c JOIN plan p USING (run_id, plan_id)"
        " WHERE c.run_id = ? AND c.operation = 'create' AND p.action = 'adopt'",
        _json(done)["run_id"],
    )
    assert creates == [(0,)]
    assert len(sandbox.admin.state()["sumup"]["customers"]) == 40


def test_an_apply_that_crashes_is_recovered_like_any_run(
    env: dict[str, str], sandbox: SandboxServer
) -> None:
    from pipelines.flows.apply import apply_flow
    from tests.e2e.conftest import sync
    from tests.e2e.expect import assert_in_step
    from tests.e2e.test_crash import run_panicking

    dry = sync(extract=[str(DAY1)], target="sumup", dry_run=True, batch_size=10)
    crashed = run_panicking("execute", "apply", dry["run_id"], "--json", env=env)
    assert crashed.returncode == 70, crashed.stdout + crashed.stderr
    assert _json(crashed)["create"]["succeeded"] == 10  # the first batch, recorded
    state = Path(env["CUSTSYNC_STATE"])
    assert _query(state, "SELECT count(*) FROM journal WHERE state = 'pending'") == [(10,)]
    # The plan was applied (if only in part): never twice. The next run settles the batch in
    # flight through the journal and finishes the work.
    again = run_flow(apply_flow, {"run_id": dry["run_id"]})
    assert again["exit_code"] == 3 and "already applied" in again["message"]
    after = sync(extract=[str(DAY1)], target="sumup")
    assert after["exit_code"] == 0, after
    assert_in_step(sandbox, str(state), "sumup", DAY1)


def test_a_dry_run_shows_the_ambiguous_adoptions_the_apply_leaves_for_a_person(
    sandbox: SandboxServer, tmp_path: Path, extract: Path
) -> None:
    sandbox.admin.reset(config=True)
    person = (
        pl.read_csv(DAY1, infer_schema=False)
        .filter(pl.col("email").is_not_null())
        .row(0, named=True)
    )
    twin = {"entity_id": "sandbox-entity", "email_address": person["email"], "company_name": "T"}
    ids = sorted(str(c["id"]) for c in sandbox.admin.seed_verifone([twin, dict(twin)]))
    state = tmp_path / "state.duckdb"
    dry = _cli(sandbox, state, "migrate", str(extract), "-t", "verifone", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    planned = _json(dry)
    assert (planned["adopt"]["planned"], planned["ambiguous"]) == (1, 1)
    ((reason, remote_id),) = _query(
        state, "SELECT reason, remote_id FROM plan WHERE action = 'adopt'"
    )
    assert remote_id is None and reason.startswith("ambiguous") and all(i in reason for i in ids)
    done = _cli(sandbox, state, "apply", planned["run_id"], "--json")
    assert done.returncode == 1, done.stderr  # an ambiguous record is not done: as migrate's
    assert _json(done)["ambiguous"] == 1 and _json(done)["created"] == 39
    twins = [c for c in sandbox.admin.state()["verifone"]["customers"] if c["id"] in ids]
    assert [c.get("company_name") for c in twins] == ["T", "T"], "neither was touched"
