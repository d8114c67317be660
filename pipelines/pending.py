"""Settle the creates a crashed run left in flight, under the rules of a live create.

A pending journal intent is an action whose effect is unknown. Only a Verifone create needs a
look at the provider (did it happen?); every other action is idempotent and simply planned
again. The look-up is the live create's: a customer *equal* to the payload that no other key
owns. Twins (pending creates with the same payload) are settled together: the executor sent
them one at a time in ``external_id`` order, each after the previous was confirmed, so the
equal un-owned customers, oldest first, belong to the group's members in that order. More
such customers than members: someone else made one too, and nothing is guessed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import orjson

from connectors.errors import FatalError, ProviderError
from connectors.protocol import CustomerConnector
from pipelines.batch import BatchResult, HaltHook, PlanRow, gather_or_halt
from pipelines.executor import BatchExecutor

log = logging.getLogger("custsync")

ENTITY_CHANGED = "ENTITY_CHANGED"
"""``error_code`` of a pending create superseded because the entity id setting changed."""


def _twin_key(row: PlanRow) -> str:
    return str(row.content_key) if row.content_key is not None else row.payload or ""


async def settle_pending(
    connector: CustomerConnector,
    executor: BatchExecutor,
    rows: Sequence[PlanRow],
    result: BatchResult,
    halt: HaltHook,
) -> tuple[list[str], FatalError | None]:
    """Record an outcome in ``result`` for every pending row that can be settled now.

    Returns the plan ids still unsettled (the provider could not be asked: their intents stay
    pending for the next run) and the error that stopped the work, if any.
    """
    unsettled: list[str] = []
    groups: dict[str, list[PlanRow]] = {}
    for row in rows:
        if row.action != "create" or not connector.capabilities.look_up_creates:
            # Idempotent (SumUp create answers 409, updates and deletes repeat safely).
            executor.record(result, row, "skipped", message="re-planned after a crash")
            continue
        superseded = connector.superseded(orjson.loads(row.payload or "{}"))
        if superseded is not None:
            executor.record(result, row, "skipped", error_code=ENTITY_CHANGED, message=superseded)
        else:
            groups.setdefault(_twin_key(row), []).append(row)

    async def settle(members: list[PlanRow]) -> None:
        members = sorted(members, key=lambda r: r.external_id)

        def owned(remote_ids: Sequence[str]) -> set[str]:
            return {rid for rid in remote_ids if executor.owner_of(result, rid) is not None}

        try:
            found = await connector.equal_matches(
                orjson.loads(members[0].payload or "{}"), owned=owned
            )
        except FatalError:
            raise
        except ProviderError as exc:
            # Still unknown: the intents stay pending and the next run tries again.
            log.warning("could not recover %s: %s", members[0].external_id, exc)
            unsettled.extend(r.plan_id for r in members)
            return
        if len(found) > len(members):
            ids = ", ".join(str(r["id"]) for r in found)
            for row in members:
                executor.record(
                    result,
                    row,
                    "ambiguous",
                    message="a crashed run may have created it; several customers match: " + ids,
                )
            return
        for index, row in enumerate(members):
            if index < len(found):
                executor.adopt(result, row, found[index], message="created by a crashed run")
            else:
                executor.record(result, row, "skipped", message="never created; re-planned")

    halted = await gather_or_halt([settle(g) for g in groups.values()], halt)
    return unsettled, halted
