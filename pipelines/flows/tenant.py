"""One tenant's sync: the child flow the fleet fans out, one run per tenant and target.

Its parameters are names only (the tenants file, the tenant, the target): the run reads the
tenants file itself, starts from the tenant's settings and its own state file, and resolves
the tenant's credential references from its worker's environment or Prefect Secret blocks
(:mod:`pipelines.tenant_run`). Runs of the same tenant and target never overlap: each holds
the one slot of a Prefect global concurrency limit named after them (:func:`one_at_a_time`).
Runs sharing a credential or a declared rate group stay under its rate together, on any
number of workers (:mod:`pipelines.shared_limits`, :mod:`pipelines.flows.rate`). A run
publishes its audit rows, batch by batch, as Parquet files under the tenants file's audit
folder (:mod:`pipelines.state.publish`), which ``custsync fleet --audit`` reads at any time. A
tenant with a landing folder reads it by the landing-folder rules; a night with nothing new
ends ``Nothing new`` (Completed), which the fleet counts as ok.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import replace
from typing import Any

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.concurrency.asyncio import concurrency
from prefect.exceptions import ObjectAlreadyExists
from prefect.states import Failed, State

from connectors.secret import Secret
from pipelines.connect import read_secret_block
from pipelines.exit_codes import ExitCode
from pipelines.flows.rate import sharing
from pipelines.flows.sync import PREFECT, final_state
from pipelines.orchestration import Engine, run_stages
from pipelines.settings import Settings, load_settings
from pipelines.shared_limits import shared_limits
from pipelines.state.publish import publishing
from pipelines.tenant_run import (
    resolve_credentials,
    tenant_publisher,
    tenant_settings,
    tenant_spec,
)
from pipelines.tenants import TenantsError, TenantsFile, load_tenants

LOCK_PREFIX = "custsync-run"
LEASE_S = 600.0
"""How long a held slot outlives a run that died without releasing it (renewed while alive)."""


def lock_name(tenant: str, target: str) -> str:
    """The global concurrency limit (one slot) that keeps runs of a tenant and target apart."""
    return f"{LOCK_PREFIX}-{tenant}-{target}"


@asynccontextmanager
async def one_at_a_time(tenant: str, target: str) -> AsyncIterator[None]:
    """Hold the one slot of the tenant and target's limit (created on first use) while the
    block runs; a second run waits for the first to finish."""
    name = lock_name(tenant, target)
    async with get_client() as client:
        # A sibling run may create it between the upsert's read and its create.
        with suppress(ObjectAlreadyExists):
            await client.upsert_global_concurrency_limit_by_name(name, 1)
    async with concurrency(name, occupy=1, strict=True, lease_duration=LEASE_S):
        yield


def tenant_engine(tenants: TenantsFile, tenant: str, target: str) -> Engine:
    """Prefect's engine, starting from the tenant's settings and reading its credentials."""

    def settings() -> Settings:
        return tenant_settings(load_settings(), tenants, tenant, target)

    async def secrets(current: Settings, _target: str) -> Settings:
        return await resolve_credentials(current, tenants, tenant, target, read_block=_read_block)

    return replace(PREFECT, settings=settings, secrets=secrets)


async def _read_block(name: str) -> Secret | None:
    return await read_secret_block(name)


@flow(name="custsync-tenant-sync", persist_result=False, validate_parameters=True)
async def tenant_sync_flow(
    tenants_file: str, tenant: str, target: str, dry_run: bool = False
) -> State[Any]:
    """Sync one tenant's extract to one of its targets, as its tenants file describes.

    Args:
        tenants_file: the tenants file (TOML; see :mod:`pipelines.tenants`).
        tenant: the tenant's id in it.
        target: one of the tenant's targets.
        dry_run: plan and store the plan; send nothing.
    """
    try:
        tenants = load_tenants(tenants_file)
        spec = tenant_spec(tenants, tenant, target, dry_run=dry_run)
    except TenantsError as exc:
        get_run_logger().error("%s", exc)
        return Failed(message=str(exc), data={"exit_code": int(ExitCode.BAD_INPUT)})
    shared = shared_limits(tenants, tenant, target)
    publisher = tenant_publisher(tenants, tenant, target)
    async with one_at_a_time(tenant, target), sharing(shared, spec.rate_limit):
        with publishing(tenants.state_file(tenant, target), publisher):
            summary = await run_stages(spec, tenant_engine(tenants, tenant, target))
    return final_state(summary)
