"""``custsync forget``: erase customers on request (GDPR Art. 17), at the provider and here.

A forget run is a run like any other, through the same stages (:func:`run_stages`): its row in
``runs`` says ``flow = 'forget'``; crash recovery settles what an earlier run left in flight;
its plan holds one ``erase`` row per key, stored before anything is sent; each batch opens its
journal intents, makes its calls through the executor and records calls, outcomes and the
snapshot in one transaction. Then, for the keys whose erase the provider confirmed, one more
transaction redacts every personal value the state file holds of them
(:meth:`~pipelines.state.store.StateStore.redact_forgotten`) and marks them done.

The keys go on the target's suppression list before any call is made: from then on no extract
re-creates them (rule ``forgotten``), even while an erase is unconfirmed. A key whose erase
failed, or was left in flight by a crash, stays on the list with ``redacted_at`` empty, and the
next forget run for the target erases it again (with no key given, it completes just those):
erasing is idempotent at both providers. The local copy is redacted only once the provider
confirmed, so that a failed erase can be retried with the remote id it needs.
"""

from __future__ import annotations

import logging
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, cast

import polars as pl

from pipelines.execution import execute_batch
from pipelines.executor import ERASE
from pipelines.exit_codes import ExitCode
from pipelines.local import LOCAL
from pipelines.orchestration import run_stages
from pipelines.run import Run
from pipelines.spec import RunSpec
from pipelines.stored_plan import PlanCounts, StoredPlan
from transforms.diff import PLAN_SCHEMA, plan_id
from transforms.schema import Mode

log = logging.getLogger("custsync")

FORGET = "forget"
"""The ``flow`` of a forget run in ``runs``."""
SHOWN = 5
"""Unknown keys named in the error message (the rest are counted)."""


def normalise_keys(keys: Sequence[str]) -> list[str]:
    """The keys as an extract's are normalised (trimmed, Unicode NFC), empties dropped, each
    once, in the order given."""
    cleaned = (unicodedata.normalize("NFC", k.strip()) for k in keys)
    return list(dict.fromkeys(k for k in cleaned if k))


def forget_spec(target: str, *, keys_file: str | None = None, state: str | None = None) -> RunSpec:
    """The run spec of a forget run (``mode`` says ``erase``: no diff mode applies)."""
    return RunSpec(
        flow=FORGET,
        extract=(keys_file,) if keys_file else (),
        target=target,
        mode=cast(Mode, "erase"),
        allow_empty=True,  # a forget run reads no extract: the empty-extract guard is moot
        state=state,
    )


async def forget(
    target: str,
    keys: Sequence[str],
    *,
    keys_file: str | None = None,
    state: str | None = None,
) -> dict[str, Any]:
    """Erase ``keys`` at ``target`` and redact them locally; the run's summary (its
    ``exit_code``: 0 all erased, 1 some erase failed, 2 an unknown key or bad setting)."""
    wanted = normalise_keys(keys)
    engine = replace(LOCAL, plan=lambda run: plan_erasures(run, wanted), execute=execute_and_redact)
    started = time.monotonic()
    summary = await run_stages(forget_spec(target, keys_file=keys_file, state=state), engine)
    summary.setdefault("duration_s", round(time.monotonic() - started, 3))
    return summary


def plan_erasures(run: Run, keys: Sequence[str]) -> int:
    """The plan stage of a forget run: suppress ``keys`` and plan an ``erase`` for each, and
    for every key an earlier forget run did not complete. Unknown keys stop the run (exit 2)
    before anything is written."""
    with run.stop_on_error():
        return _plan(run, keys)
    return 0


def _plan(run: Run, keys: Sequence[str]) -> int:
    store, target = run.store, run.spec.target
    known = store.known_keys(target, keys)
    unknown = sorted(set(keys) - set(known.get_column("external_id").to_list()))
    if unknown:
        named = ", ".join(unknown[:SHOWN]) + (
            f" and {len(unknown) - SHOWN} more" if len(unknown) > SHOWN else ""
        )
        run.stop(
            ExitCode.BAD_INPUT,
            f"{len(unknown)} key(s) unknown at {target} (no run ever saw them): {named};"
            " nothing was forgotten",
        )
        return 0
    outstanding = store.suppressed(target).filter(pl.col("redacted_at").is_null())
    todo = pl.concat(
        [known, outstanding.select("external_id", "remote_id")], how="vertical_relaxed"
    ).unique("external_id", keep="first", maintain_order=True)
    if todo.height == 0:
        run.stop(ExitCode.BAD_INPUT, "no key given, and no erasure left to complete")
        return 0
    if todo.height > len(keys):
        log.warning(
            "%d erasure(s) left incomplete by an earlier run are completed too",
            todo.height - known.height,
        )
    # On the list before any call: from now on no extract sends these keys again.
    store.suppress(run.run_id, target, todo)
    plan = todo.select(
        pl.Series(
            "plan_id", [plan_id(target, k, ERASE, None) for k in todo.get_column("external_id")]
        ),
        "external_id",
        pl.lit(ERASE).alias("action"),
        pl.col("remote_id"),
        pl.lit("erasure requested (custsync forget)").alias("reason"),
    )
    plan = pl.DataFrame(schema=PLAN_SCHEMA).vstack(
        plan.select(
            pl.col(n) if n in plan.columns else pl.lit(None, dtype).alias(n)
            for n, dtype in PLAN_SCHEMA.items()
        )
    )
    store.write_plan(run.run_id, target, plan)
    stored = store.plan(run.run_id)
    counts = PlanCounts(extract_rows=stored.height, valid_rows=stored.height)
    run.use_plan(StoredPlan.from_frame(stored, batch_size=run.settings.batch_size, counts=counts))
    return stored.height


async def execute_and_redact(run: Run, batch_no: int) -> None:
    """Send one batch of erasures (the execute stage), then redact, in one transaction, every
    key of it whose erase the provider confirmed; a failed erase stops the run with exit 1
    once every batch was sent."""
    await execute_batch(run, batch_no)
    with run.stop_on_error():
        rows = run.plan.batch(batch_no)
        results = run.store.erase_results(run.run_id, [r.plan_id for r in rows])
        run.store.redact_forgotten(
            run.run_id, run.spec.target, [k for k, ok in results.items() if ok]
        )
        if batch_no < run.plan.batch_count - 1:
            return
        everything = run.store.erase_results(
            run.run_id, run.store.plan(run.run_id).get_column("plan_id").to_list()
        )
        failed = sum(not ok for ok in everything.values())
        if failed:
            run.stop(
                ExitCode.RECORDS_FAILED,
                f"{failed} erasure(s) not confirmed by the provider: suppressed, not yet"
                " redacted; run custsync forget again",
            )
