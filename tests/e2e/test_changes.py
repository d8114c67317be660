"""Every change, before and after, against the sandbox: a create, a portal edit, the update
that keeps one edit and overwrites another, a delete and a close (issue 11)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import polars as pl
import pytest

from connectors.sandbox.server import SandboxServer
from pipelines.state.store import StateStore
from tests.e2e.conftest import DAY1
from transforms.merge import flatten

pytestmark = pytest.mark.e2e

TOKEN = "sandbox-token"
WORK_PHONE = "+49 40 555 9999"


def _cli(
    sandbox: SandboxServer, state: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``custsync`` without a Prefect API (the stages run in-process: no server to wait for)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTSYNC_", "PREFECT_API"))}
    full.update(
        CUSTSYNC_STATE=str(state),
        CUSTSYNC_CONFIG=str(state.with_name("absent.toml")),
        CUSTSYNC_VERIFONE_BASE_URL=sandbox.base_url,
        CUSTSYNC_VERIFONE_TOKEN=TOKEN,
        CUSTSYNC_VERIFONE_ENTITY_ID="sandbox-entity",
    )
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _sync(sandbox: SandboxServer, state: Path, extract: Path, *args: str) -> str:
    done = _cli(sandbox, state, "sync", str(extract), "-t", "verifone", "--json", *args)
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout.strip().splitlines()[-1])["run_id"])


def _portal_edit(sandbox: SandboxServer, remote_id: str, **billing: str) -> None:
    """What someone does in the Verifone portal: a GET, an edit, a POST of the whole record."""
    with httpx.Client(base_url=sandbox.base_url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        record = c.get(f"/v2/customer/{remote_id}").raise_for_status().json()
        for key in ("id", "created_at", "updated_at"):
            record.pop(key, None)
        record["work_phone"] = WORK_PHONE
        record["billing"] = {**record["billing"], **billing}
        c.post(f"/v2/customer/{remote_id}", json=record).raise_for_status()


def _rows(state: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with StateStore(state, read_only=True) as store:
        return store.query(sql, params).rows()


def test_changes_record_before_after_and_why_through_a_customers_life(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    sandbox.admin.reset(config=True)
    state = tmp_path / "state.duckdb"
    sample = pl.read_csv(DAY1, infer_schema=False).head(3)  # CRM-00001 .. CRM-00003
    day1, day2 = tmp_path / "day1.csv", tmp_path / "day2.csv"
    sample.write_csv(day1)
    sample.filter(pl.col("external_id") != "CRM-00001").with_columns(  # CRM-00001: deleted
        billing_address_1=pl.when(pl.col("external_id") == "CRM-00002")
        .then(pl.lit("Lindenallee 5"))
        .otherwise("billing_address_1"),
        billing_city=pl.when(pl.col("external_id") == "CRM-00002")
        .then(pl.lit("Lübeck"))
        .otherwise("billing_city"),
        status=pl.when(pl.col("external_id") == "CRM-00003")
        .then(pl.lit("closed"))
        .otherwise("status"),
    ).write_csv(day2)

    created_run = _sync(sandbox, state, day1)
    sent = {
        key: (remote_id, orjson.loads(payload))
        for key, remote_id, payload in _rows(
            state, "SELECT external_id, remote_id, payload FROM snapshot"
        )
    }
    columns = "field, before, after, why"
    for key, (_, payload) in sent.items():
        rows = _rows(
            state,
            f"SELECT {columns} FROM changes WHERE external_id = ? AND run_id = ? ORDER BY field",
            key,
            created_run,
        )
        assert rows == [(f, None, v, "source") for f, v in sorted(flatten(payload).items())]
    assert ("billing.city", None, "Hamburg", "source") in _rows(
        state, f"SELECT {columns} FROM changes WHERE external_id = 'CRM-00002'"
    )

    remote_id, day1_payload = sent["CRM-00002"]
    _portal_edit(sandbox, remote_id, city="Bremen")  # the source changes the city too
    dry_run = _sync(sandbox, state, day2, "--mode", "mirror", "--allow-deletes", "--dry-run")
    dry_bases = "SELECT external_id, base_payload FROM plan WHERE run_id = ? ORDER BY 1"
    assert {k: orjson.loads(v) for k, v in _rows(state, dry_bases, dry_run)} == {
        key: sent[key][1] for key in ("CRM-00001", "CRM-00002", "CRM-00003")
    }
    assert _rows(state, "SELECT count(*) FROM changes WHERE run_id = ?", dry_run) == [(0,)]
    updated_run = _sync(sandbox, state, day2, "--mode", "mirror", "--allow-deletes")

    changes = f"SELECT {columns} FROM changes WHERE run_id = ? AND external_id = ? ORDER BY field"
    assert _rows(state, changes, updated_run, "CRM-00002") == [
        ("billing.address_1", "Lindenallee 3", "Lindenallee 5", "source"),
        ("billing.city", "Bremen", "Lübeck", "drift"),  # the portal edit, overwritten
        ("work_phone", WORK_PHONE, WORK_PHONE, "remote_kept"),  # the portal edit, kept
    ]
    remote = sandbox.admin.state()["verifone"]["customers"]
    (kept,) = [c for c in remote if c["id"] == remote_id]
    assert (kept["work_phone"], kept["billing"]["city"]) == (WORK_PHONE, "Lübeck")
    for key, action in (("CRM-00001", "delete"), ("CRM-00003", "close")):
        last = flatten(sent[key][1])
        assert _rows(state, changes, updated_run, key) == [
            (f, v, None, "source") for f, v in sorted(last.items())
        ], action
        actions = "SELECT DISTINCT action FROM changes WHERE external_id = ? ORDER BY 1"
        assert _rows(state, actions, key) == sorted([("create",), (action,)])

    # The plan rows keep what they ran against: the update's base, the delete's last payload.
    bases = dict(
        _rows(
            state,
            "SELECT external_id, base_payload FROM plan WHERE run_id = ? ORDER BY 1",
            updated_run,
        )
    )
    assert {k: orjson.loads(v) for k, v in bases.items()} == {
        key: sent[key][1] for key in ("CRM-00001", "CRM-00002", "CRM-00003")
    }
    assert orjson.loads(bases["CRM-00002"]) == day1_payload

    # Who and when, in one SELECT (the README's question).
    who = _rows(
        state,
        "SELECT DISTINCT run_id, flow, mode, os_user IS NOT NULL, host IS NOT NULL,"
        " custsync_version IS NOT NULL FROM v_changes WHERE external_id = 'CRM-00002'"
        " AND target = 'verifone' ORDER BY run_id",
    )
    assert who == [
        (created_run, "sync", "upsert", True, True, True),
        (updated_run, "sync", "mirror", True, True, True),
    ]
    history = _rows(
        state,
        "SELECT run_id, action, result, field, before, after, why FROM v_customer_history"
        " WHERE external_id = 'CRM-00002' AND kind = 'change' AND run_id = ? ORDER BY field",
        updated_run,
    )
    assert [r[3:] for r in history] == _rows(state, changes, updated_run, "CRM-00002")
    assert {r[:3] for r in history} == {(updated_run, "update", "changed")}

    # The same rows as a CSV table that polars reads back.
    report = _cli(
        sandbox, state, "report", "--run", updated_run, "--what", "changes", "--format", "csv"
    )
    assert report.returncode == 0, report.stderr
    table = pl.read_csv(io.StringIO(report.stdout), infer_schema=False)
    assert set(table["run_id"]) == {updated_run}
    assert sorted(table.select("external_id", *columns.split(", ")).rows()) == sorted(
        _rows(
            state,
            f"SELECT external_id, {columns} FROM changes WHERE run_id = ?",
            updated_run,
        )
    )
    assert {"os_user", "host", "custsync_version", "started_at"} <= set(table.columns)
    every = _cli(sandbox, state, "report", "--what", "changes", "--format", "csv")
    assert every.returncode == 0, every.stderr
    assert set(pl.read_csv(io.StringIO(every.stdout), infer_schema=False)["run_id"]) == {
        created_run,
        updated_run,
    }


def test_sumup_changes_name_personal_details_paths_and_a_close_keeps_the_last_payload(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    """SumUp: PUT updates of ``personal_details``, no delete (a key gone is closed)."""
    sandbox.admin.reset(config=True)
    state = tmp_path / "state.duckdb"
    env = {"CUSTSYNC_SUMUP_BASE_URL": sandbox.base_url, "CUSTSYNC_SUMUP_API_KEY": "sup_sk_sandbox"}
    sample = pl.read_csv(DAY1, infer_schema=False).head(2)  # CRM-00001, CRM-00002
    day1, day2 = tmp_path / "day1.csv", tmp_path / "day2.csv"
    sample.write_csv(day1)
    sample.filter(pl.col("external_id") == "CRM-00002").with_columns(
        billing_city=pl.lit("Lübeck")
    ).write_csv(day2)

    def sync(extract: Path, *args: str) -> str:
        done = _cli(sandbox, state, "sync", str(extract), "-t", "sumup", "--json", *args, env=env)
        assert done.returncode == 0, done.stderr
        return str(json.loads(done.stdout.strip().splitlines()[-1])["run_id"])

    sync(day1)
    sent = {
        key: (remote_id, orjson.loads(payload))
        for key, remote_id, payload in _rows(
            state, "SELECT external_id, remote_id, payload FROM snapshot"
        )
    }
    remote_id = sent["CRM-00002"][0]
    with httpx.Client(
        base_url=sandbox.base_url, headers={"Authorization": "Bearer sup_sk_sandbox"}
    ) as c:  # someone edits the phone number in the SumUp dashboard
        c.put(
            f"/v0.1/customers/{remote_id}", json={"personal_details": {"phone": "+49 40 1234"}}
        ).raise_for_status()
    run_id = sync(day2, "--mode", "mirror", "--allow-deletes")
    rows = "SELECT field, before, after, why FROM changes WHERE run_id = ? AND external_id = ?"
    assert _rows(state, f"{rows} ORDER BY field", run_id, "CRM-00002") == [
        ("personal_details.address.city", "Hamburg", "Lübeck", "source"),
        ("personal_details.phone", "+49 40 1234", "+49 40 1234", "remote_kept"),
    ]
    gone = flatten(sent["CRM-00001"][1])
    assert _rows(state, f"{rows} ORDER BY field", run_id, "CRM-00001") == [
        (f, v, None, "source") for f, v in sorted(gone.items())
    ]
    assert _rows(
        state, "SELECT DISTINCT action FROM changes WHERE run_id = ? ORDER BY 1", run_id
    ) == [("delete",), ("update",)]


def test_a_report_of_changes_on_a_file_from_before_007_is_empty_and_leaves_it_alone(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    from tests.pipelines.test_changes_store import _file_at_006

    state = tmp_path / "old.duckdb"
    _file_at_006(state)
    for args in (("--run", "r0"), ()):
        report = _cli(sandbox, state, "report", "--what", "changes", "--format", "csv", *args)
        assert report.returncode == 0, report.stderr
        assert report.stdout.splitlines()[0].startswith("run_id,target,plan_id,external_id")
        assert len(report.stdout.splitlines()) == 1  # the header: no changes recorded then
    with StateStore(state, read_only=True) as store:
        assert store.schema_version == 6  # a report never migrates
