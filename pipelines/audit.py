"""The audit report: recent runs, the latest run's failures, drift and call latency, as markdown.

Everything it shows is read through the store's audit queries
(:class:`~pipelines.state.queries.AuditQueries`), which read the documented views (README, "The
DuckDB file"): what a person sees in the report is what they get in SQL.
"""

from __future__ import annotations

import polars as pl

from pipelines.state.queries import AuditQueries


def audit_markdown(store: AuditQueries, last_runs: int = 20) -> str:
    """The report of the last ``last_runs`` runs (the audit-report flow's artifact)."""
    runs = store.recent_runs(last_runs)
    parts = ["# custsync audit report", "", "## Recent runs", frame_to_markdown(runs)]
    if runs.height:
        latest = str(runs["run_id"][0])
        parts += [
            "",
            f"## Failures of the latest run ({latest})",
            frame_to_markdown(store.run_failures(latest)),
        ]
    parts += ["", "## Drift", frame_to_markdown(store.drift())]
    parts += ["", "## Call latency", frame_to_markdown(store.latency())]
    return "\n".join(parts)


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
