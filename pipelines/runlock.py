"""One run per state file under Prefect: runs that write the same file queue, they do not fail.

Two flow runs writing one state file at once would interleave their plans and journals, and
DuckDB (or the writer lock of :mod:`pipelines.state.access`) would refuse the second with exit
code 2. Under Prefect the sync and migrate flows first take the one slot of a global concurrency
limit named after the state file (:func:`limit_name`: a hash of its resolved path, so
``data/custsync.duckdb`` and its absolute spelling are one limit), created with limit 1 when
missing, and hold it for the run; a second run of the same file waits for the slot (its log
says so), whichever deployment started it. A run of another file takes another limit and runs
at once. ``prefect.yaml`` adds a deployment concurrency limit (1, ``ENQUEUE``) to the writers,
so a second scheduled run of one deployment queues before it even starts.

Readers (``custsync report``, the audit-report flow) take no slot: they read between a run's
writes. Without Prefect (the CLI without ``PREFECT_API_URL``) there is nothing to queue on and
the writer lock refuses a second writer (exit 2), as before.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.asyncio import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

PREFIX = "custsync-state-"
"""Names of the state files' concurrency limits (``prefect gcl ls`` lists them)."""
LEASE_S = 300.0
"""The slot's lease, renewed while the run holds it: a run killed without a goodbye frees its
file's slot this long after its last renewal."""


def limit_name(state: Path) -> str:
    """The concurrency limit of state file ``state``: ``custsync-state-<12 hex>``."""
    digest = hashlib.sha256(str(state.expanduser().resolve()).encode()).hexdigest()
    return PREFIX + digest[:12]


async def ensure_limit(name: str) -> None:
    """Create limit ``name`` with one slot if it does not exist (a limit that exists is left
    as it is: an operator may have set it inactive, or to 0 to hold runs back)."""
    async with get_client() as client:
        try:
            await client.read_global_concurrency_limit_by_name(name)
            return
        except ObjectNotFound:
            pass
        with suppress(ObjectAlreadyExists):  # another run created it meanwhile: the same limit
            await client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=name, limit=1)
            )


@asynccontextmanager
async def one_run_per_state_file(
    state: Path, logger: logging.Logger | logging.LoggerAdapter[logging.Logger]
) -> AsyncIterator[str]:
    """Hold the state file's slot for the block (waiting for it as long as it takes); yields
    the limit's name."""
    name = limit_name(state)
    await ensure_limit(name)
    logger.info("state file %s: taking its run slot (%s); a run holding it goes first", state, name)
    async with concurrency(
        name,
        occupy=1,
        strict=True,  # a limit deleted meanwhile must not let two runs through
        lease_duration=LEASE_S,
        raise_on_lease_renewal_failure=False,  # a blip of the API must not kill a long run
    ):
        logger.info("state file %s: run slot taken", state)
        yield name
