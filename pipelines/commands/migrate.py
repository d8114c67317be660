"""``custsync migrate``: first sync into a provider that already holds customers."""

from __future__ import annotations

import click

from pipelines.commands.common import (
    check_inputs,
    check_settings,
    prepare_prefect,
    run_and_exit,
)
from pipelines.commands.sync import flow_options


@click.command("migrate")
@click.argument("extract", nargs=-1, required=True)
@flow_options
def migrate_command(
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
) -> None:
    """Migrate customer EXTRACT file(s) into a provider that already holds customers.

    Adopts existing customers instead of creating duplicates (SumUp by customer_id, Verifone by
    e-mail address, then company registration number), creates the rest, and reports adopted,
    created and ambiguous records. Several matches are never guessed: they are left for a person.
    """
    check_inputs(extract)
    check_settings()
    prepare_prefect(verbose)
    from pipelines.flows.migrate import migrate_flow

    run_and_exit(
        lambda: migrate_flow(
            extract=list(extract),
            target=target,
            dry_run=dry_run,
            mapping=mapping,
            rate_limit=rate,
            concurrency=concurrency,
            batch_size=batch_size,
            state=state,
            return_state=True,
        ),
        as_json=as_json,
        verbose=verbose,
    )
