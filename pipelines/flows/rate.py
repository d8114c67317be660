"""Shared rate limits as Prefect global concurrency limits with slot decay.

A limit of ``limit`` slots decaying at ``rate`` slots/s lets its holders, together, send at
most ``limit`` calls at once and ``rate`` calls/s after that, whichever worker they run on.
A run takes its slots ``group`` at a time (:func:`prefect_permit`: one round trip to the
Prefect server per group, never per call), and its connector's own limiter spaces them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress

from prefect.client.orchestration import get_client
from prefect.concurrency.asyncio import rate_limit
from prefect.exceptions import ObjectAlreadyExists

from connectors.limiter import SharedRate, shared_rate
from pipelines.shared_limits import SharedLimit, permit_group


async def ensure_limits(limits: Sequence[SharedLimit]) -> None:
    """Create each limit, or set its slots and decay to the tenants file's."""
    async with get_client() as client:
        for limit in limits:
            # A sibling run may create it between the upsert's read and its create.
            with suppress(ObjectAlreadyExists):
                await client.upsert_global_concurrency_limit_by_name(
                    limit.name, limit.limit, slot_decay_per_second=limit.rate
                )


def prefect_permit(limits: Sequence[SharedLimit], own_rate: float | None) -> SharedRate | None:
    """A :class:`SharedRate` taking slots of every limit at once (``None`` for none), a group
    at a time (:func:`~pipelines.shared_limits.permit_group`)."""
    if not limits:
        return None
    names = [limit.name for limit in limits]

    async def permit(k: int) -> None:
        await rate_limit(names, occupy=k, strict=True)

    return SharedRate(permit, permit_group(tuple(limits), own_rate))


@asynccontextmanager
async def sharing(
    limits: Sequence[SharedLimit], own_rate: float | None = None
) -> AsyncIterator[None]:
    """Connectors built inside take permits from ``limits`` (created first) before calls;
    ``own_rate`` is the run's own rate limit (it bounds the group)."""
    if not limits:
        yield
        return
    await ensure_limits(limits)
    token = shared_rate.set(prefect_permit(limits, own_rate))
    try:
        yield
    finally:
        shared_rate.reset(token)
