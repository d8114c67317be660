"""``custsync migrate``: first sync into a provider that already holds customers."""

from __future__ import annotations

from typing import Any

import click

from pipelines.commands.common import prefect_configured, prepare_prefect, run_and_exit
from pipelines.commands.options import flow_parameters, spec_options
from pipelines.commands.preflight import preflight
from pipelines.spec import MIGRATE


@click.command("migrate")
@spec_options(MIGRATE)
def migrate_command(as_json: bool, verbose: bool, **options: Any) -> None:
    """Migrate customer EXTRACT file(s) into a provider that already holds customers.

    Adopts existing customers instead of creating duplicates (by a client-chosen id where the
    provider has one, as SumUp's customer_id; otherwise by the provider's adoption keys, for
    Verifone the e-mail address, then the company registration number), creates the rest, and
    reports adopted, created and ambiguous records. Several matches are never guessed: they are
    left for a person. The look-ups are reads, made when planning: --dry-run shows the
    adoptions too (it needs the credentials), and `custsync apply RUN_ID` executes that plan.
    """
    preflight(options, flow=MIGRATE, as_json=as_json)  # before Prefect: the first problem
    params = flow_parameters(MIGRATE, options)
    if not prefect_configured():
        from pipelines.local import run_local

        run_and_exit(lambda: run_local(MIGRATE, params), as_json=as_json, verbose=verbose)
        return
    prepare_prefect(verbose)
    from pipelines.flows.migrate import migrate_flow

    run_and_exit(
        lambda: migrate_flow(**params, return_state=True),
        as_json=as_json,
        verbose=verbose,
    )
