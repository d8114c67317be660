"""An audit across the tenants of a fleet: every tenant's state file, in one frame.

Each tenant and target keeps its own DuckDB file (one writer each). The reader opens each
read-only in turn, reads the latest rows of its ``v_runs`` view, and stacks them. DuckDB admits
no reader while a writer holds a file, but a sync releases its file while each batch is being
sent (:mod:`pipelines.state.access`), so a file being written is waited for, up to ``wait_s``
seconds, the way ``custsync report`` waits; one still held after that (or absent) is left out
and named in ``skipped``, and the others are answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from pipelines.state.access import LockedError, connect
from pipelines.tenants import TenantsFile

COLUMNS = (
    "run_id", "status", "exit_code", "started_at", "duration_s", "planned", "succeeded",
    "failed", "rejected", "calls", "http_429",
)  # fmt: skip
WAIT_S = 10.0
"""Seconds the audit waits for one tenant's file a run is writing, by default."""


@dataclass(frozen=True)
class FleetAudit:
    """The latest ``runs`` of every tenant and target, and the files that could not be read."""

    runs: pl.DataFrame
    skipped: tuple[str, ...]


def fleet_audit(tenants: TenantsFile, last: int = 1, wait_s: float = WAIT_S) -> FleetAudit:
    """The ``last`` runs of each tenant and target, by tenant and target, newest first."""
    frames: list[pl.DataFrame] = []
    skipped: list[str] = []
    for tenant, target in tenants.runs():
        frame = _latest_runs(tenants.state_file(tenant.id, target), last, wait_s)
        if frame is None:
            skipped.append(f"{tenant.id}/{target}")
            continue
        frames.append(
            frame.select(pl.lit(tenant.id).alias("tenant"), pl.lit(target).alias("target"), "*")
        )
    if not frames:
        return FleetAudit(pl.DataFrame(), tuple(skipped))
    runs = pl.concat(frames, how="diagonal_relaxed").sort(
        ["tenant", "target", "started_at"], descending=[False, False, True]
    )
    return FleetAudit(runs, tuple(skipped))


def _latest_runs(path: Path, last: int, wait_s: float) -> pl.DataFrame | None:
    """The ``last`` rows of ``path``'s ``v_runs``, or ``None`` when the file is absent, not
    readable, or still held by a writer after ``wait_s``."""
    if not path.is_file():
        return None
    try:
        con = connect(path, read_only=True, wait_s=wait_s)
    except (LockedError, duckdb.Error):
        return None
    try:
        columns = ", ".join(COLUMNS)
        relation = con.sql(
            f"SELECT {columns} FROM v_runs ORDER BY started_at DESC LIMIT {int(last)}"
        )
        assert relation is not None  # a query, not a statement
        return relation.pl()
    except duckdb.Error:  # not a custsync state file (no v_runs)
        return None
    finally:
        con.close()
