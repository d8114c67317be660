"""Issue 14: the plan stage stores the plan a part at a time, as it is built; a run stopped
while planning stores none of it, and a run planned in many parts stores the plan planned
whole."""

from __future__ import annotations

import asyncio
from pathlib import Path

import polars as pl
import pytest

from pipelines.exit_codes import ExitCode
from pipelines.planning import plan
from pipelines.run import Run, RunSpec
from pipelines.state.store import StateStore
from transforms import planner


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key, value in {
        "CUSTSYNC_STATE": str(tmp_path / "state.duckdb"),
        "CUSTSYNC_CONFIG": str(tmp_path / "absent.toml"),
        "CUSTSYNC_VERIFONE_TOKEN": "t",
        "CUSTSYNC_VERIFONE_ENTITY_ID": "e",
        "CUSTSYNC_VERIFONE_BASE_URL": "http://127.0.0.1:9",  # never called here
        "CUSTSYNC_SUMUP_API_KEY": "k",
        "CUSTSYNC_SUMUP_BASE_URL": "http://127.0.0.1:9",
    }.items():
        monkeypatch.setenv(key, value)
    extract = tmp_path / "customers.csv"
    lines = ["external_id,company_name,email"]
    lines += [f"K{i:02},Firm {i % 4},f{i % 4}@example.com" for i in range(23)]
    lines += ["K03,Again,x@example.com", ",No key,n@example.com", "K30,Bad,not-an-email"]
    extract.write_text("\n".join(lines) + "\n")
    return extract


def _planned(spec: RunSpec) -> tuple[pl.DataFrame, pl.DataFrame, int, Run]:
    run = Run.open(spec)
    try:
        count = plan(run)
        rows = run.store.plan(run.run_id).drop("planned_at")
        rejects = run.store.con.sql(
            "SELECT external_id, field, rule, source_row FROM rejects WHERE run_id = ? "
            "ORDER BY source_row, field, rule",
            params=[run.run_id],
        ).pl()
    finally:
        asyncio.run(run.aclose())
        run.finish(duration_s=0.0)
    return rows, rejects, count, run


@pytest.mark.parametrize("target", ["verifone", "sumup"])
def test_a_plan_stored_in_parts_is_the_plan_stored_whole(
    env: Path, target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = RunSpec(flow="sync", extract=(str(env),), target=target, dry_run=True)
    whole, whole_rejects, count, _run = _planned(spec)
    monkeypatch.setattr(planner, "CHUNK_ROWS", 2)
    parts, part_rejects, part_count, run = _planned(spec)
    assert count == part_count == whole.height == 22  # 23 keys, K03 repeated: 22 creates
    assert parts.equals(whole)
    assert part_rejects.equals(whole_rejects)
    assert set(part_rejects["rule"]) == {"unique", "required", "email"}
    assert run.plan.counts.extract_rows == 26 and run.plan.counts.valid_rows == 22
    if target == "verifone":  # Firm 0..3 over 22 keys: every create has a twin
        assert len(run.plan.twins) == 22


def test_a_run_stopped_while_planning_stores_no_plan(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(planner, "CHUNK_ROWS", 3)  # parts stored before the stop
    instruments = tmp_path / "instruments.csv"
    instruments.write_text("external_id,token\nK01,\n")  # a row without a token: bad input
    spec = RunSpec(
        flow="sync", extract=(str(env),), target="sumup", instruments=(str(instruments),)
    )
    run = Run.open(spec)
    try:
        assert plan(run) == 0
        assert run.stopped
        assert run.store.planned_count(run.run_id) == 0
        assert run.plan.counts.valid_rows == 22  # the counts stand
    finally:
        asyncio.run(run.aclose())
        summary = run.finish(duration_s=0.0)
    assert summary["exit_code"] == ExitCode.BAD_INPUT


def test_each_part_is_checkpointed_under_the_runs_memory_limit(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each stored part goes into the file's blocks at once (DuckDB never compresses the whole
    plan at one close), and the run's DuckDB has its state_memory_limit on every connection."""
    monkeypatch.setenv("CUSTSYNC_STATE_MEMORY_LIMIT", "80MiB")
    monkeypatch.setattr(planner, "CHUNK_ROWS", 5)
    wal_sizes: list[int] = []
    limits: list[str] = []
    real = StateStore.checkpoint

    def watched(store: StateStore) -> None:
        real(store)
        wal = Path(f"{store.path}.wal")
        wal_sizes.append(wal.stat().st_size if wal.exists() else 0)
        limits.append(str(store.con.execute("SELECT current_setting('memory_limit')").fetchone()))

    monkeypatch.setattr(StateStore, "checkpoint", watched)
    spec = RunSpec(flow="sync", extract=(str(env),), target="verifone", dry_run=True)
    rows, _rejects, _count, _run = _planned(spec)
    assert rows.height == 22
    assert len(wal_sizes) >= 22 // 5  # a part of plan rows (and one of rejects) at a time
    assert set(wal_sizes) == {0}
    assert set(limits) == {"('80.0 MiB',)"}
