"""The published audit read back: ``v_runs`` across tenants, from Parquet files alone.

A tenant's run publishes its audit rows as immutable Parquet files
(:mod:`pipelines.state.publish`); this module answers the questions the state file's ``v_runs``
view answers, for every tenant and target at once, with DuckDB over those files. No writer
ever holds a published file, so the query never waits for a run and never blocks one; it
sees each run as of its last committed batch. The file list is taken once, at the start: a
file renamed into place later is read by the next query.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipelines.state.publish import SEQ, partition

V_RUNS_COLUMNS = (
    "run_id", "flow", "target", "mode", "dry_run", "status", "exit_code", "started_at",
    "finished_at", "duration_s", "planned", "succeeded", "failed", "rejected", "drift", "calls",
    "retries", "http_429", "extract_paths",
)  # fmt: skip
"""The state file's ``v_runs`` columns (migration 002), which the view below gives too."""

_EMPTY = {
    "outcomes": "NULL::VARCHAR AS result, NULL::VARCHAR[] AS drift_fields",
    "calls": "NULL::INTEGER AS status, NULL::INTEGER AS attempt",
}

_LATEST = f"""
SELECT * FROM (
    SELECT * FROM {{runs}}
    QUALIFY row_number() OVER (PARTITION BY tenant, target, run_id ORDER BY {SEQ} DESC) = 1)
QUALIFY row_number() OVER (PARTITION BY tenant, target ORDER BY started_at DESC, run_id DESC)
        <= {{last}}
"""
"""Each run's current row (its highest ``audit_seq``), the ``last`` runs of each pair."""

_VIEW = """
WITH done AS (
    SELECT tenant, target, run_id,
           count(*) FILTER (WHERE result IN ('succeeded', 'adopted')) AS succeeded,
           count(*) FILTER (WHERE result IN ('failed', 'ambiguous')) AS failed,
           count(*) FILTER (WHERE len(drift_fields) > 0) AS drift
    FROM {outcomes} GROUP BY tenant, target, run_id),
sent AS (
    SELECT tenant, target, run_id, count(*) AS n,
           count(*) FILTER (WHERE status = 429) AS http_429,
           count(*) FILTER (WHERE attempt > 1) AS retries
    FROM {calls} GROUP BY tenant, target, run_id)
SELECT r.tenant, r.run_id, r.flow, r.target, r.mode, r.dry_run, r.status, r.exit_code,
       r.started_at, r.finished_at,
       round(date_diff('millisecond', r.started_at, r.finished_at) / 1000.0, 3) AS duration_s,
       r.planned,
       coalesce(done.succeeded, 0) AS succeeded,
       coalesce(done.failed, 0) AS failed,
       r.rejected,
       coalesce(done.drift, 0) AS drift,
       coalesce(sent.n, 0) AS calls,
       coalesce(sent.retries, 0) AS retries,
       coalesce(sent.http_429, 0) AS http_429,
       r.extract_paths
FROM latest r
LEFT JOIN done USING (tenant, target, run_id)
LEFT JOIN sent USING (tenant, target, run_id)
ORDER BY r.tenant, r.target, r.started_at DESC, r.run_id DESC
"""


def run_of(path: str) -> str:
    """The run id a published file's name starts with (``<run_id>-<seq>.parquet``)."""
    return Path(path).name.rsplit("-", 1)[0]


def published_files(audit_dir: Path, pairs: Iterable[tuple[str, str]], table: str) -> list[str]:
    """The complete published files of ``table`` for each (tenant, target) pair, sorted (a
    file still being written has a ``.tmp`` suffix and is not listed)."""
    files: list[str] = []
    for tenant, target in pairs:
        folder = partition(audit_dir, tenant, target, table)
        files += sorted(str(p) for p in folder.glob("*.parquet"))
    return files


def _source(files: Sequence[str], table: str) -> str:
    if not files:
        return (
            "(SELECT NULL::VARCHAR AS tenant, NULL::VARCHAR AS target, NULL::VARCHAR AS run_id,"
            f" {_EMPTY[table]} WHERE false)"
        )
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    return (
        f"read_parquet([{listed}], hive_partitioning = true, union_by_name = true,"
        " hive_types = {'tenant': VARCHAR, 'target': VARCHAR})"
    )


def audit_runs(
    audit_dir: Path, pairs: Iterable[tuple[str, str]], last: int | None = 1
) -> pl.DataFrame:
    """The ``last`` runs (``None``: all) of each (tenant, target) pair that published any, as
    ``v_runs`` rows with a ``tenant`` column first, by tenant and target, newest first.

    Two steps: the runs first, then only the ``outcomes`` and ``calls`` files of the runs
    chosen (a file's name starts with its run id), so a query for last night reads last
    night's files, however many nights the folder holds."""
    pairs = list(pairs)
    runs = published_files(audit_dir, pairs, "runs")
    if not runs:
        return pl.DataFrame()
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        limit = 2**62 if last is None else int(last)
        con.execute(
            "CREATE TEMP TABLE latest AS " + _LATEST.format(runs=_source(runs, "runs"), last=limit)
        )
        chosen = {row[0] for row in con.execute("SELECT run_id FROM latest").fetchall()}
        tables = {
            table: _source(
                [f for f in published_files(audit_dir, pairs, table) if run_of(f) in chosen],
                table,
            )
            for table in ("outcomes", "calls")
        }
        relation = con.sql(_VIEW.format(**tables))
        assert relation is not None  # a query, not a statement
        return relation.pl()
    finally:
        con.close()


def published_summary(
    audit_dir: Path, tenant: str, target: str, flow_run_id: str
) -> dict[str, Any] | None:
    """The summary the run of Prefect flow run ``flow_run_id`` published at its end (its
    ``runs`` row's ``summary``), or ``None``: how the fleet reads a child's counts when the
    child ran on a machine whose state file it cannot see but whose audit it shares."""
    files = published_files(audit_dir, [(tenant, target)], "runs")
    if not files:
        return None
    con = duckdb.connect()
    try:
        row = con.execute(
            f"SELECT summary FROM {_source(files, 'runs')} "
            f"WHERE prefect_flow_run_id = ? AND summary IS NOT NULL ORDER BY {SEQ} DESC LIMIT 1",
            [flow_run_id],
        ).fetchone()
    except duckdb.Error:  # a file without the column (published before the run ended)
        return None
    finally:
        con.close()
    if row is None or row[0] is None:
        return None
    value = json.loads(row[0]) if isinstance(row[0], str) else row[0]
    return value if isinstance(value, dict) else None
