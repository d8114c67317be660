"""Audit queries over the state file: recent runs, one run's detail, failures, drift.

Everything here reads the documented views (README, "The DuckDB file"), so that what a person sees
in ``custsync report`` is what they get in SQL.
"""

from __future__ import annotations

from typing import Any

import duckdb
import polars as pl


def query(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
) -> pl.DataFrame:
    """Run ``sql`` (``?`` placeholders) and return the result as a polars frame."""
    relation = con.sql(sql, params=params)
    if relation is None:
        raise TypeError(f"not a query: {sql[:40]!r}")
    return relation.pl()


def recent_runs(con: duckdb.DuckDBPyConnection, limit: int = 20) -> pl.DataFrame:
    """The last ``limit`` runs, newest first (``v_runs``)."""
    return query(con, "SELECT * FROM v_runs ORDER BY started_at DESC LIMIT ?", [limit])


def run_failures(con: duckdb.DuckDBPyConnection, run_id: str) -> pl.DataFrame:
    """Failed, ambiguous and rejected records of one run (``v_failures``)."""
    return query(
        con, "SELECT * FROM v_failures WHERE run_id = ? ORDER BY external_id, kind", [run_id]
    )


def run_plan(con: duckdb.DuckDBPyConnection, run_id: str) -> pl.DataFrame:
    """The actions a run planned (what a dry run shows), by external id."""
    return query(
        con,
        "SELECT external_id, action, reason, remote_id, plan_id FROM plan WHERE run_id = ? "
        "ORDER BY external_id, action",
        [run_id],
    )


def run_summary(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any] | None:
    """The summary recorded when the run finished, or ``None`` for an unknown run."""
    row = query(con, "SELECT * FROM v_runs WHERE run_id = ?", [run_id])
    return None if row.height == 0 else row.to_dicts()[0]


def drift(con: duckdb.DuckDBPyConnection, limit: int = 50) -> pl.DataFrame:
    """The most recent remote edits made outside custsync (``v_drift``)."""
    return query(con, "SELECT * FROM v_drift ORDER BY occurred_at DESC LIMIT ?", [limit])


def latency(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Call latency percentiles per operation (``v_call_latency``)."""
    return query(con, "SELECT * FROM v_call_latency ORDER BY target, operation")


def frame_to_markdown(frame: pl.DataFrame, max_rows: int = 50) -> str:
    """A polars frame as a markdown table (for Prefect artifacts)."""
    if frame.height == 0:
        return "_none_"
    cols = frame.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.head(max_rows).iter_rows():
        lines.append("| " + " | ".join("" if v is None else str(v) for v in row) + " |")
    if frame.height > max_rows:
        lines.append(f"\n_{frame.height - max_rows} more rows_")
    return "\n".join(lines)
