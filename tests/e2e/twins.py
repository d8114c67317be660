"""Helpers for the twin tests: a run without Prefect, and the reference outcome to check."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb

from connectors.sandbox.server import SandboxServer
from pipelines.execution import execute_batch
from pipelines.guards import check_guards
from pipelines.planning import plan
from pipelines.recovery import recover
from pipelines.run import Run, RunSpec
from tests.e2e.expect import expected_payloads, remote_customers, snapshot_ids


async def _stages(spec: RunSpec) -> dict[str, Any]:
    """The sync flow's stages in order (pipelines/flows/sync.py), minus Prefect's tasks."""
    run = Run.open(spec)
    try:
        with run.stop_on_error():
            run.connector()
        if not run.stopped:
            await recover(run)
        planned = 0 if run.stopped else plan(run)
        guard = None if run.stopped else check_guards(run.plan.counts, spec, run.settings)
        if guard is not None:
            run.stop(guard.exit_code, guard.message)
        if planned and not run.stopped:
            for batch_no in range(run.plan.batch_count):
                await execute_batch(run, batch_no)
                if run.stopped:
                    break
    finally:
        await run.aclose()
    return run.finish(duration_s=0.0)


def plain_sync(extract: Path, **params: Any) -> dict[str, Any]:
    """One sync run, stage by stage, in-process; returns its summary. About 0.2 s a run
    against 10 s under Prefect's test harness: the generative test runs hundreds."""
    spec = RunSpec(flow="sync", extract=(str(extract),), target="verifone", **params)
    return asyncio.run(_stages(spec))


def calls_of(state: str, run_id: str) -> list[str]:
    """``METHOD status`` of every call a run made, in order."""
    with duckdb.connect(state, read_only=True) as con:
        rows = con.execute(
            "SELECT method, status FROM calls WHERE run_id = ? ORDER BY started_at", [run_id]
        ).fetchall()
    return [f"{method} {status}" for method, status in rows]


def assert_one_customer_per_key(sandbox: SandboxServer, state: str, extract: Path) -> None:
    """The reference outcome: every valid key owns exactly one remote customer of its own,
    equal to its payload; no remote id is shared; the sandbox holds nothing else."""
    expected = expected_payloads(extract, "verifone")
    ids = snapshot_ids(state, "verifone")
    remote = remote_customers(sandbox, "verifone")
    assert set(ids) == set(expected), f"keys without a customer: {set(expected) - set(ids)}"
    shared = {rid: n for rid, n in Counter(rid for rid, _ in ids.values()).items() if n > 1}
    assert not shared, f"remote ids shared by several keys: {shared}"
    for key, payload in expected.items():
        assert remote.get(ids[key][0]) == payload, f"{key}: remote differs from its source"
    assert len(remote) == len(expected), f"{len(remote)} remote customers for {len(expected)} keys"
