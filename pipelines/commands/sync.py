"""``custsync sync``: sync customer extract(s) to one provider."""

from __future__ import annotations

from typing import Any

import click

from pipelines.commands.common import prefect_configured, prepare_prefect, run_and_exit
from pipelines.commands.options import flow_parameters, spec_options
from pipelines.commands.preflight import preflight
from pipelines.spec import SYNC


@click.command("sync")
@spec_options(SYNC)
def sync_command(as_json: bool, verbose: bool, **options: Any) -> None:
    """Sync customer EXTRACT file(s) (CSV or Parquet, globs allowed) to a provider.

    Validates and diffs the extract against the last synced snapshot, stores the plan, then makes
    exactly the calls needed. Every call and outcome is recorded in the DuckDB state file.
    """
    preflight(options, flow=SYNC, as_json=as_json)  # before Prefect: the first problem, exit 2
    params = flow_parameters(SYNC, options)
    params["instruments"] = params["instruments"] or None
    if not prefect_configured():
        from pipelines.local import run_local

        run_and_exit(lambda: run_local(SYNC, params), as_json=as_json, verbose=verbose)
        return
    prepare_prefect(verbose)
    from pipelines.flows.sync import sync_flow

    run_and_exit(
        lambda: sync_flow(**params, return_state=True),
        as_json=as_json,
        verbose=verbose,
    )
