"""The sync flow: extract → validate → diff → plan → execute in batches → record.

Prefect tasks are stages and batches, never single API calls. The execute step has no Prefect
retries: retries live in the connectors, and a failed record is retried by the next run.
"""

from __future__ import annotations

import time
from typing import Any

import duckdb
from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, Failed, State

from pipelines import crash
from pipelines.connect import with_secret_blocks
from pipelines.execution import execute_batch
from pipelines.exit_codes import ExitCode
from pipelines.extract import ExtractError
from pipelines.guards import check_guards
from pipelines.planning import plan
from pipelines.progress import listener
from pipelines.provenance import Origin
from pipelines.recovery import recover
from pipelines.run import Run
from pipelines.settings import SettingsError, load_settings
from pipelines.spec import SYNC, RunSpec
from pipelines.state.store import StateError
from pipelines.summary import failed_records, failures_markdown, to_markdown
from transforms.schema import Mode

WITH_REJECTS = "Completed with rejects"
"""The name of the Completed state of a run with failed or rejected records (exit code 1)."""

_TASK = {"cache_policy": NO_CACHE, "persist_result": False, "retries": 0}


# The stage functions are the tasks' bodies: a task calls no wrapper of its own.
recover_stage = task(name="recover", **_TASK)(recover)  # type: ignore[call-overload]
"""Settle what a crashed run left in flight before anything else is planned."""
plan_stage = task(name="plan", **_TASK)(plan)  # type: ignore[call-overload]
"""Read, normalise, validate, diff; store rejects and the plan. Returns actions planned."""
execute_stage = task(name="execute-batch", **_TASK)(execute_batch)  # type: ignore[call-overload]
"""Send one batch of planned actions and record it in one DuckDB transaction."""


async def _final_state(run: Run, started: float) -> State[Any]:
    summary = run.finish(duration_s=time.monotonic() - started)
    logger = get_run_logger()
    try:
        sample, total = run.failures
        failures = failures_markdown(sample, total, str(summary["run_id"]))
        await acreate_markdown_artifact(
            "\n".join([to_markdown(summary), *failures]),
            key=f"custsync-{summary['flow']}-{summary['target']}",
            description="custsync run summary",
        )
    except (RuntimeError, ValueError) as exc:  # an artifact is a nicety; never lose the run for it
        logger.warning("could not create the summary artifact: %s", exc)
    if summary["exit_code"] >= ExitCode.BAD_INPUT:
        logger.error("run %s: %s", summary["status"], summary.get("message"))
        return Failed(message=str(summary.get("message")), data=summary)
    if summary["exit_code"] == ExitCode.RECORDS_FAILED:
        # Completed (the run did its job), but not like a clean run: the Prefect UI, its
        # API and automations see the name, operators see the warning.
        message = f"{failed_records(summary)} record(s) failed or were rejected"
        logger.warning("%s: custsync report --run %s", message, summary["run_id"])
        return Completed(name=WITH_REJECTS, message=message, data=summary)
    return Completed(message="done", data=summary)


async def run_flow(spec: RunSpec) -> State[Any]:
    """Body shared by the sync and migrate flows.

    Stages never raise for what a user can cause (bad file, bad setting, refused credentials,
    a guard): they stop the run with an exit code, and the flow ends ``Failed`` with the summary.
    Nor for a bug: the run ends ``crashed`` (exit code 70) with a crash file
    (:mod:`pipelines.crash`), and what earlier batches recorded stays.
    """
    started = time.monotonic()
    logger = get_run_logger()
    try:
        run = Run.open(spec, _origin())
    except (SettingsError, ExtractError, StateError, OSError, duckdb.Error) as exc:
        # Nothing could be recorded: the state file itself is unusable.
        return Failed(message=str(exc), data=Run.unrecorded_summary(spec, exc, started))
    except BaseException as exc:
        if not crash.is_internal(exc):
            raise
        return _crashed_before_start(spec, exc, started)
    try:
        if not spec.dry_run:
            run.settings = await with_secret_blocks(run.settings, spec.target)
            with run.stop_on_error():
                run.connector()  # no credentials: stop now, before reading anything
        if not spec.dry_run and not run.stopped:
            settled = await recover_stage(run)
            if settled:
                logger.info("settled %d action(s) left in flight by an earlier run", settled)
        planned = 0 if run.stopped else plan_stage(run)
        if not run.stopped:
            logger.info("%d action(s) planned, %d unchanged", planned, run.plan.counts.unchanged)
            guard = check_guards(run.plan.counts, spec, run.settings)
            if guard is not None:
                run.stop(guard.exit_code, guard.message)
        if not spec.dry_run and planned and not run.stopped:
            listener().start(f"{spec.target}: {spec.mode}", planned)
            try:
                for batch_no in range(run.plan.batch_count):
                    await execute_stage(run, batch_no)
                    if run.stopped:
                        break
            finally:
                listener().stop()
    except BaseException as exc:
        # A bug between the stages (the stages catch their own): the run ends `crashed`.
        if not crash.is_internal(exc):
            raise
        run.crash(exc)
    finally:
        await run.aclose()
    return await _final_state(run, started)


def _origin() -> Origin:
    """The Prefect flow run (and deployment) this run is, for its ``runs`` row."""
    from prefect.runtime import deployment, flow_run

    name = deployment.name
    return Origin(
        prefect_flow_run_id=str(flow_run.id) if flow_run.id else None,
        prefect_deployment=str(name) if name else None,
    )


def _crashed_before_start(spec: RunSpec, exc: BaseException, started: float) -> State[Any]:
    """The end of a run that crashed before its run row was written."""
    state = spec.state
    if state is None:
        try:
            state = str(load_settings().state)
        except SettingsError:
            state = None  # the crash file goes to the default folder
    report = crash.record_crash(exc, run_id=None, state=state)
    summary = Run.unrecorded_summary(spec, exc, started)
    summary.update(
        status="crashed",
        exit_code=int(ExitCode.INTERNAL),
        message=report.message,
        crash_file=str(report.path) if report.path else None,
    )
    return Failed(message=report.message, data=summary)


@flow(name="custsync-sync", persist_result=False, validate_parameters=True)
async def sync_flow(
    extract: list[str],
    target: str,
    mode: Mode = RunSpec.mode,
    dry_run: bool = RunSpec.dry_run,
    instruments: list[str] | None = None,
    mapping: str | None = RunSpec.mapping,
    allow_deletes: bool = RunSpec.allow_deletes,
    allow_empty: bool = RunSpec.allow_empty,
    max_delete_fraction: float | None = RunSpec.max_delete_fraction,
    max_reject_fraction: float | None = RunSpec.max_reject_fraction,
    rate_limit: float | None = RunSpec.rate_limit,
    concurrency: int | None = RunSpec.concurrency,
    batch_size: int | None = RunSpec.batch_size,
    state: str | None = RunSpec.state,
) -> State[Any]:
    """Sync customer extract(s) to one provider.

    The parameters are :class:`~pipelines.spec.RunSpec`'s (see its fields for each one's
    meaning); credentials are never parameters.

    Args:
        extract: CSV/Parquet files or globs in the canonical extract format.
        target: a registered provider (``verifone``, ``sumup``).
        mode: ``mirror`` (create, update, close, delete what left the extract), ``upsert`` (no
            deletes), ``update-only`` or ``create-only``.
        dry_run: plan and store the plan, send nothing.
        instruments: extract(s) of ``external_id,token`` payment instruments to deactivate.
        mapping: a TOML file renaming the CRM's columns to canonical ones.
        allow_deletes: let a mirror run delete more than ``max_delete_fraction`` of the snapshot.
        allow_empty: let an empty extract through (otherwise the run stops, exit code 3).
        max_delete_fraction: overrides the setting.
        max_reject_fraction: overrides the setting (default 0.05).
        rate_limit: requests/s for the target (0 = no limit; unset = adaptive).
        concurrency: calls in flight at most.
        batch_size: planned actions per batch (one DuckDB transaction each).
        state: the DuckDB file (default ``$CUSTSYNC_STATE`` or ``data/custsync.duckdb``).
    """
    return await run_flow(RunSpec.from_parameters(SYNC, locals()))
