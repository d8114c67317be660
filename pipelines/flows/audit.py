"""The audit-report flow: recent runs, failures, drift and latency as Prefect artifacts, and
the HTML report (charts, records, customer drill-down) written beside the state file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
from prefect import flow
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)

from pipelines.audit import audit_markdown
from pipelines.settings import load_settings
from pipelines.state.store import StateStore

TABLE_ROWS = 500
"""Rows at most in a table artifact (Prefect's UI shows them all on one page)."""


def default_html_path(state: Path, now: datetime | None = None) -> Path:
    """``reports/custsync-report-<UTC stamp>.html`` beside the state file."""
    stamp = f"{now or datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    return state.parent / "reports" / f"custsync-report-{stamp}.html"


def _cell(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return ";".join(map(str, value))
    return str(value)


def _table(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows for a table artifact: lists joined with ';', every other value as text."""
    rows = frame.head(TABLE_ROWS).iter_rows(named=True)
    return [{k: _cell(v) for k, v in row.items()} for row in rows]


@flow(name="custsync-audit-report", persist_result=False, validate_parameters=True)
def audit_report_flow(
    last_runs: int = 20, state: str | None = None, html: str | None = None
) -> dict[str, Any]:
    """Publish a markdown report of the last ``last_runs`` runs, write the HTML report to
    ``html`` (default: ``reports/custsync-report-<stamp>.html`` beside the state file) and
    publish a link to it and its runs and records as table artifacts.

    Returns the markdown and the HTML report's figures (path, bytes, runs, records).
    """
    from pipelines.htmlreport import build_html, write_html

    settings = load_settings()
    path = Path(state) if state else settings.state
    out = Path(html) if html else default_html_path(path)
    # A sync writing the file releases it between batches: the report waits for a gap.
    with StateStore(path, read_only=True, wait_s=settings.state_wait) as store:
        markdown = audit_markdown(store, last_runs)
        document, facts = build_html(store.con, last=last_runs, source=str(path))
    facts = write_html(out, document, facts)
    create_markdown_artifact(markdown, key="custsync-audit-report", description="custsync audit")
    create_link_artifact(
        key="custsync-audit-html",
        link=out.resolve().as_uri(),
        link_text=f"custsync report: {facts.runs} run(s), {facts.records_total} failed or "
        f"rejected record(s) ({facts.bytes / 1e6:.1f} MB, opens offline)",
        description=f"The HTML report, on the machine that ran the flow: {out.resolve()}",
    )
    create_table_artifact(
        key="custsync-audit-runs",
        table=_table(facts.runs_frame),
        description=f"The last {facts.runs} run(s), newest first",
    )
    create_table_artifact(
        key="custsync-audit-records",
        table=_table(facts.records_frame),
        description=f"Failed and rejected records: {min(facts.records, TABLE_ROWS)} of "
        f"{facts.records_total}, newest runs first",
    )
    return {"markdown": markdown, **facts.summary()}
