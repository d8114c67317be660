"""The execute-batch stage: send one batch of the stored plan and record it in one transaction.

The journal intents are opened (and committed) before the first call, so that a crash leaves
them pending for the next run's recover stage. A batch the provider stopped (401/403, or no
answer at all) sends nothing more, waits for the answers to what it sent, and closes every row
whose fate is known (:func:`pipelines.halted.settle_unfinished`) before it is recorded. The
state file is released while a batch is sent, so that readers get in
(:mod:`pipelines.state.access`); closing and reopening it costs 25-60 ms here, so a run of
many short batches releases it once every :data:`pipelines.run.RELEASE_EVERY_S` at most.
"""

from __future__ import annotations

import logging
import time

from pipelines.halted import settle_unfinished
from pipelines.run import Run

log = logging.getLogger("custsync")


async def execute_batch(run: Run, batch_no: int) -> None:
    """Send batch ``batch_no`` of the run's plan and record it in one transaction; a refusal
    or an unreachable provider stops the run (after the batch is recorded)."""
    with run.stop_on_error():
        await _execute_batch(run, batch_no)


async def _execute_batch(run: Run, batch_no: int) -> None:
    rows = run.plan.batch(batch_no)
    if not rows:
        return
    executor = run.executor()
    run.freeze_heap()
    run.store.open_journal(run.run_id, run.spec.target, [r.plan_id for r in rows])
    run.release_for_readers()  # readers may open the file while the batch is sent
    started = time.monotonic()
    with run.gated():
        result = await executor.run(rows)
    run.execute_s += time.monotonic() - started
    if result.fatal is not None:
        # Stopped mid-batch: nothing more goes out, the answers to what went out are read
        # (each call is logged), and every row whose fate is known is closed with it.
        await run.drain(str(result.fatal))
        left = settle_unfinished(rows, result, run.ledger.calls, executor, reason=str(result.fatal))
        if left:
            log.warning("%d action(s) may have taken effect: recovered next run", left)
    run.ledger.record(result)  # the file stays open for the next batch's journal, a moment away
    if result.fatal is not None:
        raise result.fatal  # recorded first; stop_on_error turns it into the exit code
