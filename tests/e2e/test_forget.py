"""``custsync forget``, checked as an auditor would: the real CLI against the sandbox, then every
table of the state file exported as CSV and searched for every value the customer ever had."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.providers.sumup import customer_id as sumup_customer_id
from connectors.providers.sumup.client import PLACEHOLDER_BIRTH_DATE
from connectors.sandbox.server import SandboxServer
from tests.e2e.privacy_helpers import (
    cli_env,
    customers,
    custsync,
    export_text,
    leaked,
    personal_values,
    query,
    v_runs,
    word,
    write_extract,
)

pytestmark = pytest.mark.e2e

KILLED_CLI = Path(__file__).with_name("killed_cli.py")
KILLED = 137

TARGETS = ("verifone", "sumup")


def _remote_values(sandbox: SandboxServer, target: str) -> str:
    """Everything the sandbox holds for ``target``, as text."""
    return json.dumps(sandbox.admin.state()[target], ensure_ascii=False)


@pytest.mark.parametrize("target", TARGETS)
@settings(
    max_examples=2,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(people=customers(4), moved=st.tuples(word(4, 20), word(4, 20)))
def test_forget_leaves_no_value_anywhere_and_the_audit_rows_stay(
    sandbox: SandboxServer, target: str, people: list[dict[str, str]], moved: tuple[str, str]
) -> None:
    sandbox.admin.reset(config=True)
    # Each example gets a folder of its own, removed after: it holds generated personal data.
    with tempfile.TemporaryDirectory(prefix="forget-") as tmp:
        _forget_and_audit(sandbox, target, people, moved, Path(tmp))


def _forget_and_audit(
    sandbox: SandboxServer,
    target: str,
    people: list[dict[str, str]],
    moved: tuple[str, str],
    folder: Path,
) -> None:
    state = folder / "state.duckdb"
    env = cli_env(sandbox, state)
    victim, others = people[0], people[1:]
    if target == "verifone":  # Verifone has no birth date: the payload never holds it
        for person in people:
            person.pop("birth_date")
    # Day 1 creates everyone; day 2 moves the victim (an update: changes rows with before and
    # after, a stored merge base); day 3 lists them with an e-mail refused (a masked reject).
    day1 = write_extract(folder / "day1.csv", people)
    assert custsync(env, "sync", str(day1), "--target", target).returncode == 0
    if target == "sumup":
        sandbox.admin.seed_instruments(sumup_customer_id(victim["external_id"]), 2)
    after_move = {**victim, "billing_city": moved[0], "billing_address_1": f"{moved[1]} 7"}
    day2 = write_extract(folder / "day2.csv", [after_move, *others])
    done = custsync(env, "sync", str(day2), "--target", target)
    assert done.returncode == 0, done.stderr
    refused = {**after_move, "email": "ünïcode-" + victim["email"]}
    day3 = write_extract(folder / "day3.csv", [refused, *others])
    assert custsync(env, "sync", str(day3), "--target", target).returncode == 1

    history = [victim, after_move, refused]
    values = personal_values(history)
    kept = personal_values(others)
    before_forget = export_text(state, folder / "before")
    assert leaked(before_forget, values, kept), "the state file held the victim's values"
    assert query(state, "SELECT count(*) FROM changes WHERE external_id = ?", ["P-0001"])[0][0]
    runs_before = v_runs(state)

    forgot = custsync(env, "forget", "P-0001", "--target", target, "--json")
    assert forgot.returncode == 0, forgot.stderr
    summary = json.loads(forgot.stdout)
    assert summary["flow"] == "forget" and summary["erase"]["succeeded"] == 1

    # The auditor's grep: no value the customer ever had, in any column of any table or view.
    after = export_text(state, folder / "after")
    assert leaked(after, values, kept) == []
    for table, column in (("plan", "payload"), ("plan", "base_payload"), ("changes", "before")):
        held = query(
            state,
            f"SELECT {column} FROM {table} WHERE external_id = 'P-0001' AND {column} IS NOT NULL",
        )
        assert all("[redacted]" in str(v) for (v,) in held), (table, column, held)
    masked = query(state, "SELECT value FROM rejects WHERE external_id = 'P-0001'")
    assert masked and all(v in (None, "[redacted]") for (v,) in masked)
    # The audit rows stay: the earlier runs' counts are those of before, keys and actions too.
    assert v_runs(state, [r[0] for r in runs_before]) == runs_before
    actions = query(
        state,
        "SELECT action, result, remote_id IS NOT NULL FROM outcomes WHERE external_id = 'P-0001'"
        " ORDER BY occurred_at",
    )
    assert actions[0][:2] == ("create", "succeeded") and actions[-1] == ("erase", "succeeded", True)
    assert query(state, "SELECT count(*) FROM snapshot WHERE external_id = 'P-0001'") == [(0,)]

    # The provider no longer holds the customer's data.
    remote = _remote_values(sandbox, target)
    assert leaked(remote, values, kept) == []
    if target == "verifone":
        assert len(sandbox.admin.state()["verifone"]["customers"]) == len(others)
    else:
        held = sandbox.admin.state()["sumup"]
        record = next(
            c for c in held["customers"] if c["customer_id"] == sumup_customer_id("P-0001")
        )
        details = record["personal_details"]
        assert details.get("birth_date") == PLACEHOLDER_BIRTH_DATE
        assert {k: v for k, v in details.items() if k not in ("birth_date", "address")} == {
            k: "" for k in ("first_name", "last_name", "email", "phone", "tax_id")
        }
        instruments = held["instruments"][sumup_customer_id("P-0001")]
        assert instruments and not any(i["active"] for i in instruments)

    # A later extract that still lists the key: rejected `forgotten`, nothing sent for it.
    calls_before = sandbox.admin.counters()["total"]
    again = custsync(env, "sync", str(day1), "--target", target, "--json")
    assert again.returncode == 1, again.stderr
    rerun = json.loads(again.stdout)
    assert rerun["create"]["planned"] == 0 and rerun["update"]["planned"] == 0
    rules = query(
        state,
        "SELECT rule, value FROM rejects WHERE run_id = ? AND external_id = 'P-0001'",
        [rerun["run_id"]],
    )
    assert ("forgotten", None) in rules and all(v is None for _, v in rules)
    assert query(
        state,
        "SELECT count(*) FROM plan WHERE run_id = ? AND external_id = 'P-0001'",
        [rerun["run_id"]],
    ) == [(0,)]
    # Day 1 is the others' older state: their updates are the only calls.
    assert sandbox.admin.counters()["total"] - calls_before == rerun["calls"]
    assert leaked(export_text(state, folder / "later"), values, kept) == []
    assert leaked(_remote_values(sandbox, target), values, kept) == []


def test_an_unknown_key_is_one_clear_line_and_nothing_is_erased(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    sandbox.admin.reset(config=True)
    state = tmp_path / "state.duckdb"
    env = cli_env(sandbox, state)
    people = [{"external_id": "P-0001", "first_name": "Åsa", "last_name": "Öberg"}]
    assert (
        custsync(
            env, "sync", str(write_extract(tmp_path / "x.csv", people)), "-t", "verifone"
        ).returncode
        == 0
    )
    keys = tmp_path / "keys.txt"
    keys.write_text("P-0001\nP-9999\n\n", encoding="utf-8")
    done = custsync(env, "forget", "--file", str(keys), "--target", "verifone")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: 1 key(s) unknown at verifone (no run ever saw them): P-9999; nothing was forgotten"
    ]
    assert len(sandbox.admin.state()["verifone"]["customers"]) == 1
    assert query(state, "SELECT count(*) FROM suppressed") == [(0,)]
    bad_target = custsync(env, "forget", "P-0001", "--target", "nowhere")
    assert bad_target.returncode == 2 and "Traceback" not in bad_target.stderr


@pytest.mark.parametrize("target", TARGETS)
def test_a_forget_killed_after_the_provider_call_is_completed_by_the_next(
    sandbox: SandboxServer, tmp_path: Path, target: str
) -> None:
    sandbox.admin.reset(config=True)
    state = tmp_path / "state.duckdb"
    env = cli_env(sandbox, state)
    people = [
        {
            "external_id": "P-0001",
            "first_name": "Ŧomáš",
            "last_name": "Øvrebø",
            "email": "tomas.kvist@grue.example",
            "billing_city": "Łódźville",
        },
        {"external_id": "P-0002", "first_name": "Ines", "last_name": "Brandt"},
    ]
    extract = write_extract(tmp_path / "day1.csv", people)
    assert custsync(env, "sync", str(extract), "--target", target).returncode == 0
    values = personal_values(people[:1])

    killed = subprocess.run(
        [sys.executable, str(KILLED_CLI), "forget", "P-0001", "--target", target],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == KILLED, killed.stderr
    # The provider erased it; the state file does not know yet: the intent is pending, the
    # values are still there, and the key is suppressed already.
    assert leaked(_remote_values(sandbox, target), values, set()) == []
    assert query(
        state,
        "SELECT state FROM journal j JOIN plan p USING (run_id, plan_id) WHERE p.action = 'erase'",
    ) == [("pending",)]
    assert leaked(export_text(state, tmp_path / "killed"), values, set())
    assert query(state, "SELECT external_id, redacted_at FROM suppressed") == [("P-0001", None)]

    # A sync in between sends nothing for it: the key is suppressed before any call is made.
    between = custsync(env, "sync", str(extract), "--target", target, "--json")
    assert between.returncode == 1 and json.loads(between.stdout)["calls"] == 0

    # The next forget run (no key needed) completes the erase and the redaction.
    again = custsync(env, "forget", "--target", target, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["erase"]["succeeded"] == 1
    assert leaked(export_text(state, tmp_path / "done"), values, set()) == []
    assert query(state, "SELECT count(*) FROM journal WHERE state = 'pending'") == [(0,)]
    assert query(state, "SELECT redacted_at IS NOT NULL FROM suppressed") == [(True,)]
    nothing_left = custsync(env, "forget", "--target", target)
    assert nothing_left.returncode == 2
    assert "no key given, and no erasure left to complete" in nothing_left.stderr
