"""The recover stage: a crashed run's pending intents are settled and recorded first."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pipelines.exit_codes import ExitCode
from pipelines.planning import plan
from pipelines.recovery import recover
from pipelines.run import Run, RunSpec

EXTRACT = "external_id,company_name,email\nA,Acme GmbH,a@acme.example\nB,Beta AG,b@beta.example\n"


def _crash_mid_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str) -> RunSpec:
    """A first run that opened its batch's intents and never recorded it (a crash)."""
    for key, value in {
        "CUSTSYNC_STATE": str(tmp_path / "state.duckdb"),
        "CUSTSYNC_CONFIG": str(tmp_path / "absent.toml"),
        "CUSTSYNC_SUMUP_API_KEY": "k",
        "CUSTSYNC_VERIFONE_TOKEN": "t",
        "CUSTSYNC_SUMUP_BASE_URL": "http://127.0.0.1:9",  # nothing listens there
        "CUSTSYNC_VERIFONE_BASE_URL": "http://127.0.0.1:9",
        "CUSTSYNC_MAX_ATTEMPTS": "1",
    }.items():
        monkeypatch.setenv(key, value)
    extract = tmp_path / "customers.csv"
    extract.write_text(EXTRACT)
    spec = RunSpec(flow="sync", extract=(str(extract),), target=target)
    crashed = Run.open(spec)
    assert plan(crashed) == 2
    crashed.store.open_journal(crashed.run_id, target, [r.plan_id for r in crashed.plan.batch(0)])
    crashed.finish(duration_s=0.0)
    return spec


def _recover(spec: RunSpec) -> tuple[int, Run, dict[str, object]]:
    async def main() -> tuple[int, Run]:
        run = Run.open(spec)
        try:
            return await recover(run), run
        finally:
            await run.aclose()

    settled, run = asyncio.run(main())
    pending = run.store.pending_journal(spec.target).height
    outcomes = run.store.con.execute(
        "SELECT external_id, result, message FROM outcomes WHERE run_id = ? ORDER BY 1",
        [run.run_id],
    ).fetchall()
    summary = run.finish(duration_s=0.0)
    return settled, run, {"pending": pending, "outcomes": outcomes, "summary": summary}


def test_idempotent_actions_are_closed_and_planned_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settled, run, seen = _recover(_crash_mid_batch(tmp_path, monkeypatch, "sumup"))
    assert settled == 2 and not run.stopped
    assert seen["pending"] == 0
    assert seen["outcomes"] == [
        ("A", "skipped", "re-planned after a crash"),
        ("B", "skipped", "re-planned after a crash"),
    ]


def test_creates_that_cannot_be_checked_stay_pending_and_stop_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settled, run, seen = _recover(_crash_mid_batch(tmp_path, monkeypatch, "verifone"))
    assert settled == 0 and run.stopped
    assert seen["pending"] == 2 and seen["outcomes"] == []
    summary = seen["summary"]
    assert isinstance(summary, dict) and summary["exit_code"] == ExitCode.RECORDS_FAILED
    assert "2 create(s) left in flight by an earlier run" in str(summary["message"])
    assert summary["calls"] == 2, "the look-ups that failed are logged"
