"""The look-up stage of a migration: which planned creates the provider already holds.

A migration adopts the customers a provider already holds instead of duplicating them. The
look-ups are reads, so they are made when planning, dry run included: the stored plan then
says ``adopt`` (with the customer's remote id) or ``create`` for each new key, and the run,
or a later ``custsync apply``, does exactly that (issue 10: a dry run that said "create 40"
before a run that "created 5, adopted 35" was worse than none).

A provider with client-chosen ids (SumUp) is asked for the key's own id (one GET); one with
server-assigned ids (Verifone) is searched by the target's adoption keys, first the e-mail
address, then the company registration number (:func:`pipelines.adoption.find_matches`).
A remote id belongs to one key: a customer another key of the snapshot owns is never adopted,
and one that two keys of the extract would both adopt, or several customers matching one key,
are planned ``adopt`` without a remote id: ``ambiguous``, left for a person.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import polars as pl

from connectors.errors import FatalError, ProviderError
from connectors.http import call_ref
from connectors.protocol import CustomerConnector
from connectors.providers.registry import describe
from pipelines.adoption import AMBIGUOUS, LOOK_UP_FAILED, dotted, find_matches
from pipelines.batch import BatchResult, gather_or_halt
from pipelines.planning import use_stored_plan
from pipelines.run import Run
from pipelines.spec import MIGRATE
from transforms.diff import plan_id

_CHANGED_COLUMNS = ("old_plan_id", "plan_id", "action", "remote_id", "reason")


@dataclass(frozen=True)
class Found:
    """What the look-up of one planned create found: the remote ids, and by which key."""

    external_id: str
    by: str
    """The field that found them (``customer_id``, ``email_address``...)."""
    remote_ids: tuple[str, ...] = ()
    error: str | None = None
    """Why the look-up failed (the provider's error), when it did."""


@dataclass(frozen=True)
class Decision:
    """A planned create turned into an adoption (``remote_id``) or left for a person."""

    external_id: str
    remote_id: str | None
    reason: str


def decide(found: Sequence[Found], owners: Mapping[str, str]) -> list[Decision]:
    """The adoptions of one plan, from what each create's look-up found, by key.

    ``owners``: remote id -> the snapshot key owning it; such a customer is another key's and
    is never adopted. Several customers found for one key, or one customer found for several
    keys (by whatever field), are ``ambiguous``: nothing is guessed. A create whose look-up
    found nothing stays a create (it gets no decision).
    """
    free: dict[str, list[str]] = {}
    claims: dict[str, list[str]] = {}
    decisions: dict[str, Decision] = {}
    by = {item.external_id: item.by for item in found}
    for item in found:
        key = item.external_id
        if item.error is not None:
            decisions[key] = Decision(key, None, f"{LOOK_UP_FAILED}: {item.error}")
            continue
        ids = [rid for rid in dict.fromkeys(item.remote_ids) if owners.get(rid, key) == key]
        free[key] = ids
        for rid in ids:
            claims.setdefault(rid, []).append(key)
    for key, ids in free.items():
        if len(ids) > 1:
            why = f"several existing customers match by {by[key]} ({', '.join(ids)})"
            decisions[key] = Decision(key, None, f"{AMBIGUOUS}: {why}")
        elif ids:
            others = [k for k in claims[ids[0]] if k != key]
            if others:
                why = f"{', '.join(others)} of the extract would adopt {ids[0]} too"
                decisions[key] = Decision(key, None, f"{AMBIGUOUS}: {why}")
            else:
                decisions[key] = Decision(key, ids[0], f"exists: found by {by[key]}")
    return [decisions[k] for k in sorted(decisions)]


async def look_up(run: Run) -> int:
    """A migration's look-up stage: turn the stored plan's creates whose customer exists into
    adoptions (or ``ambiguous``), before anything is sent. Returns the planned adoptions
    (0 for any other flow, and when the run stopped)."""
    with run.stop_on_error():
        return await _look_up(run)
    return 0


async def _look_up(run: Run) -> int:
    if run.spec.flow != MIGRATE or run.plan.height == 0:
        return 0
    creates = run.store.plan(run.run_id).filter(pl.col("action") == "create")
    if creates.height == 0:
        return 0
    connector = run.connector()
    rows = creates.select("plan_id", "external_id", "payload", "content_hash").to_dicts()
    found: list[Found] = []
    lanes = asyncio.Semaphore(max(run.settings.concurrency, 1))

    async def one(row: dict[str, Any]) -> None:
        async with lanes:
            call_ref.set(row["plan_id"])  # the look-up's calls name the row they were made for
            payload = dict(orjson.loads(row["payload"] or "{}"))
            hit = await find_existing(connector, row["external_id"], payload, run.spec.adopt_by)
        if hit is not None:
            found.append(hit)

    size = max(run.settings.batch_size, 1)
    for start in range(0, len(rows), size):  # a batch's tasks at a time, not a million
        with run.gated():
            halted = await gather_or_halt(
                [one(r) for r in rows[start : start + size]], run.unreachable
            )
        run.ledger.record(BatchResult())  # the look-ups' calls, before anything is sent
        if halted is not None:
            raise halted  # recorded first; stop_on_error turns it into the exit code
    owners = run.store.remote_owners(run.spec.target, [r for f in found for r in f.remote_ids])
    decisions = decide(found, owners)
    by_key = {r["external_id"]: r for r in rows}
    target = run.spec.target
    changed = pl.DataFrame(
        {
            "old_plan_id": [by_key[d.external_id]["plan_id"] for d in decisions],
            "plan_id": [
                plan_id(target, d.external_id, "adopt", by_key[d.external_id]["content_hash"])
                for d in decisions
            ],
            "action": ["adopt"] * len(decisions),
            "remote_id": [d.remote_id for d in decisions],
            "reason": [d.reason for d in decisions],
        },
        schema=dict.fromkeys(_CHANGED_COLUMNS, pl.String),
    )
    run.store.replace_plan_rows(run.run_id, changed)
    use_stored_plan(run, run.plan.counts)
    return sum(1 for d in decisions if d.remote_id is not None)


async def find_existing(
    connector: CustomerConnector,
    external_id: str,
    payload: Mapping[str, Any],
    adopt_by: Sequence[str],
) -> Found | None:
    """What the provider holds for one planned create: by its client-chosen id (one GET), else
    by the adoption keys (searches); ``None`` when nothing was found or nothing can be asked.

    A refusal of the credentials or an unreachable provider is raised (the run stops); any
    other error of the look-up is returned in :attr:`Found.error`: that key is not created,
    since its customer may exist.
    """
    client_id = describe(connector.target).client_id
    try:
        if connector.capabilities.client_ids and client_id is not None:
            value = dotted(payload, client_id.path)
            if value in (None, ""):
                return None
            got = await connector.fetch_many([str(value)])
            ids = tuple(str(r.get(client_id.path) or value) for r in got.values())
            by = client_id.path
        elif adopt_by:
            match = await find_matches(connector, payload, adopt_by)
            if match is None:
                return None
            ids = tuple(str(r["id"]) for r in match.records)
            by = match.key
        else:
            return None
    except FatalError:
        raise
    except ProviderError as exc:
        return Found(external_id, "", error=f"{exc.code or type(exc).__name__}: {exc.message}")
    return Found(external_id, by, ids) if ids else None
