"""Build the HTML report of a state file's last runs, and write it to one file.

Reads go through :class:`~pipelines.state.report_reads.ReportReads` (no SQL here); charts
through :mod:`~pipelines.htmlreport.charts`; the document through
:mod:`~pipelines.htmlreport.page`. plotly is imported here only, when a page is built, for
the plotly.js it ships; this package only by ``custsync report --html`` and the audit-report
flow, so the other commands never pay for it.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipelines.htmlreport.charts import all_charts
from pipelines.htmlreport.page import Column, PageContent, Table, render_page, text
from pipelines.state.report_reads import ReportReads

RECORDS_LIMIT = 5_000
"""Failed and rejected records listed at most (the newest runs'); the rest are counted."""
HISTORY_LIMIT = 20_000
"""Customer-history rows embedded at most (the newest): each costs about 200 bytes."""
CHANGES_LIMIT = 30_000
"""Changed fields (before and after) embedded at most (the newest): about 150 bytes each."""

_RUN_COLUMNS = (
    Column("started_at"), Column("run_id"), Column("flow"), Column("target"), Column("mode"),
    Column("status"), Column("exit_code", True), Column("planned", True),
    Column("succeeded", True), Column("failed", True), Column("rejected", True),
    Column("drift", True), Column("calls", True), Column("http_429", True),
    Column("p95_ms", True), Column("duration_s", True), Column("reason", wrap=True),
)  # fmt: skip
_RECORD_COLUMNS = (
    Column("occurred_at"), Column("run_id"), Column("target"), Column("external_id"),
    Column("kind"), Column("action"), Column("field"), Column("code"),
    Column("http_status", True), Column("message", wrap=True), Column("value"),
)  # fmt: skip
_HISTORY_COLUMNS = (
    "occurred_at", "run_id", "flow", "target", "action", "result", "changed_fields",
    "drift_fields", "code", "message",
)  # fmt: skip

_CHANGE_COLUMNS = (
    "occurred_at", "run_id", "target", "action", "field", "before", "after", "why", "by",
)  # fmt: skip
_CHANGES_NOTE = (
    "Every field custsync wrote. before: what the provider held (an update's look-up; a "
    "delete's or close's last payload synced), empty for a create; after: what was sent, "
    "empty for a delete. why: source (the extract changed it), remote_kept (edited at the "
    "provider outside custsync, kept), drift (edited at the provider, and overwritten by the "
    "extract's change). by: the run's operating-system user, host and Prefect deployment."
)
_NO_CHANGES_NOTE = (
    "This state file is older than migration 007: it recorded no values before and after. "
    "The history's changed_fields and drift_fields name the fields; open the file once with "
    "this custsync (any sync) and later runs record them."
)


@dataclass(frozen=True)
class ReportFacts:
    """What a written report holds: for the command's output and the flow's artifacts."""

    path: Path
    bytes: int
    runs: int
    records: int
    """Failed, ambiguous and rejected records listed."""
    records_total: int
    """All of them in the chosen runs (more than ``records`` when the list was cut)."""
    customers: int
    """Keys the drill-down can show."""
    runs_frame: pl.DataFrame
    records_frame: pl.DataFrame

    def summary(self) -> dict[str, Any]:
        """The figures as JSON-ready values (``custsync report --html FILE --format json``)."""
        return {
            "html": str(self.path),
            "bytes": self.bytes,
            "runs": self.runs,
            "records": self.records,
            "records_total": self.records_total,
            "customers": self.customers,
        }


def _by(row: dict[str, Any]) -> str:
    who = "@".join(str(row[k]) for k in ("os_user", "host") if row.get(k))
    deployment = row.get("prefect_deployment")
    return f"{who} ({deployment})" if deployment else who


def _customer_data(history: pl.DataFrame, changes: pl.DataFrame | None) -> dict[str, Any]:
    """The drill-down's data: per key, its history rows and its changed fields, as lists in
    the order of ``history_columns`` and ``changes_columns``."""
    records: dict[str, dict[str, list[list[Any]]]] = {}

    def entry(key: str) -> dict[str, list[list[Any]]]:
        return records.setdefault(key, {"history": [], "changes": []})

    for row in history.iter_rows(named=True):
        row["code"] = row["error_code"]
        entry(row["external_id"])["history"].append(
            [text(row[c]) if c.endswith("_at") else row[c] for c in _HISTORY_COLUMNS]
        )
    for row in () if changes is None else changes.iter_rows(named=True):
        row["by"] = _by(row)
        entry(row["external_id"])["changes"].append(
            [text(row[c]) if c.endswith("_at") else row[c] for c in _CHANGE_COLUMNS]
        )
    return {
        "history_columns": list(_HISTORY_COLUMNS),
        "changes_columns": list(_CHANGE_COLUMNS),
        "changes_note": _NO_CHANGES_NOTE if changes is None else _CHANGES_NOTE,
        "records": records,
    }


def _default_customer(data: dict[str, Any]) -> str:
    """The key with the most to show: edits made at the provider, then changes other than
    its creation, then the longest history; the lowest key of equals."""
    records: dict[str, dict[str, list[list[Any]]]] = data["records"]
    why, action = _CHANGE_COLUMNS.index("why"), _CHANGE_COLUMNS.index("action")

    def score(key: str) -> tuple[int, int, int, str]:
        changes = records[key]["changes"]
        edited = sum(1 for c in changes if c[why] != "source")
        changed = sum(1 for c in changes if c[action] != "create")
        return (-edited, -changed, -len(records[key]["history"]), key)

    return min(records, key=score) if records else ""


def build_html(
    con: duckdb.DuckDBPyConnection,
    *,
    last: int,
    source: str,
    run_id: str | None = None,
    plotly_js: str | None = None,
    records_limit: int = RECORDS_LIMIT,
    history_limit: int = HISTORY_LIMIT,
    changes_limit: int = CHANGES_LIMIT,
) -> tuple[str, ReportFacts]:
    """The report of the last ``last`` runs (or of ``run_id``) of the state file on ``con``
    (``source`` names it in the page); the facts' ``path`` and ``bytes`` are left empty."""
    if plotly_js is None:
        from plotly.offline import get_plotlyjs

        plotly_js = get_plotlyjs()
    reads = ReportReads(con)
    runs = reads.select_runs(last, run_id)
    charts = all_charts(
        runs,
        reads.outcomes_by_action(),
        reads.rejects_by_rule(),
        reads.failures_by_code(),
        reads.drift_by_field(),
    )
    records, total = reads.records(records_limit)
    customers = _customer_data(reads.customer_history(history_limit), reads.changes(changes_limit))
    newest_first = runs.reverse()
    run_rows = newest_first.select([c.name for c in _RUN_COLUMNS]).rows()
    bad = ["bad" if (code or 0) != 0 else "" for code in newest_first["exit_code"]]
    span = (
        f"{text(runs['started_at'][0])} to {text(runs['started_at'][-1])} UTC"
        if runs.height
        else "no runs yet"
    )
    note = (
        f"Showing the first {records.height:,} of {total:,} (newest runs first); "
        "`custsync report --run ID --format csv` lists all of a run's."
        if total > records.height
        else f"{total:,} in all."
    )
    content = PageContent(
        title="custsync report",
        meta=f"{source}: the last {runs.height} run(s), {span}; "
        f"generated {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC.",
        tiles=[
            ("runs", runs.height),
            ("records done", int(runs["succeeded"].sum() or 0)),
            ("failed", int(runs["failed"].sum() or 0)),
            ("rejected keys", int(runs["rejected"].sum() or 0)),
            ("drift", int(runs["drift"].sum() or 0)),
            ("calls", int(runs["calls"].sum() or 0)),
            ("HTTP 429", int(runs["http_429"].sum() or 0)),
        ],
        runs=Table(_RUN_COLUMNS, run_rows, bad),
        charts=charts,
        records=Table(_RECORD_COLUMNS, records.select([c.name for c in _RECORD_COLUMNS]).rows()),
        records_note=note,
        customer_data=customers,
        default_customer=_default_customer(customers),
    )
    facts = ReportFacts(
        path=Path(),
        bytes=0,
        runs=runs.height,
        records=records.height,
        records_total=total,
        customers=len(customers["records"]),
        runs_frame=newest_first,
        records_frame=records,
    )
    return render_page(content, plotly_js), facts


def write_html(path: Path, document: str, facts: ReportFacts) -> ReportFacts:
    """Write ``document`` to ``path`` whole (a temporary file renamed over it, so a reader
    never sees half a report); return ``facts`` with the path and size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = document.encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return ReportFacts(**{**facts.__dict__, "path": path, "bytes": len(data)})
