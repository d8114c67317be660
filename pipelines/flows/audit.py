"""The audit-report flow: recent runs, failures, drift and latency as a Prefect artifact."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from pipelines.audit import audit_markdown
from pipelines.settings import load_settings
from pipelines.state.store import StateStore


@flow(name="custsync-audit-report", persist_result=False, validate_parameters=True)
def audit_report_flow(last_runs: int = 20, state: str | None = None) -> str:
    """Publish a markdown report of the last ``last_runs`` runs; returns the markdown."""
    settings = load_settings()
    path = state or str(settings.state)
    # A sync writing the file releases it between batches: the report waits for a gap.
    with StateStore(path, read_only=True, wait_s=settings.state_wait) as store:
        markdown = audit_markdown(store, last_runs)
    create_markdown_artifact(markdown, key="custsync-audit-report", description="custsync audit")
    return markdown
