"""``custsync apply``: execute a dry run's stored plan, exactly, or refuse."""

from __future__ import annotations

import click

from pipelines.commands.common import prefect_configured, prepare_prefect, run_and_exit


@click.command("apply")
@click.argument("run_id")
@click.option("--state", type=click.Path(dir_okay=False), help="The DuckDB state file.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary on stdout.")
@click.option("--verbose", "-v", is_flag=True, help="Show Prefect's run logs.")
def apply_command(run_id: str, state: str | None, as_json: bool, verbose: bool) -> None:
    """Execute the plan dry run RUN_ID stored, and nothing else, as a new run.

    The plan's actions go to the same keys with the same payloads (a migration's adoptions to
    the same customers); updates still merge with what the provider holds now. Refused, with
    nothing sent, when RUN_ID is unknown (exit code 2), is not a dry run that ended planned,
    was applied already, or when an extract file or the target's snapshot changed since it was
    planned (exit code 3): plan again with --dry-run.
    """
    if not prefect_configured():
        from pipelines.local import run_local_apply

        run_and_exit(lambda: run_local_apply(run_id, state), as_json=as_json, verbose=verbose)
        return
    prepare_prefect(verbose)
    from pipelines.flows.apply import apply_flow

    run_and_exit(
        lambda: apply_flow(run_id=run_id, state=state, return_state=True),
        as_json=as_json,
        verbose=verbose,
    )
