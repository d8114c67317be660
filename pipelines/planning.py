"""The plan stage: read, validate, diff; store the rejects and the plan before anything is sent.

One streaming pass of :func:`transforms.planner.build_plan` over the extract and the target's
snapshot, plus the explicit instrument deactivations. The stored plan (remote ids and merge
bases filled in by the store) is what the run executes: :meth:`pipelines.run.Run.use_plan`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import polars as pl

from pipelines.extract import read_extract, read_instruments
from pipelines.instruments import plan_deactivations
from pipelines.provenance import file_facts
from pipelines.run import Run
from pipelines.state.store import DIFF_COLUMNS
from pipelines.stored_plan import PlanCounts, StoredPlan
from transforms.planner import build_plan
from transforms.twins import find_twins

log = logging.getLogger("custsync")


def plan(run: Run) -> int:
    """Read, validate, diff; store rejects and the plan. Returns the number of actions
    (0 when the run stopped: bad input, a state file error, or a bug)."""
    with run.stop_on_error():
        return _make_plan(run)
    return 0


def _make_plan(run: Run) -> int:
    spec, target = run.spec, run.spec.target
    extract = read_extract(list(spec.extract), mapping=Path(spec.mapping) if spec.mapping else None)
    for warning in extract.warnings:
        log.warning("%s", warning)
    run.store.record_provenance(run.run_id, {"inputs": file_facts(extract.files)})
    snapshot = run.store.snapshot(target, columns=DIFF_COLUMNS)
    snapshot_active = snapshot.filter(pl.col("status") == "active").height
    # One streaming pass: normalise, validate, map, hash, diff (rejected keys are never
    # planned for deletion). Remote ids and merge bases are filled in when the plan is
    # stored, so the run executes from the stored plan.
    try:
        planned = build_plan(
            extract.frame,
            snapshot,
            target=target,
            mode=spec.mode,
            constants=run.settings.constants(target),
            failures=run.store.failures(target),
            quarantine_after=run.settings.quarantine_after,
            forgotten=run.store.forgotten_keys(target),
        )
    except pl.exceptions.PolarsError:
        extract.check_readable()  # a damaged Parquet file is bad input: ExtractError
        raise  # every file decodes: not the input's fault
    run.store.write_rejects(run.run_id, target, planned.rejects)
    counts = PlanCounts(
        extract_rows=planned.extract_rows,
        valid_rows=planned.valid_rows,
        unchanged=planned.unchanged,
        snapshot_active=snapshot_active,
    )
    # The counts stand from here even when storing the plan fails (e.g. a bad instruments
    # file): the summary reports the rows the diff found unchanged.
    run.use_plan(StoredPlan(counts=counts))
    actions = planned.plan
    if spec.instruments:
        actions = pl.concat([actions, _instrument_rows(run)], how="diagonal_relaxed")
    run.store.write_plan(run.run_id, target, actions)
    stored = run.store.plan(run.run_id)
    twins = find_twins(stored, target=target, adopt_by=spec.adopt_by)
    if twins:
        log.warning(
            "%d planned create(s) have the same content as another: sent one at a time",
            len(twins),
        )
    deletes = stored.filter(pl.col("action") == "delete").height
    run.use_plan(
        StoredPlan(
            rows=stored,
            twins=twins,
            counts=replace(counts, deletes=deletes),
            batch_size=run.settings.batch_size,
        )
    )
    return stored.height


def _instrument_rows(run: Run) -> pl.DataFrame:
    """Plan rows for the explicit instrument deactivations; bad rows become rejects."""
    target = run.spec.target
    done = run.store.succeeded_plan_ids(target, "deactivate")
    instruments = read_instruments(list(run.spec.instruments))
    if instruments.height == 0:
        log.info("no instruments extract today: nothing to deactivate")
    rows, rejects = plan_deactivations(instruments, target, done)
    if rejects.height:
        run.store.write_rejects(run.run_id, target, rejects)
    return rows
