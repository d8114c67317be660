"""A run hands the plan's twins to the executor, even one built earlier by crash recovery."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pipelines.planning import plan
from pipelines.run import Run, RunSpec


def test_the_executor_of_the_batches_knows_the_plans_twins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in {
        "CUSTSYNC_STATE": str(tmp_path / "state.duckdb"),
        "CUSTSYNC_CONFIG": str(tmp_path / "absent.toml"),
        "CUSTSYNC_VERIFONE_TOKEN": "t",
        "CUSTSYNC_VERIFONE_BASE_URL": "http://127.0.0.1:9",  # never called here
    }.items():
        monkeypatch.setenv(key, value)
    extract = tmp_path / "twins.csv"
    extract.write_text("external_id,company_name\nA-1,Twin GmbH\nA-2,Twin GmbH\nB,Solo AG\n")
    run = Run.open(RunSpec(flow="sync", extract=(str(extract),), target="verifone"))
    try:
        before = run.executor()  # as crash recovery does, before any plan
        assert len(before.options.twins) == 0
        assert plan(run) == 3
        twins = run.executor().options.twins
        assert twins.group("A-1") == twins.group("A-2") == "A-1"
        assert twins.group("B") is None
    finally:
        asyncio.run(run.aclose())
        run.finish(duration_s=0.0)
