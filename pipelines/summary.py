"""The run summary: derived from the DuckDB audit tables, so it says what was recorded."""

from __future__ import annotations

from typing import Any

import duckdb

from transforms.actions import SUMMARY_ACTIONS

_SUCCEEDED = ("succeeded", "adopted")
_FAILED = ("failed", "ambiguous")


def build_summary(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    *,
    unchanged: int = 0,
    execute_s: float | None = None,
) -> dict[str, Any]:
    """Counts for one run: per action planned / succeeded / failed, calls, retries, 429s, drift."""
    summary: dict[str, Any] = {
        a: {"planned": 0, "succeeded": 0, "failed": 0} for a in SUMMARY_ACTIONS
    }
    summary["unchanged"]["planned"] = unchanged
    for action, n in con.execute(
        "SELECT action, count(*) FROM plan WHERE run_id = ? GROUP BY action", [run_id]
    ).fetchall():
        summary.setdefault(action, {"planned": 0, "succeeded": 0, "failed": 0})["planned"] = n
    adopted = ambiguous = drift = created = 0
    for action, result, n, drifted in con.execute(
        """SELECT action, result, count(*), count(*) FILTER (WHERE len(drift_fields) > 0)
           FROM outcomes WHERE run_id = ? GROUP BY action, result""",
        [run_id],
    ).fetchall():
        counts = summary.setdefault(action, {"planned": 0, "succeeded": 0, "failed": 0})
        if result in _SUCCEEDED:
            counts["succeeded"] += n
        elif result in _FAILED:
            counts["failed"] += n
        adopted += n if result == "adopted" else 0
        created += n if (action, result) == ("create", "succeeded") else 0
        ambiguous += n if result == "ambiguous" else 0
        drift += drifted
    row = con.execute(
        """SELECT count(*), count(*) FILTER (WHERE attempt > 1),
                  count(*) FILTER (WHERE status = 429)
           FROM calls WHERE run_id = ?""",
        [run_id],
    ).fetchone()
    calls, retries, http_429 = row if row else (0, 0, 0)
    rejected_row = con.execute(
        "SELECT count(DISTINCT coalesce(external_id, '')) FROM rejects WHERE run_id = ?", [run_id]
    ).fetchone()
    summary.update(
        {
            "calls": calls,
            "retries": retries,
            "http_429": http_429,
            "created": created,
            "adopted": adopted,
            "ambiguous": ambiguous,
            "drift": drift,
            "rejected": rejected_row[0] if rejected_row else 0,
        }
    )
    if execute_s:
        summary["rate_per_s"] = round(calls / execute_s, 1)
    return summary


def failed_records(summary: dict[str, Any]) -> int:
    """Records that failed or were rejected (exit code 1 when non-zero)."""
    return int(summary["rejected"]) + sum(
        int(summary[a]["failed"]) for a in SUMMARY_ACTIONS if isinstance(summary.get(a), dict)
    )


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
    return "\n".join(lines)
