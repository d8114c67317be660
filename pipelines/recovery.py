"""The recover stage: settle what a crashed run left in flight, before anything is planned.

A pending journal intent is an action whose effect is unknown. Only a non-idempotent create
needs a look at the provider (did it happen?): :func:`pipelines.pending.settle_pending`. Every
other pending action is idempotent and simply planned again by this run's diff. The outcomes
and calls are recorded like a batch's, in one transaction, before the plan is made.
"""

from __future__ import annotations

from pipelines.batch import BatchResult, PlanRow
from pipelines.exit_codes import ExitCode
from pipelines.pending import settle_pending
from pipelines.run import Run


async def recover(run: Run) -> int:
    """Settle the intents a crashed run left pending; returns how many were settled.

    Creates the provider could not be asked about stay pending and stop the run (exit 1)
    before anything is sent: a new create might duplicate them.
    """
    with run.stop_on_error():
        return await _recover(run)
    return 0


async def _recover(run: Run) -> int:
    pending = run.store.pending_journal(run.spec.target)
    if pending.height == 0:
        return 0
    rows = [PlanRow.from_mapping(r) for r in pending.to_dicts()]
    result = BatchResult()
    with run.gated():
        unsettled, halted = await settle_pending(
            run.connector(), run.executor(), rows, result, run.unreachable
        )
    run.ledger.record(result)
    if halted is not None:
        raise halted  # recorded first; stop_on_error turns it into the exit code
    if unsettled:
        run.stop(
            ExitCode.RECORDS_FAILED,
            f"{len(unsettled)} create(s) left in flight by an earlier run could not be "
            "checked at the provider: nothing was sent, to avoid duplicates; run again later",
        )
    return len(rows) - len(unsettled)
