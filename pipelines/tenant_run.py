"""One tenant's run: the :class:`RunSpec` and :class:`Settings` a child run of the fleet uses.

The fleet hands a child run only names (the tenants file, the tenant, the target); the child
reads the file itself and resolves the tenant's credential references here, at run time, from
its own environment or Prefect Secret blocks. Secrets therefore never travel as parameters.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace

from connectors.providers.registry import get_provider
from connectors.secret import Secret
from pipelines.settings import Settings, SettingsError
from pipelines.spec import SYNC, RunSpec
from pipelines.state.publish import Publisher
from pipelines.tenants import CredentialRef, Tenant, TenantsError, TenantsFile

BlockReader = Callable[[str], Awaitable[Secret | None]]
"""Reads a Prefect Secret block by name (``None`` when there is none)."""


def _target_of(tenant: Tenant, target: str, tenants: TenantsFile) -> None:
    if target not in tenant.targets:
        raise TenantsError(tenants.path, "has no table for this target", tenant.id, target)


def tenant_spec(
    tenants: TenantsFile, tenant_id: str, target: str, *, dry_run: bool = False
) -> RunSpec:
    """The sync a child run does for ``tenant_id`` and ``target``: the tenant's extract (or
    landing folder, read by the landing-folder rules), mode, mapping and rate limit, on its
    own state file."""
    tenant = tenants.tenant(tenant_id)
    _target_of(tenant, target, tenants)
    return RunSpec(
        flow=SYNC,
        extract=tenant.extract,
        target=target,
        mode=tenant.mode,
        dry_run=dry_run,
        mapping=tenant.mapping,
        rate_limit=tenant.rate_limit,
        state=str(tenants.state_file(tenant.id, target)),
        landing=tenant.landing,
        processed=tenant.processed,
    )


def tenant_settings(base: Settings, tenants: TenantsFile, tenant_id: str, target: str) -> Settings:
    """``base`` with the target's settings replaced by the tenant's: its plain settings set,
    and every secret setting cleared until :func:`resolve_credentials` fills in the tenant's
    own (so a worker's platform-wide ``CUSTSYNC_SUMUP_API_KEY`` never serves a tenant)."""
    tenant = tenants.tenant(tenant_id)
    _target_of(tenant, target, tenants)
    config = tenant.targets[target]
    provider = get_provider(target)
    cleared = {s.name: None for s in provider.settings if s.secret}
    provider_values = base.provider(target).replace(**cleared, **config.settings)
    return replace(base, providers={**base.providers, target: provider_values})


async def resolve_credentials(
    settings: Settings,
    tenants: TenantsFile,
    tenant_id: str,
    target: str,
    *,
    env: Mapping[str, str] | None = None,
    read_block: BlockReader,
) -> Settings:
    """``settings`` with the tenant's credentials for ``target`` read from where its
    references point; :class:`SettingsError` naming the reference (never a value) when one
    of the tenant's own is unset. One inherited from ``[defaults.<target>]`` may be unset
    (a platform OAuth secret serves no tenant with an API key); a connector that needs it
    says so."""
    env = os.environ if env is None else env
    config = tenants.tenant(tenant_id).targets[target]
    found: dict[str, Secret] = {}
    for name, ref in config.credentials.items():
        value = await _read(ref, env, read_block)
        if value is None and name in config.inherited:
            continue
        if value is None:
            where = "environment variable" if ref.kind == "env" else "Prefect Secret block"
            raise SettingsError(
                f"tenant {tenant_id}: {target}.{name}: the {where} {ref.name} is unset or empty"
            )
        found[name] = value
    return settings.with_provider(target, **found)


async def _read(
    ref: CredentialRef, env: Mapping[str, str], read_block: BlockReader
) -> Secret | None:
    if ref.kind == "env":
        raw = env.get(ref.name)
        return Secret(raw) if raw else None
    return await read_block(ref.name)


def tenant_publisher(tenants: TenantsFile, tenant_id: str, target: str) -> Publisher:
    """The publisher of the tenant and target's audit rows, under the file's audit folder
    (:mod:`pipelines.state.publish`)."""
    return Publisher(tenants.audit_folder(), tenant_id, target)
