"""The audit-report flow: recent runs, failures, drift and latency as a Prefect artifact."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from pipelines.audit import drift, frame_to_markdown, latency, recent_runs, run_failures
from pipelines.settings import load_settings
from pipelines.state.store import StateStore


@flow(name="custsync-audit-report", persist_result=False, validate_parameters=True)
def audit_report_flow(last_runs: int = 20, state: str | None = None) -> str:
    """Publish a markdown report of the last ``last_runs`` runs; returns the markdown."""
    path = state or str(load_settings().state)
    with StateStore(path, read_only=True) as store:
        runs = recent_runs(store.con, last_runs)
        parts = ["# custsync audit report", "", "## Recent runs", frame_to_markdown(runs)]
        if runs.height:
            latest = str(runs["run_id"][0])
            parts += [
                "",
                f"## Failures of the latest run ({latest})",
                frame_to_markdown(run_failures(store.con, latest)),
            ]
        parts += ["", "## Drift", frame_to_markdown(drift(store.con))]
        parts += ["", "## Call latency", frame_to_markdown(latency(store.con))]
    markdown = "\n".join(parts)
    create_markdown_artifact(markdown, key="custsync-audit-report", description="custsync audit")
    return markdown
