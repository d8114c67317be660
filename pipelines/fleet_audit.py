"""An audit across the tenants of a fleet: every tenant's runs, in one frame.

Two sources answer the same questions (the columns of ``v_runs``):

- ``published=True``: the Parquet audit the tenants' runs publish batch by batch
  (:mod:`pipelines.state.publish`, read by :mod:`pipelines.audit_view`). Immutable files no
  writer holds: the audit never waits, never blocks a run, and sees a running run as of its
  last committed batch. A tenant and target that published nothing yet is named in
  ``skipped``. This is what ``custsync fleet TENANTS_FILE --audit`` prints.
- ``published=False`` (the default): the state files themselves, as follows.

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

from pipelines.audit_view import audit_runs
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


def fleet_audit(
    tenants: TenantsFile, last: int = 1, wait_s: float = WAIT_S, *, published: bool = False
) -> FleetAudit:
    """The ``last`` runs of each tenant and target, by tenant and target, newest first:
    read from the published Parquet audit (``published``; ``wait_s`` unused: nothing to wait
    for) or from the state files."""
    if published:
        return published_audit(tenants, last)
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


def published_audit(tenants: TenantsFile, last: int = 1) -> FleetAudit:
    """The ``last`` runs of each tenant and target from the Parquet audit under the tenants
    file's audit folder; the pairs that published nothing yet are in ``skipped``."""
    pairs = [(tenant.id, target) for tenant, target in tenants.runs()]
    runs = audit_runs(tenants.audit_folder(), pairs, last)
    if runs.height == 0:
        return FleetAudit(pl.DataFrame(), tuple(f"{t}/{g}" for t, g in pairs))
    seen = set(zip(runs["tenant"], runs["target"], strict=True))
    skipped = tuple(f"{t}/{g}" for t, g in pairs if (t, g) not in seen)
    return FleetAudit(runs.select("tenant", "target", *COLUMNS), skipped)
