"""End-to-end: real flows under Prefect against the sandbox on loopback, a real DuckDB file."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest

from connectors.sandbox.server import SandboxServer
from tests.e2e.conftest import DAY1, DAY2, route_counts, state_file, sync, total_calls
from tests.e2e.expect import assert_in_step, expected_payloads

pytestmark = pytest.mark.e2e
TARGETS = ["verifone", "sumup"]


@pytest.mark.parametrize("target", TARGETS)
def test_first_sync_creates_everything_and_a_rerun_sends_nothing(
    target: str, env: dict[str, str], sandbox: SandboxServer
) -> None:
    summary = sync(extract=[str(DAY1)], target=target)
    expected = expected_payloads(DAY1, target)
    assert summary["exit_code"] == 0, summary
    assert summary["create"] == {
        "planned": len(expected),
        "succeeded": len(expected),
        "failed": 0,
    }
    assert_in_step(sandbox, state_file(), target, DAY1)

    before = total_calls(sandbox)
    again = sync(extract=[str(DAY1)], target=target)
    assert again["exit_code"] == 0
    assert total_calls(sandbox) == before, "a rerun on an unchanged extract must send no call"
    assert again["calls"] == 0 and again["unchanged"]["planned"] == len(expected)


def _plan_diff(day1: Path, day2: Path, target: str) -> tuple[set[str], set[str], set[str]]:
    one, two = expected_payloads(day1, target), expected_payloads(day2, target)
    new = set(two) - set(one)
    changed = {k for k in set(one) & set(two) if one[k] != two[k]}
    gone = set(one) - set(two)
    return new, changed, gone


def test_changed_extract_sends_exactly_the_calls_needed_verifone(
    env: dict[str, str], sandbox: SandboxServer
) -> None:
    sync(extract=[str(DAY1)], target="verifone")
    new, changed, _gone = _plan_diff(DAY1, DAY2, "verifone")
    closed = pl.read_csv(DAY2, infer_schema=False).filter(pl.col("status") == "closed").height
    before = route_counts(sandbox)
    summary = sync(extract=[str(DAY2)], target="verifone", mode="mirror", allow_deletes=True)
    after = route_counts(sandbox)
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    delta = {k: v for k, v in delta.items() if v}
    assert summary["exit_code"] == 1, "the invalid rows of day 2 are rejected"
    assert summary["rejected"] >= 1
    assert delta.get("POST /v2/customer", 0) == len(new)
    # one bulk fetch for the updates of the batch, then one POST per changed customer
    assert delta.get("GET /v2/customer", 0) == 1
    assert delta.get("POST /v2/customer/{customerId}", 0) == len(changed)
    # deletions (mirror) and closures both DELETE
    deletes = delta.get("DELETE /v2/customer/{customerId}", 0)
    assert deletes == summary["delete"]["planned"] + summary["close"]["planned"]
    assert summary["close"]["planned"] == closed
    assert sum(delta.values()) == summary["calls"]
    assert_in_step(sandbox, state_file(), "verifone", DAY2)


def test_sumup_closure_deactivates_instruments(env: dict[str, str], sandbox: SandboxServer) -> None:
    from connectors.providers.sumup import customer_id as sumup_customer_id

    sync(extract=[str(DAY1)], target="sumup")
    closing = (
        pl.read_csv(DAY2, infer_schema=False).filter(pl.col("status") == "closed")["external_id"]
    ).to_list()
    for ext in closing:
        sandbox.admin.seed_instruments(sumup_customer_id(ext), 2)
    summary = sync(extract=[str(DAY2)], target="sumup", mode="mirror", allow_deletes=True)
    assert summary["close"]["succeeded"] == len(closing)
    instruments = sandbox.admin.state()["sumup"]["instruments"]
    for ext in closing:
        assert all(not i["active"] for i in instruments[sumup_customer_id(ext)])
    assert_in_step(sandbox, state_file(), "sumup", DAY2)


def test_empty_extract_is_stopped_by_the_guard_with_no_call(
    env: dict[str, str], sandbox: SandboxServer, tmp_path: Path
) -> None:
    sync(extract=[str(DAY1)], target="verifone")
    empty = tmp_path / "empty.csv"
    empty.write_text(DAY1.read_text().splitlines()[0] + "\n")
    before = total_calls(sandbox)
    summary = sync(extract=[str(empty)], target="verifone", mode="mirror")
    assert summary["exit_code"] == 3
    assert total_calls(sandbox) == before


def test_mass_delete_is_stopped_unless_allowed(
    env: dict[str, str], sandbox: SandboxServer, tmp_path: Path
) -> None:
    sync(extract=[str(DAY1)], target="verifone")
    half = tmp_path / "half.csv"
    lines = DAY1.read_text().splitlines()
    half.write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    before = total_calls(sandbox)
    stopped = sync(extract=[str(half)], target="verifone", mode="mirror")
    assert stopped["exit_code"] == 3 and "delete" in stopped["message"]
    assert total_calls(sandbox) == before
    allowed = sync(extract=[str(half)], target="verifone", mode="mirror", allow_deletes=True)
    assert allowed["exit_code"] == 0
    assert allowed["delete"]["succeeded"] == stopped["delete"]["planned"] > 0
    assert_in_step(sandbox, state_file(), "verifone", half)


@pytest.mark.parametrize("target", TARGETS)
def test_dry_run_plan_equals_the_real_plan(
    target: str, env: dict[str, str], sandbox: SandboxServer
) -> None:
    sync(extract=[str(DAY1)], target=target)
    before = total_calls(sandbox)
    dry = sync(extract=[str(DAY2)], target=target, mode="mirror", dry_run=True, allow_deletes=True)
    assert total_calls(sandbox) == before, "a dry run sends nothing"
    real = sync(extract=[str(DAY2)], target=target, mode="mirror", allow_deletes=True)
    with duckdb.connect(state_file(), read_only=True) as con:

        def plan(run_id: str) -> set[tuple[str, str, str]]:
            return set(
                con.execute(
                    "SELECT plan_id, external_id, action FROM plan WHERE run_id = ?", [run_id]
                ).fetchall()
            )

        assert plan(dry["run_id"]) == plan(real["run_id"]) != set()


def test_wrong_credentials_stop_the_run_with_exit_4(
    env: dict[str, str], sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUSTSYNC_VERIFONE_TOKEN", "not-the-token")
    summary = sync(extract=[str(DAY1)], target="verifone")
    assert summary["exit_code"] == 4
    assert "not-the-token" not in str(summary)
    assert sandbox.admin.state()["verifone"]["customers"] == []
    with duckdb.connect(state_file(), read_only=True) as con:
        (n401,) = con.execute("SELECT count(*) FROM calls WHERE status = 401").fetchone()  # type: ignore[misc]
        (status,) = con.execute(  # type: ignore[misc]
            "SELECT status FROM runs WHERE run_id = ?", [summary["run_id"]]
        ).fetchone()
    assert n401 >= 1 and status == "stopped"


@pytest.mark.parametrize("target", TARGETS)
def test_faults_and_rate_limits_converge_without_duplicates(
    target: str, env: dict[str, str], sandbox: SandboxServer
) -> None:
    sandbox.admin.configure(
        rate_limit=300,
        burst=5,
        fault_rate=0.15,
        fault_kinds=["500", "502", "503", "reset", "commit_500", "commit_reset"],
        seed=7,
    )
    try:
        codes = []
        for extract in (DAY1, DAY2):
            for _ in range(3):  # failed records are retried by the next run
                summary = sync(
                    extract=[str(extract)], target=target, mode="mirror", allow_deletes=True
                )
                codes.append(summary["exit_code"])
                if summary["calls"] == 0 or summary["exit_code"] == 0:
                    break
        counters = sandbox.admin.counters()
        assert counters.get("faults"), "faults were injected"
    finally:
        sandbox.admin.configure(rate_limit=None, fault_rate=0.0)
    assert_in_step(sandbox, state_file(), target, DAY2)


def test_unreachable_provider_stops_fast_and_a_later_run_repairs(
    env: dict[str, str], sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("CUSTSYNC_VERIFONE_BASE_URL", dead)
    for _ in range(2):  # the second run meets the first one's pending intents
        summary = sync(extract=[str(DAY1)], target="verifone")
        assert summary["exit_code"] == 2, summary
        assert dead in summary["message"] and "BASE_URL" in summary["message"]
        assert summary["calls"] < 60, "stopped early, not after every record's retries"
    monkeypatch.setenv("CUSTSYNC_VERIFONE_BASE_URL", sandbox.base_url)
    summary = sync(extract=[str(DAY1)], target="verifone")
    assert summary["exit_code"] == 0, (summary["message"], summary["create"], summary["adopted"])
    assert_in_step(sandbox, state_file(), "verifone", DAY1)


def test_explicit_instrument_deactivations_happen_once(
    env: dict[str, str], sandbox: SandboxServer, tmp_path: Path
) -> None:
    from connectors.providers.sumup import customer_id as sumup_customer_id

    sync(extract=[str(DAY1)], target="sumup")
    ext = pl.read_csv(DAY1, infer_schema=False)["external_id"][0]
    tokens = [i["token"] for i in sandbox.admin.seed_instruments(sumup_customer_id(ext), 2)]
    listing = tmp_path / "instruments.csv"
    listing.write_text(f"external_id,token\n{ext},{tokens[0]}\n")
    summary = sync(extract=[str(DAY1)], target="sumup", instruments=[str(listing)])
    assert summary["deactivate"] == {"planned": 1, "succeeded": 1, "failed": 0}
    state = {
        i["token"]: i["active"]
        for i in sandbox.admin.state()["sumup"]["instruments"][sumup_customer_id(ext)]
    }
    assert state == {tokens[0]: False, tokens[1]: True}
    again = sync(extract=[str(DAY1)], target="sumup", instruments=[str(listing)])
    assert again["calls"] == 0 and again["deactivate"]["planned"] == 0
