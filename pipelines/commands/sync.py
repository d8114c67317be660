"""``custsync sync``: sync customer extract(s) to one provider."""

from __future__ import annotations

import click

from pipelines.commands.common import (
    check_inputs,
    check_settings,
    prepare_prefect,
    run_and_exit,
)


def flow_options(func: click.decorators.FC) -> click.decorators.FC:
    """Options shared by ``sync`` and ``migrate``."""
    options = [
        click.option(
            "--target",
            "-t",
            type=click.Choice(["verifone", "sumup"]),
            required=True,
            help="The provider to sync to.",
        ),
        click.option("--dry-run", is_flag=True, help="Plan and store the plan; send nothing."),
        click.option(
            "--state",
            type=click.Path(dir_okay=False),
            help="The DuckDB state file (default $CUSTSYNC_STATE or data/custsync.duckdb).",
        ),
        click.option(
            "--mapping",
            type=click.Path(dir_okay=False, exists=True),
            help="TOML file renaming your CRM's columns to the canonical ones.",
        ),
        click.option("--rate", type=float, help="Requests/s (0 = unlimited; default adaptive)."),
        click.option("--concurrency", type=click.IntRange(1, 256), help="Calls in flight at most."),
        click.option(
            "--batch-size", type=click.IntRange(1), help="Actions per batch (one transaction each)."
        ),
        click.option("--json", "as_json", is_flag=True, help="Print one JSON summary on stdout."),
        click.option("--verbose", "-v", is_flag=True, help="Show Prefect's run logs."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.command("sync")
@click.argument("extract", nargs=-1, required=True)
@flow_options
@click.option(
    "--mode",
    type=click.Choice(["mirror", "upsert", "update-only", "create-only"]),
    default="upsert",
    show_default=True,
    help="mirror also deletes customers that left the extract.",
)
@click.option(
    "--instruments",
    multiple=True,
    help="external_id,token extract of payment instruments to deactivate (SumUp). Repeatable.",
)
@click.option(
    "--allow-deletes", is_flag=True, help="Allow a mirror run to delete more than the limit."
)
@click.option(
    "--max-delete-fraction",
    type=click.FloatRange(0, 1),
    help="Largest fraction of the snapshot a mirror run may delete (default 0.10).",
)
@click.option("--allow-empty", is_flag=True, help="Let an extract with no valid rows through.")
def sync_command(
    extract: tuple[str, ...],
    target: str,
    dry_run: bool,
    state: str | None,
    mapping: str | None,
    rate: float | None,
    concurrency: int | None,
    batch_size: int | None,
    as_json: bool,
    verbose: bool,
    mode: str,
    instruments: tuple[str, ...],
    allow_deletes: bool,
    max_delete_fraction: float | None,
    allow_empty: bool,
) -> None:
    """Sync customer EXTRACT file(s) (CSV or Parquet, globs allowed) to a provider.

    Validates and diffs the extract against the last synced snapshot, stores the plan, then makes
    exactly the calls needed. Every call and outcome is recorded in the DuckDB state file.
    """
    check_inputs(extract)
    check_inputs(instruments, "instruments extract")
    check_settings()
    prepare_prefect(verbose)
    from pipelines.flows.sync import sync_flow

    run_and_exit(
        lambda: sync_flow(
            extract=list(extract),
            target=target,
            mode=mode,
            dry_run=dry_run,
            instruments=list(instruments) or None,
            mapping=mapping,
            allow_deletes=allow_deletes,
            allow_empty=allow_empty,
            max_delete_fraction=max_delete_fraction,
            rate_limit=rate,
            concurrency=concurrency,
            batch_size=batch_size,
            state=state,
            return_state=True,
        ),
        as_json=as_json,
        verbose=verbose,
    )
