"""The rate limits a tenant's run shares with other runs, whichever worker runs them.

Two kinds (both from the tenants file, :mod:`pipelines.tenants`):

- **a shared credential**: runs on the same target with the same credential references (the
  same environment variables or Secret blocks) use one account at the provider, hence one
  provider bucket. Their limit is named after a hash of the references (never a secret) and
  its rate is the lowest ``rate_limit`` of those tenants; without any, there is no rate to
  share and each run keeps its own.
- **a declared group** (``[rate_groups.<name>]``, a provider-wide limit): every member
  tenant's runs on the group's target.

Each becomes a Prefect global concurrency limit with slot decay (:mod:`pipelines.flows.rate`):
``limit`` slots, decaying at ``rate`` slots/s. A run takes ``group`` slots per round trip and
spaces those calls with its own limiter (:class:`connectors.limiter.SharedRate`).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from pipelines.tenants import TargetConfig, TenantsFile

RATE_PREFIX = "custsync-rate"


@dataclass(frozen=True)
class SharedLimit:
    """One limit several runs share: a Prefect global concurrency limit's name and rate."""

    name: str
    rate: float
    """Requests/s the members stay under together (the limit's slot decay per second)."""
    members: tuple[str, ...]
    """``tenant/target`` of each run sharing it."""
    burst: int | None = None
    """The provider bucket's burst, when the tenants file gives one below a second of calls."""

    @property
    def limit(self) -> int:
        """Slots: one second's worth of calls, or the provider's burst when smaller: the most
        the members may send at once. Granted calls by time ``t`` are at most ``limit +
        rate·t``, which a provider bucket of burst ``>= limit`` at ``rate`` always admits."""
        second = max(1, math.ceil(self.rate))
        return second if self.burst is None else max(1, min(second, self.burst))

    @property
    def group(self) -> int:
        """Slots taken per round trip: half the limit, so two runs can hold a group each."""
        return max(1, self.limit // 2)


def permit_group(limits: tuple[SharedLimit, ...], own_rate: float | None) -> int:
    """Slots a run takes per round trip: no more than any of its limits allows at once, nor
    more than one second of its own calls (``own_rate``: the tenant's ``rate_limit``), so a
    slow member of a fast group holds no slots it will not spend soon, nor wastes many when
    its run ends; at least 1."""
    group = min((limit.group for limit in limits), default=1)
    if own_rate is not None and 0 < own_rate < math.inf:
        group = min(group, max(1, math.ceil(own_rate)))
    return max(1, group)


def credential_key(config: TargetConfig) -> str | None:
    """A stable key of the target's credential references (names, never values), or ``None``
    when it has none."""
    if not config.credentials:
        return None
    spelled = "\0".join(f"{k}={ref}" for k, ref in sorted(config.credentials.items()))
    return hashlib.sha256(f"{config.target}\0{spelled}".encode()).hexdigest()[:12]


def all_shared_limits(tenants: TenantsFile) -> tuple[SharedLimit, ...]:
    """Every limit two or more runs of the file share, and every declared group."""
    by_key: dict[str, list[tuple[str, float | None, int | None]]] = {}
    for tenant, target in tenants.runs():
        key = credential_key(tenant.targets[target])
        if key is not None:
            by_key.setdefault(f"{target}-cred-{key}", []).append(
                (f"{tenant.id}/{target}", tenant.rate_limit, tenant.rate_burst)
            )
    found: list[SharedLimit] = []
    for key, runs in by_key.items():
        rates = [r for _, r, _ in runs if r]
        bursts = [b for _, _, b in runs if b is not None]
        if len(runs) > 1 and rates:
            found.append(
                SharedLimit(
                    f"{RATE_PREFIX}-{key}",
                    min(rates),
                    tuple(m for m, _, _ in runs),
                    min(bursts, default=None),
                )
            )
    for group in tenants.rate_groups.values():
        members = tuple(
            f"{t.id}/{group.target}"
            for t in tenants.tenants
            if group.name in t.rate_groups and group.target in t.targets
        )
        found.append(SharedLimit(f"{RATE_PREFIX}-{group.name}", group.rate, members, group.burst))
    return tuple(found)


def shared_limits(tenants: TenantsFile, tenant: str, target: str) -> tuple[SharedLimit, ...]:
    """The limits the run of ``tenant`` on ``target`` shares with others."""
    member = f"{tenant}/{target}"
    return tuple(s for s in all_shared_limits(tenants) if member in s.members)
