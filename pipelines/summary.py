"""The run summary: derived from the DuckDB audit tables, so it says what was recorded."""

from __future__ import annotations

from typing import Any

import duckdb
import polars as pl

from pipelines.state.queries import AuditQueries
from transforms.actions import SUMMARY_ACTIONS

_SUCCEEDED = ("succeeded", "adopted")
_FAILED = ("failed", "ambiguous")


def zero_counts() -> dict[str, Any]:
    """The counts of a run that recorded nothing: every action and figure zero."""
    counts: dict[str, Any] = {
        a: {"planned": 0, "succeeded": 0, "failed": 0} for a in SUMMARY_ACTIONS
    }
    counts.update(
        dict.fromkeys(
            ("calls", "retries", "http_429", "created", "adopted", "ambiguous", "drift"), 0
        )
    )
    counts["rejected"] = 0
    return counts


def build_summary(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    *,
    unchanged: int = 0,
    execute_s: float | None = None,
) -> dict[str, Any]:
    """Counts for one run: per action planned / succeeded / failed, calls, retries, 429s, drift.

    ``con`` is a connection to the state file (the run's store's); the figures are read by
    :meth:`~pipelines.state.queries.AuditQueries.run_counts`.
    """
    counts = AuditQueries(con).run_counts(run_id)
    summary = zero_counts()
    summary["unchanged"]["planned"] = unchanged
    for action, n in counts.planned.items():
        summary.setdefault(action, {"planned": 0, "succeeded": 0, "failed": 0})["planned"] = n
    adopted = ambiguous = drift = created = 0
    for row in counts.outcomes:
        action, result, n = row.action, row.result, row.count
        tally = summary.setdefault(action, {"planned": 0, "succeeded": 0, "failed": 0})
        if result in _SUCCEEDED:
            tally["succeeded"] += n
        elif result in _FAILED:
            tally["failed"] += n
        adopted += n if result == "adopted" else 0
        created += n if (action, result) == ("create", "succeeded") else 0
        ambiguous += n if result == "ambiguous" else 0
        drift += row.drifted
    summary.update(
        {
            "calls": counts.calls,
            "retries": counts.retries,
            "http_429": counts.http_429,
            "created": created,
            "adopted": adopted,
            "ambiguous": ambiguous,
            "drift": drift,
            "rejected": counts.rejected,
        }
    )
    if execute_s:
        summary["rate_per_s"] = round(counts.calls / execute_s, 1)
    return summary


def failed_records(summary: dict[str, Any]) -> int:
    """Records that failed or were rejected (exit code 1 when non-zero)."""
    return int(summary["rejected"]) + sum(
        int(summary[a]["failed"]) for a in SUMMARY_ACTIONS if isinstance(summary.get(a), dict)
    )


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")[:120]


def failures_markdown(sample: pl.DataFrame, total: int, run_id: str) -> list[str]:
    """The failed and rejected records of a run as markdown lines (none when there are none):
    the first of them (values masked as stored), and the command that lists them all."""
    if total == 0:
        return []
    lines = [
        "",
        f"#### Failed and rejected records ({sample.height} of {total})",
        "",
        "| key | kind | action or field | code or rule | message | value (masked) |",
        "|---|---|---|---|---|---|",
    ]
    for row in sample.iter_rows(named=True):
        cells = (row["external_id"], row["kind"], row["what"], row["code"], row["message"])
        lines.append("| " + " | ".join(_cell(c) for c in (*cells, row["value"])) + " |")
    lines += ["", f"All of them: `custsync report --run {run_id}`"]
    return lines


def to_markdown(summary: dict[str, Any]) -> str:
    """The summary as a markdown table (the Prefect artifact)."""
    lines = [
        f"### custsync {summary.get('flow', 'sync')} → {summary['target']} "
        f"({summary['mode']}{', dry run' if summary['dry_run'] else ''})",
        "",
        f"run `{summary['run_id']}` · exit code **{summary['exit_code']}** · "
        f"{summary['status']} · {summary['duration_s']} s",
        "",
        "| action | planned | succeeded | failed |",
        "|---|---:|---:|---:|",
    ]
    for action in SUMMARY_ACTIONS:
        c = summary[action]
        lines.append(f"| {action} | {c['planned']} | {c['succeeded']} | {c['failed']} |")
    lines += [
        "",
        "| rejected | adopted | ambiguous | drift | calls | retries | 429s | calls/s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {summary['rejected']} | {summary['adopted']} | {summary['ambiguous']} | "
        f"{summary['drift']} | {summary['calls']} | {summary['retries']} | "
        f"{summary['http_429']} | {summary.get('rate_per_s', '')} |",
    ]
    if summary.get("message"):
        lines += ["", f"> {summary['message']}"]
    if isinstance(summary.get("landing"), dict):
        lines += landing_markdown(summary["landing"])
    return "\n".join(lines)


def _path(path: str) -> str:
    return f"`{path}`" if path else ""  # a path is shown whole: its end is what tells


_FATES = (
    ("read", "read"),
    ("superseded", "superseded (not read)"),
    ("already_synced", "already synced (not read)"),
    ("still_being_written", "still being written (left)"),
)


def landing_markdown(landing: dict[str, Any]) -> list[str]:
    """A landing-folder run's files: what became of each, and where it was moved."""
    moved: dict[str, str] = landing.get("moved", {})
    rows = []
    for group, kind in ((landing, "customers"), (landing.get("instruments") or {}, "instruments")):
        for key, fate in _FATES:
            for path in group.get(key, []):
                where = moved.get(path, "")
                rows.append(f"| {_path(path)} | {kind} | {fate} | {_path(where)} |")
    night = landing.get("night")
    lines = ["", f"#### Landing folder (night {night or 'none'})", ""]
    if not rows:
        return [*lines, "No file arrived."]
    return [*lines, "| file | kind | what | moved to |", "|---|---|---|---|", *rows]
