"""``retain_personal_days``: personal values of plan, change and reject rows older than the limit
are redacted at the end of a run; the snapshot keeps what the next diff needs. The clock is
``CUSTSYNC_TEST_NOW`` (tests only), the state file's own times are real."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.sandbox.server import SandboxServer
from tests.e2e.privacy_helpers import (
    cli_env,
    custsync,
    export_text,
    leaked,
    query,
    v_runs,
    write_extract,
)

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("target", ["verifone", "sumup"])
def test_values_older_than_the_limit_are_redacted_and_the_next_diff_still_works(
    sandbox: SandboxServer, tmp_path: Path, target: str
) -> None:
    sandbox.admin.reset(config=True)
    state = tmp_path / "state.duckdb"
    env = cli_env(sandbox, state)
    first = {
        "external_id": "P-0001",
        "first_name": "Ŕenée",
        "last_name": "Ğüntherß",
        "email": "renee.gunther@quiet.example",
        "billing_city": "Ölstadtvik",
    }
    other = {"external_id": "P-0002", "first_name": "Ines", "last_name": "Brandt"}
    moved = {**first, "billing_city": "Neuwörthing"}
    refused = {**moved, "email": "ŕenée@nowhere"}
    assert (
        custsync(
            env, "sync", str(write_extract(tmp_path / "1.csv", [first, other])), "-t", target
        ).returncode
        == 0
    )
    assert (
        custsync(
            env, "sync", str(write_extract(tmp_path / "2.csv", [moved, other])), "-t", target
        ).returncode
        == 0
    )
    time.sleep(0.2)
    middle = datetime.now(UTC)  # rows before this are "old" once the clock says so
    time.sleep(0.2)
    day3 = write_extract(tmp_path / "3.csv", [refused, other])
    assert custsync(env, "sync", str(day3), "-t", target).returncode == 1
    snapshot = query(state, "SELECT external_id, payload FROM snapshot ORDER BY 1")
    runs = v_runs(state)
    old_city = {"Ölstadtvik"}

    # Off by default; on, but nothing old enough yet: nothing is redacted.
    assert custsync(env, "sync", str(day3), "-t", target).returncode == 1
    soon = {
        "CUSTSYNC_RETAIN_PERSONAL_DAYS": "30",
        "CUSTSYNC_TEST_NOW": (middle + timedelta(days=29)).isoformat(),
    }
    assert custsync({**env, **soon}, "sync", str(day3), "-t", target).returncode == 1
    assert leaked(export_text(state, tmp_path / "soon"), old_city, set()) == ["Ölstadtvik"]
    assert query(state, "SELECT coalesce(sum(rows), 0) FROM redactions") == [(0,)]

    # 30 days after the middle: days 1 and 2 are older than the limit, day 3 is not.
    late = {
        "CUSTSYNC_RETAIN_PERSONAL_DAYS": "30",
        "CUSTSYNC_TEST_NOW": (middle + timedelta(days=30)).isoformat(),
    }
    done = custsync({**env, **late}, "sync", str(day3), "-t", target, "--json")
    assert done.returncode == 1, done.stderr
    assert leaked(export_text(state, tmp_path / "late"), old_city, set()) == []
    old_plan = query(state, "SELECT payload FROM plan WHERE planned_at < ?", [middle])
    assert old_plan and all(set(_leaves(json.loads(p))) == {"[redacted]"} for (p,) in old_plan)
    old_changes = query(state, "SELECT before, after FROM changes WHERE occurred_at < ?", [middle])
    assert old_changes and all(v in (None, "[redacted]") for row in old_changes for v in row)
    young = query(
        state, "SELECT value FROM rejects WHERE rejected_at > ? AND value IS NOT NULL", [middle]
    )
    assert young and all(v != "[redacted]" for (v,) in young), "day 3's rejects are young"
    # The snapshot is kept whole (the next diff compares with it, the next update merges on it),
    # the audit rows stay and keep their counts, and each redaction is on record.
    assert query(state, "SELECT external_id, payload FROM snapshot ORDER BY 1") == snapshot
    assert v_runs(state, [r[0] for r in runs]) == runs
    assert {t for (t,) in query(state, "SELECT table_name FROM redactions WHERE rows > 0")} >= {
        "plan",
        "changes",
    }
    calls = sandbox.admin.counters()["total"]
    unchanged = custsync(
        {**env, **late},
        "sync",
        str(write_extract(tmp_path / "4.csv", [moved, other])),
        "-t",
        target,
        "--json",
    )
    summary = json.loads(unchanged.stdout)
    assert unchanged.returncode == 0 and summary["unchanged"]["planned"] == 2
    assert sandbox.admin.counters()["total"] == calls


def test_a_bad_limit_is_one_line_and_exit_2(sandbox: SandboxServer, tmp_path: Path) -> None:
    env = cli_env(sandbox, tmp_path / "state.duckdb", CUSTSYNC_RETAIN_PERSONAL_DAYS="0")
    extract = write_extract(tmp_path / "x.csv", [{"external_id": "K", "company_name": "Acme"}])
    done = custsync(env, "sync", str(extract), "-t", "verifone")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "retain_personal_days" in done.stderr


def _leaves(value: object) -> list[object]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    return [value]
