"""The CRM migration flow: a first sync into a provider that already holds customers.

Existing customers are adopted instead of duplicated: by a client-chosen id where the provider
has one (SumUp: a GET of the key's ``customer_id``), otherwise by the target's adoption keys
(Verifone: an RSQL match on the e-mail address, then on the company registration number). The
look-ups are made when planning, dry run included (the ``look-up`` task,
:mod:`pipelines.adopting`), so the stored plan says ``adopt`` or ``create`` for each new key. One
match is adopted and brought in line with the extract (source fields win, remote-only fields
stay); several are reported as ambiguous and left for a person; none is created.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.states import State

from pipelines.flows.sync import run_flow
from pipelines.spec import MIGRATE, RunSpec
from transforms.schema import Mode


@flow(name="custsync-migrate", persist_result=False, validate_parameters=True)
async def migrate_flow(
    extract: list[str],
    target: str,
    mode: Mode = RunSpec.mode,
    dry_run: bool = RunSpec.dry_run,
    mapping: str | None = RunSpec.mapping,
    max_reject_fraction: float | None = RunSpec.max_reject_fraction,
    rate_limit: float | None = RunSpec.rate_limit,
    concurrency: int | None = RunSpec.concurrency,
    batch_size: int | None = RunSpec.batch_size,
    state: str | None = RunSpec.state,
) -> State[Any]:
    """Migrate customer extract(s) into a provider, adopting the customers it already holds.

    The parameters are :class:`~pipelines.spec.RunSpec`'s, as for the sync flow.
    """
    return await run_flow(RunSpec.from_parameters(MIGRATE, locals()))
