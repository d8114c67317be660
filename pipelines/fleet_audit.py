"""An audit across the tenants of a fleet: every tenant's state file, in one query.

Each tenant and target keeps its own DuckDB file (one writer each). A reader attaches them
all read-only to one in-memory DuckDB and queries their ``v_runs`` views as one table. A file
a run is writing right now cannot be attached (DuckDB admits no reader while a writer holds
the file): it is left out and named in ``skipped``, never waited for.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from pipelines.tenants import TenantsFile

COLUMNS = (
    "run_id", "status", "exit_code", "started_at", "duration_s", "planned", "succeeded",
    "failed", "rejected", "calls", "http_429",
)  # fmt: skip


@dataclass(frozen=True)
class FleetAudit:
    """The latest ``runs`` of every tenant and target, and the files that could not be read."""

    runs: pl.DataFrame
    skipped: tuple[str, ...]


def fleet_audit(tenants: TenantsFile, last: int = 1) -> FleetAudit:
    """The ``last`` runs of each tenant and target, newest first, as one frame."""
    con = duckdb.connect(":memory:")
    selects: list[str] = []
    skipped: list[str] = []
    try:
        for index, (tenant, target) in enumerate(tenants.runs()):
            path = tenants.state_file(tenant.id, target)
            alias = f"t{index}"
            try:
                con.execute(f"ATTACH '{_quoted(str(path))}' AS {alias} (READ_ONLY)")
            except duckdb.Error:  # absent, or held by a writer
                skipped.append(f"{tenant.id}/{target}")
                continue
            columns = ", ".join(COLUMNS)
            selects.append(
                f"(SELECT '{tenant.id}' AS tenant, '{target}' AS target, {columns} "
                f"FROM {alias}.main.v_runs ORDER BY started_at DESC LIMIT {int(last)})"
            )
        if not selects:
            return FleetAudit(pl.DataFrame(), tuple(skipped))
        query = " UNION ALL ".join(selects) + " ORDER BY tenant, target, started_at DESC"
        relation = con.sql(query)
        assert relation is not None  # a query, not a statement
        frame = relation.pl()
    finally:
        con.close()
    return FleetAudit(frame, tuple(skipped))


def _quoted(text: str) -> str:
    return text.replace("'", "''")
