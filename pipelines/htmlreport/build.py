"""Build the HTML report of a state file's last runs, and write it to one file.

Reads go through :class:`~pipelines.state.report_reads.ReportReads` (no SQL here); charts
through :mod:`~pipelines.htmlreport.charts`; the document through
:mod:`~pipelines.htmlreport.page`. plotly is imported by this package only, and this package
only by ``custsync report --html`` and the audit-report flow, so the other commands never pay
for it.
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

_CHANGE_COLUMNS = ("occurred_at", "run_id", "target", "action", "field", "before", "after", "why")


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


def _customer_data(history: pl.DataFrame) -> dict[str, Any]:
    records: dict[str, dict[str, list[list[Any]]]] = {}
    for row in history.iter_rows(named=True):
        entry = records.setdefault(row["external_id"], {"history": [], "changes": []})
        row["code"] = row["error_code"]
        entry["history"].append([text(row[c]) if c.endswith("_at") else row[c]
                                 for c in _HISTORY_COLUMNS])  # fmt: skip
    return {
        "history_columns": list(_HISTORY_COLUMNS),
        "changes_columns": list(_CHANGE_COLUMNS),
        "changes_note": "",
        "records": records,
    }


def _default_customer(data: dict[str, Any]) -> str:
    """The key with the most to show: most changes, then most history, then the lowest."""
    records: dict[str, dict[str, list[Any]]] = data["records"]
    if not records:
        return ""
    return min(records, key=lambda k: (-len(records[k]["changes"]),
                                       -len(records[k]["history"]), k))  # fmt: skip


def build_html(
    con: duckdb.DuckDBPyConnection,
    *,
    last: int,
    source: str,
    run_id: str | None = None,
    plotly_js: str | None = None,
    records_limit: int = RECORDS_LIMIT,
    history_limit: int = HISTORY_LIMIT,
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
    customers = _customer_data(reads.customer_history(history_limit))
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
        "`custsync report --run ID --format csv` lists a run's all."
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
