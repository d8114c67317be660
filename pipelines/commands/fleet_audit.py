"""``custsync fleet TENANTS_FILE --audit``: the cross-tenant audit, read from the Parquet files
the tenants' runs publish (:mod:`pipelines.fleet_audit`). Needs no Prefect server and waits for
no run: a run in progress shows as of its last committed batch."""

from __future__ import annotations

import json
from typing import Any

import click

from pipelines.tenants import TenantsFile

SHOWN = (
    "tenant", "target", "status", "exit_code", "started_at", "duration_s", "planned",
    "succeeded", "failed", "rejected", "calls", "http_429",
)  # fmt: skip


def show_audit(tenants: TenantsFile, last: int, as_json: bool) -> int:
    """Print the ``last`` runs of every tenant and target (a table, or one JSON object with
    ``audit_dir``, ``runs`` and ``not_published``); the exit code (0)."""
    import polars as pl

    from pipelines.fleet_audit import published_audit

    audit = published_audit(tenants, last)
    rows: list[dict[str, Any]] = audit.runs.to_dicts() if audit.runs.height else []
    if as_json:
        document = {
            "audit_dir": str(tenants.audit_folder()),
            "runs": rows,
            "not_published": list(audit.skipped),
        }
        click.echo(json.dumps(document, default=str))
        return 0
    click.echo(f"audit: {tenants.audit_folder()}")
    if rows:
        shown = audit.runs.select(SHOWN).with_columns(
            pl.col("started_at").dt.strftime("%Y-%m-%d %H:%M:%S")
        )
        with pl.Config(
            tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, tbl_hide_dataframe_shape=True
        ):
            click.echo(str(shown))
    else:
        click.echo("(no published runs yet)")
    if audit.skipped:
        click.echo(f"not published yet: {', '.join(audit.skipped)}")
    return 0
