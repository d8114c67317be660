"""The CRM migration flow: a first sync into a provider that already holds customers.

Existing customers are adopted instead of duplicated: SumUp by ``customer_id`` (a create answers
409, which the connector turns into an adoption), Verifone by an RSQL match on the e-mail address,
then on the company registration number. One match is adopted and brought in line with the
extract (source fields win, remote-only fields stay); several are reported as ambiguous and left
for a person; none is created.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.states import State

from pipelines.flows.sync import ModeName, TargetName, run_flow
from pipelines.run import RunSpec

VERIFONE_ADOPT_BY = ("email_address", "company_registration_number")


@flow(name="custsync-migrate", persist_result=False, validate_parameters=True)
async def migrate_flow(
    extract: list[str],
    target: TargetName,
    mode: ModeName = "upsert",
    dry_run: bool = False,
    mapping: str | None = None,
    rate_limit: float | None = None,
    concurrency: int | None = None,
    batch_size: int | None = None,
    state: str | None = None,
) -> State[Any]:
    """Migrate customer extract(s) into a provider, adopting the customers it already holds."""
    return await run_flow(
        RunSpec(
            flow="migrate",
            extract=tuple(extract),
            target=target,
            mode=mode,
            dry_run=dry_run,
            mapping=mapping,
            rate_limit=rate_limit,
            concurrency=concurrency,
            batch_size=batch_size,
            state=state,
            adopt_by=VERIFONE_ADOPT_BY if target == "verifone" else (),
        )
    )
