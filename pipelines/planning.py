"""The plan stage: read, validate, diff; store the rejects and the plan before anything is sent.

One streaming pass of :func:`transforms.planner.build_plan` over the extract and the target's
snapshot, plus the explicit instrument deactivations. The plan and the rejects are stored a
part at a time as they are built: the plan stage holds a part, never the plan (issue 14). The
stored plan (remote ids and merge bases filled in by the store) is what the run executes:
:meth:`pipelines.run.Run.use_plan`.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipelines.arrivals import known_hashes
from pipelines.extract import ExtractResult, read_extract, read_instrument_files
from pipelines.instruments import plan_deactivations
from pipelines.provenance import file_facts
from pipelines.run import Run
from pipelines.state.store import DIFF_COLUMNS, StateError
from pipelines.stored_plan import WINDOW_ROWS, PlanCounts, StoredPlan
from transforms.diff import PLAN_SCHEMA
from transforms.planner import build_plan

log = logging.getLogger("custsync")
_EMPTY_PLAN = pl.DataFrame(schema=PLAN_SCHEMA)


def plan(run: Run) -> int:
    """Read, validate, diff; store rejects and the plan. Returns the number of actions
    (0 when the run stopped: bad input, a state file error, or a bug)."""
    with run.stop_on_error():
        return _make_plan(run)
    return 0


def _make_plan(run: Run) -> int:
    # A CSV extract is parsed into Parquet here, read a slice at a time, then removed.
    with tempfile.TemporaryDirectory(prefix="custsync-extract-") as spool:
        counts = _store_plan(run, Path(spool))
    return use_stored_plan(run, counts, warn=True)


def _store_plan(run: Run, spool: Path) -> PlanCounts:
    """Read, validate, diff; store the rejects and the plan; the counts the guards read."""
    spec, target = run.spec, run.spec.target
    mapping = Path(spec.mapping) if spec.mapping else None
    extract = read_extract(_paths(run), mapping=mapping, spool=spool)
    for warning in extract.warnings:
        log.warning("%s", warning)
    run.record_inputs(_facts(run, extract, "customers"))
    snapshot = run.store.snapshot(target, columns=DIFF_COLUMNS)
    snapshot_active = snapshot.filter(pl.col("status") == "active").height
    failures, forgotten = run.store.failures(target), run.store.forgotten_keys(target)
    if spec.dry_run:
        # What `custsync apply` checks: the snapshot this plan was made against is unchanged.
        run.store.record_fingerprint(run.run_id, run.store.snapshot_fingerprint(target))
    # One streaming pass: normalise, validate, map, hash and diff (rejected keys are never
    # planned for deletion); then the plan and the rejects are stored a part at a time as
    # they are built, never held whole (issue 14). Remote ids and merge bases are filled in
    # when the plan is stored, so the run executes from the stored plan.
    try:
        planned = build_plan(
            extract.frame,
            snapshot,
            target=target,
            mode=spec.mode,
            constants=run.settings.constants(target),
            failures=failures,
            quarantine_after=run.settings.quarantine_after,
            forgotten=forgotten,
            on_plan=lambda part: _stored(run, run.store.write_plan(run.run_id, target, part)),
            on_rejects=lambda part: _stored(run, run.store.write_rejects(run.run_id, target, part)),
        )
        counts = PlanCounts(
            extract_rows=planned.extract_rows,
            valid_rows=planned.valid_rows,
            unchanged=planned.unchanged,
            snapshot_active=snapshot_active,
        )
        # The counts stand from here even when storing the plan fails (e.g. a bad instruments
        # file): the summary reports the rows the diff found unchanged.
        run.use_plan(StoredPlan(counts=counts))
        if spec.instruments:  # a landing-folder run reads what the folder holds today, maybe none
            rows = _instrument_rows(run)
            run.store.write_plan(
                run.run_id, target, pl.concat([_EMPTY_PLAN, rows], how="diagonal_relaxed")
            )
    except pl.exceptions.PolarsError:
        _drop_plan(run)
        extract.check_readable()  # a damaged Parquet file is bad input: ExtractError
        raise  # every file decodes: not the input's fault
    except BaseException:
        _drop_plan(run)
        raise
    # A dry run's plan keeps its merge bases (the "old" of `report --plan`, and what an apply
    # merges with) when the snapshot moves on: Run.finish stores them (Plan.keep_bases).
    # The extract, the diff's frames and DuckDB's buffers of the writes are done with: freed
    # before the plan is read back.
    del extract, snapshot, planned
    run.store.release()
    return counts


def _drop_plan(run: Run) -> None:
    """A run stopped while planning stores no plan (its rejects stay: they were found). The
    error that stopped it is the one to report, not a second one from the state file."""
    with contextlib.suppress(duckdb.Error, StateError):
        run.store.drop_plan(run.run_id)


def _stored(run: Run, rows: int) -> int:
    """After a part of the plan (or its rejects) is written: into the file's blocks now, so
    that DuckDB never compresses more than a part at once (the whole plan, at the end, cost
    ~290 MB at 400,000 customers). DuckDB's memory for the rest of the stage (what it caches,
    and the sort of the plan's batch starts) is the run's ``state_memory_limit``."""
    run.store.checkpoint()
    return rows


def use_stored_plan(run: Run, counts: PlanCounts, *, warn: bool = False) -> int:
    """Execute the run's stored plan from now on (its twins found, its deletes counted);
    returns its number of rows. The plan stage, a migration's look-ups
    (:mod:`pipelines.adopting`) and an apply (:mod:`pipelines.apply`) end with it.

    Only where each batch starts is kept: each batch's rows are read when it is sent.
    """
    target, run_id, store = run.spec.target, run.run_id, run.store
    twins = store.plan_twins(run_id, target)
    if twins and warn:
        log.warning(
            "%d planned create(s) have the same content as another: sent one at a time",
            len(twins),
        )
    size = run.settings.batch_size
    run.use_plan(
        StoredPlan(
            height=store.planned_count(run_id),
            starts=tuple(store.plan_starts(run_id, size)),
            read=lambda start, end: store.plan_rows(run_id, start, end),
            twins=twins,
            counts=replace(counts, deletes=store.planned_count(run_id, "delete")),
            batch_size=size,
            window=max(WINDOW_ROWS // max(size, 1), 1),
        )
    )
    return run.plan.height


def _instrument_rows(run: Run) -> pl.DataFrame:
    """Plan rows for the explicit instrument deactivations; bad rows become rejects."""
    target = run.spec.target
    done = run.store.succeeded_plan_ids(target, "deactivate")
    read = read_instrument_files(_paths(run, instruments=True))
    run.record_inputs(_facts(run, read, "instruments"))
    instruments = read.frame.collect()
    if instruments.height == 0:
        log.info("no instruments extract today: nothing to deactivate")
    rows, rejects = plan_deactivations(instruments, target, done)
    if rejects.height:
        run.store.write_rejects(run.run_id, target, rejects)
    return rows


def _paths(run: Run, *, instruments: bool = False) -> list[str]:
    """The files (or globs) to read: a landing-folder run's chosen ones, else the spec's."""
    if run.landing is not None:
        choice = run.landing.instruments if instruments else run.landing.customers
        return [str(found.path) for found in choice.read]
    return list(run.spec.instruments if instruments else run.spec.extract)


def _facts(run: Run, read: ExtractResult, kind: str) -> list[dict[str, Any]]:
    """The ``runs.inputs`` entries of the files ``read``: path, bytes, SHA-256, rows, kind, and
    the night of a landing-folder run's files."""
    facts = file_facts(read.files, rows=read.rows, hashes=known_hashes(run))
    nights = {}
    if run.landing is not None:
        chosen = (*run.landing.customers.read, *run.landing.instruments.read)
        nights = {str(found.path): found.night for found in chosen}
    for fact in facts:
        fact["kind"] = kind
        if fact["path"] in nights:
            fact["night"] = nights[fact["path"]]
    return facts
