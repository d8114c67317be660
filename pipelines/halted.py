"""What a stopped batch leaves: an outcome for every row whose fate is known.

When a run stops mid-batch (401/403, an unreachable provider), some rows finished, some were
refused, some were never sent and some had a request in flight. Only the last kind may have
taken effect without custsync knowing: those keep their journal intent ``pending`` for the
next run to recover. Every other row is closed in the batch's transaction: a refused row
``failed`` with the provider's status and code, a row never sent ``skipped``. Left pending,
they would cost the next run a recovery look-up each (a Verifone create) for actions
that certainly did not happen.

The evidence is the batch's own call log: a row is in doubt exactly when one of its calls
got no answer or a 5xx (the provider may have committed before failing).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from connectors.gate import CallHalted
from connectors.http import CallRecord
from pipelines.batch import BatchResult, PlanRow
from pipelines.executor import BatchExecutor

NOT_SENT = "NOT_SENT"
"""``error_code`` of a ``skipped`` outcome whose action was never sent because the run stopped."""


def in_doubt(call: CallRecord) -> bool:
    """Whether the provider may have acted on ``call`` without telling us."""
    return call.status is None or call.status >= 500


def settle_unfinished(
    rows: Sequence[PlanRow],
    result: BatchResult,
    calls: Iterable[CallRecord],
    executor: BatchExecutor,
    *,
    reason: str,
) -> int:
    """Record an outcome for each row of a stopped batch that has none and is not in doubt.

    ``calls`` are the batch's call records (tagged with plan ids); ``reason`` says why the
    run stopped. Returns the number of rows left pending (in doubt).
    """
    doubtful = {c.ref for c in calls if c.ref is not None and in_doubt(c)}
    pending = 0
    for row in rows:
        if row.plan_id in result.settled:
            continue
        if row.plan_id in doubtful:
            pending += 1
            continue
        refusal = result.refusals.get(row.plan_id)
        if refusal is not None and not isinstance(refusal, CallHalted):
            # Answered (401/403) or refused before sending (a setting): certainly not done.
            executor.fail(result, row, refusal)
        else:
            executor.record(
                result,
                row,
                "skipped",
                error_code=NOT_SENT,
                message=f"not sent: the run stopped ({reason})",
            )
    return pending
