"""Issue 13's "must show", on real parts and in one fleet run.

A Prefect server, the ``custsync`` process work pool and TWO workers (``prefect worker start``,
each its own process, each ``--limit 3``), the sandbox on loopback with a token bucket of R
requests/s per credential, and ``custsync fleet`` (the real command, running the
``fleet-nightly`` deployment) over four SumUp tenants:

- ``east`` and ``west`` share one credential (the same variable name), each with its own
  ``rate_limit`` = R: alone, each would take the whole bucket;
- ``slow`` has its own key and many rows at a low rate: its run is still going when the
  others are done;
- ``dud``'s key is refused by the provider.

It shows: the one failure stops no other (``1 of 4 tenant run(s) failed: dud/sumup``, exit code
4, the highest of the failed runs'); the shared credential's calls together stayed <= R with
<= 1 % 429s (the sandbox's counters); the cross-tenant audit (``fleet_audit``) is answered while
``slow``'s run is Running per the Prefect API, before and after the query; and both workers
ran tenant runs (each worker's log names the runs it submitted).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.server import SandboxServer
from pipelines.fleet_audit import FleetAudit, fleet_audit
from pipelines.tenants import load_tenants
from tests.e2e.fleet_parts import Worker, cli_env, prefect_bin, statuses
from tests.e2e.gen import write_extract
from tests.e2e.prefect_server import PrefectServer

pytestmark = pytest.mark.e2e

RATE = 4  # the sandbox's limit R per credential, and the pair's own rate_limit each
BURST = 5
PAIR_ROWS = 40  # each of east and west: 80 calls at R together, 20 s (10 s each alone)
SLOW_ROWS = 60  # at 1.5/s: 40 s of calls, outlasting the others (20 s) by a start-up or two
SLOW_RATE = 1.5
KEYS = {
    "PAIR_SUMUP_KEY": "sup_sk_must_show_pair",
    "SLOW_SUMUP_KEY": "sup_sk_must_show_slow",
    "DUD_SUMUP_KEY": "sup_sk_must_show_refused",  # the sandbox knows no such key
}
TENANTS = """
state_dir = "state"

[defaults]
rate_limit = {rate}

[defaults.sumup]
base_url = "{url}"

[[tenants]]
id = "east"
extract = "landing/east.csv"
[tenants.sumup]
api_key = "PAIR_SUMUP_KEY"

[[tenants]]
id = "west"
extract = "landing/west.csv"
[tenants.sumup]
api_key = "PAIR_SUMUP_KEY"

[[tenants]]
id = "slow"
extract = "landing/slow.csv"
rate_limit = {slow_rate}
[tenants.sumup]
api_key = "SLOW_SUMUP_KEY"

[[tenants]]
id = "dud"
extract = "landing/dud.csv"
[tenants.sumup]
api_key = "DUD_SUMUP_KEY"
"""
RUNS = ("east-sumup", "west-sumup", "slow-sumup", "dud-sumup")


@pytest.fixture(scope="module")
def limited_sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(rate_limit=RATE, burst=BURST)) as sb:
        yield sb


def _states(server: PrefectServer) -> dict[str, str]:
    """The state type of each of this test's child runs, by name, from the Prefect API."""
    answer = httpx.post(
        f"{server.api_url}/flow_runs/filter",
        json={"flow_runs": {"name": {"any_": list(RUNS)}}},
        timeout=10,
    )
    answer.raise_for_status()
    return {run["name"]: run["state_type"] for run in answer.json()}


def _audit_while_slow_runs(
    server: PrefectServer, tenants_file: Path, fleet: subprocess.Popen[str]
) -> tuple[dict[str, str], FleetAudit, FleetAudit, dict[str, str]]:
    """Once ``slow`` is Running and another tenant's run is done, the audit of the state
    files and of the published Parquet audit; the states before and after them."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and fleet.poll() is None:
        before = _states(server)
        others_done = [n for n in ("east-sumup", "west-sumup") if before.get(n) == "COMPLETED"]
        if before.get("slow-sumup") == "RUNNING" and others_done:
            tenants = load_tenants(tenants_file)
            audit = fleet_audit(tenants, wait_s=10)
            published = fleet_audit(tenants, published=True)
            return before, audit, published, _states(server)
        time.sleep(0.5)
    raise AssertionError(f"never saw slow running after another was done: {_states(server)}")


def _calls(state: Path) -> list[tuple[datetime, int | None]]:
    with duckdb.connect(str(state), read_only=True) as con:
        rows = con.execute("SELECT started_at, status FROM calls ORDER BY 1").fetchall()
    return [(r[0], r[1]) for r in rows]


def test_four_tenants_two_workers_one_fails_a_shared_limit_holds_audit_while_running(
    fleet_server: PrefectServer, limited_sandbox: SandboxServer, tmp_path: Path
) -> None:
    sandbox = limited_sandbox
    sandbox.admin.reset()
    sandbox.admin.seed_oauth(
        api_keys=[
            {"api_key": KEYS["PAIR_SUMUP_KEY"], "merchant": "pair"},
            {"api_key": KEYS["SLOW_SUMUP_KEY"], "merchant": "slow"},
        ]
    )
    rows = {"east": PAIR_ROWS, "west": PAIR_ROWS, "slow": SLOW_ROWS, "dud": 5}
    (tmp_path / "landing").mkdir()
    for tenant, n in rows.items():
        write_extract(tmp_path / "landing" / f"{tenant}.csv", n, prefix=tenant.upper())
    tenants_file = tmp_path / "tenants.toml"
    tenants_file.write_text(
        TENANTS.format(rate=RATE, slow_rate=SLOW_RATE, url=sandbox.base_url), encoding="utf-8"
    )
    env = cli_env(fleet_server, CUSTSYNC_CONFIG=str(tmp_path / "absent.toml"))
    workers = [
        Worker({**env, **KEYS}, tmp_path / f"worker-{n}.log", name=f"must-show-{n}", limit=3)
        for n in (1, 2)
    ]
    with workers[0], workers[1]:
        fleet = subprocess.Popen(
            [prefect_bin("custsync"), "fleet", "tenants.toml", "--json"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            before, audit, published, after = _audit_while_slow_runs(
                fleet_server, tenants_file, fleet
            )
            out, err = fleet.communicate(timeout=600)
        finally:
            if fleet.poll() is None:
                fleet.kill()
                fleet.wait()
    logs = "\n".join(w.log.read_text(errors="replace")[-2000:] for w in workers)

    # One tenant failed, the three others synced; the fleet says so, exit code 4.
    assert fleet.returncode == 4, out + err + logs
    summary: dict[str, Any] = json.loads(out)
    assert summary["message"] == "1 of 4 tenant run(s) failed: dud/sumup", summary
    assert (summary["runs"], summary["ok"], summary["failed"]) == (4, 3, 1)
    results = {r["tenant"]: r for r in summary["results"]}
    assert {t: (r["result"], r["exit_code"]) for t, r in results.items()} == {
        "east": ("ok", 0),
        "west": ("ok", 0),
        "slow": ("ok", 0),
        "dud": ("failed", 4),
    }
    for tenant in ("east", "west", "slow"):
        assert results[tenant]["counts"]["succeeded"] == rows[tenant]
    merchants = sandbox.admin.state()["sumup"]["merchants"]
    assert {m: len(a["customers"]) for m, a in merchants.items()} == {
        "pair": 2 * PAIR_ROWS,
        "slow": SLOW_ROWS,
    }

    # The audit was answered while slow's run was Running, before the query and after it.
    assert before["slow-sumup"] == after["slow-sumup"] == "RUNNING", (before, after)
    done = [t for t in ("east", "west") if before[f"{t}-sumup"] == "COMPLETED"]
    assert done
    answered = {row["tenant"]: row for row in audit.runs.to_dicts()}
    for tenant in done:  # the finished runs, with their counts
        assert answered[tenant]["status"] == "done", answered
        assert answered[tenant]["succeeded"] == rows[tenant]
        assert answered[tenant]["calls"] >= rows[tenant]
    # slow's in-progress run: visible as running, or left out while its run holds the file.
    if "slow" in answered:
        assert answered["slow"]["status"] == "running", answered
    else:
        assert "slow/sumup" in audit.skipped, audit
    # The published audit never waits for a writer: slow's run is there, part way.
    seen = {row["tenant"]: row for row in published.runs.to_dicts()}
    assert not {"slow/sumup", *(f"{t}/sumup" for t in done)} & set(published.skipped)
    for tenant in done:
        assert (seen[tenant]["status"], seen[tenant]["succeeded"]) == ("done", rows[tenant])
    assert seen["slow"]["status"] == "running", seen
    assert seen["slow"]["succeeded"] < rows["slow"], seen

    # The shared credential: east and west together stayed under R, with <= 1 % 429s.
    east = _calls(tmp_path / "state" / "east-sumup.duckdb")
    west = _calls(tmp_path / "state" / "west-sumup.duckdb")
    pair = sorted(t for t, _ in east + west)
    assert len(pair) >= 2 * PAIR_ROWS
    assert statuses(sandbox).get("429", 0) <= 0.01 * len(pair), statuses(sandbox)
    overlap = (min(east[-1][0], west[-1][0]) - max(east[0][0], west[0][0])).total_seconds()
    assert overlap > 0.25 * (PAIR_ROWS / RATE), "the pair's runs barely overlapped"
    for i, start in enumerate(pair):  # no window saw more than the burst plus R a second
        for j in range(i + 1, len(pair)):
            span = (pair[j] - start).total_seconds()
            assert j - i + 1 <= BURST + RATE * span + 1, (j - i + 1, span)
    assert (len(pair) - 1) / (pair[-1] - pair[0]).total_seconds() <= RATE * 1.05

    # Both workers ran tenant runs.
    children = {r["flow_run_id"] for r in summary["results"]}
    ran = [w.submitted() & children for w in workers]
    assert all(ran), (ran, logs)
    assert set().union(*ran) == children
