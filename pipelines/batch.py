"""What a batch is made of: plan rows in, outcomes out, and running them until told to stop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.errors import FatalError
from connectors.gate import CallHalted, SendGate, send_gate
from pipelines.state.frames import ChangeLog, OutcomeRow, SnapshotRow
from transforms.twins import Twins

ProgressHook = Callable[[int], None]
HaltHook = Callable[[], "FatalError | None"]
"""Asked while a batch runs: an error when the run must stop now (e.g. provider unreachable)."""
_WATCH_S = 0.05
"""How often a running batch asks its halt hook."""


@dataclass(frozen=True)
class PlanRow:
    """One intended action, as stored in the ``plan`` table before anything is sent."""

    plan_id: str
    external_id: str
    action: str
    remote_id: str | None
    payload: str | None
    content_hash: str | None
    base_payload: str | None = None
    reason: str | None = None
    content_key: int | None = None

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any]) -> PlanRow:
        """Build from a plan-frame row (extra columns are ignored)."""
        return cls(
            plan_id=row["plan_id"],
            external_id=row["external_id"],
            action=row["action"],
            remote_id=row.get("remote_id"),
            payload=row.get("payload"),
            content_hash=row.get("content_hash"),
            base_payload=row.get("base_payload"),
            reason=row.get("reason"),
            content_key=row.get("content_key"),
        )


@dataclass
class BatchResult:
    """What one batch did: what :class:`pipelines.ledger.Ledger` records of it."""

    outcomes: list[OutcomeRow] = field(default_factory=list)
    upserts: list[SnapshotRow] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    changes: ChangeLog = field(default_factory=ChangeLog)
    """Every field the batch's succeeded actions changed, before and after."""
    fatal: FatalError | None = None
    """Set when the provider refused us (401/403): the run must stop."""
    claims: dict[str, str] = field(default_factory=dict)
    """remote id -> the key that took it in this batch (not yet in the snapshot): a look-up
    must not hand it to another key."""
    settled: set[str] = field(default_factory=set)
    """Plan ids with an outcome in :attr:`outcomes`."""
    refusals: dict[str, FatalError] = field(default_factory=dict)
    """Plan id -> the :class:`FatalError` its action ended with (it has no outcome yet)."""

    def claim(self, remote_id: str, external_id: str) -> None:
        """Record that ``external_id`` now owns ``remote_id``."""
        self.claims[remote_id] = external_id

    def claimed(self, external_id: str) -> bool:
        """Whether ``external_id`` took a remote id in this batch (a confirmed create)."""
        return external_id in self.claims.values()


@dataclass(frozen=True)
class ExecutionOptions:
    """How the executor treats creates.

    ``adopt_by``: for a migration into a provider that already holds customers, the payload fields
    (dotted) to match an existing remote record on before creating (first non-empty one wins).
    ``twins``: the plan's creates a look-up cannot tell apart (:func:`transforms.twins.find_twins`):
    sent one at a time, each confirmed before the next. ``verify_first``: keys to look up
    before creating (they lost a remote id shared with another key, see migration 005).
    """

    adopt_by: tuple[str, ...] = ()
    twins: Twins = field(default_factory=Twins)
    verify_first: frozenset[str] = frozenset()


async def gather_or_halt(
    coros: Sequence[Coroutine[Any, Any, None]], halt: HaltHook
) -> FatalError | None:
    """Run ``coros`` concurrently until they finish or the run must stop; return why it
    stopped (the first :class:`FatalError` they raise or the ``halt`` hook returns), or
    ``None`` when all of them finished.

    A stop closes the run's :class:`~connectors.gate.SendGate` (one is made for the call when
    none is set): no new request is sent, the requests in flight finish and are logged with
    their answers, and only then is the work left cancelled, none of it sending. Stopped work
    records no outcome: :func:`pipelines.halted.settle_unfinished` settles those rows.
    """
    gate = send_gate.get()
    if gate is not None:
        return await _gather(coros, halt, gate)
    gate = SendGate()
    token = send_gate.set(gate)  # tasks copy the context when created: they see this gate
    try:
        return await _gather(coros, halt, gate)
    finally:
        send_gate.reset(token)


async def _gather(
    coros: Sequence[Coroutine[Any, Any, None]], halt: HaltHook, gate: SendGate
) -> FatalError | None:
    stop = halt()
    if stop is not None:
        for coro in coros:
            coro.close()
        gate.close(str(stop))
        return stop
    tasks = {asyncio.create_task(coro) for coro in coros}
    halted: CallHalted | None = None
    try:
        while tasks:
            done, tasks = await asyncio.wait(
                tasks, timeout=_WATCH_S, return_when=asyncio.FIRST_EXCEPTION
            )
            for task in done:
                error = None if task.cancelled() else task.exception()
                if isinstance(error, CallHalted):
                    halted = halted or error
                elif isinstance(error, FatalError):
                    stop = stop or error
                elif error is not None:
                    raise error  # a bug, not a provider's answer: the finally cancels the rest
            stop = stop or halt()
            if stop is not None:
                gate.close(str(stop))
                await gate.idle()  # answers of requests already sent are read and logged
                break
    finally:
        # Nothing left here is sending (or, on a bug, nothing more matters than stopping).
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
    for task in tasks:
        error = None if task.cancelled() else task.exception()
        if error is not None and not isinstance(error, FatalError):
            raise error
    return stop or halted
