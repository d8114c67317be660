"""The sync flow: extract → validate → diff → plan → execute in batches → record.

Prefect tasks are stages and batches, never single API calls. The execute step has no Prefect
retries: retries live in the connectors, and a failed record is retried by the next run.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, Failed, State

from pipelines.adopting import look_up
from pipelines.alerts import emit_finished
from pipelines.connect import with_secret_blocks
from pipelines.execution import execute_batch
from pipelines.exit_codes import ExitCode
from pipelines.orchestration import Engine, run_stages
from pipelines.planning import plan
from pipelines.provenance import Origin
from pipelines.recovery import recover
from pipelines.run import Run
from pipelines.runlock import one_run_per_state_file
from pipelines.settings import SettingsError, load_settings
from pipelines.spec import SYNC, RunSpec
from pipelines.summary import failed_records, failures_markdown, to_markdown
from transforms.schema import Mode

WITH_REJECTS = "Completed with rejects"
"""The name of the Completed state of a run with failed or rejected records (exit code 1)."""

NOTHING_NEW = "Nothing new"
"""The name of the Completed state of a landing-folder run that found nothing to read."""

_TASK = {"cache_policy": NO_CACHE, "persist_result": False, "retries": 0}


# The stage functions are the tasks' bodies: a task calls no wrapper of its own.
recover_stage = task(name="recover", **_TASK)(recover)  # type: ignore[call-overload]
"""Settle what a crashed run left in flight before anything else is planned."""
plan_stage = task(name="plan", **_TASK)(plan)  # type: ignore[call-overload]
"""Read, normalise, validate, diff; store rejects and the plan. Returns actions planned."""
execute_stage = task(name="execute-batch", **_TASK)(execute_batch)  # type: ignore[call-overload]
"""Send one batch of planned actions and record it in one DuckDB transaction."""
look_up_stage = task(name="look-up", **_TASK)(look_up)  # type: ignore[call-overload]
"""A migration's adoption look-ups: which planned creates the provider already holds."""


async def _publish(run: Run, summary: dict[str, Any]) -> None:
    """The run's summary and its first failed and rejected records, as a markdown artifact."""
    try:
        sample, total = run.failures
        failures = failures_markdown(sample, total, str(summary["run_id"]))
        await acreate_markdown_artifact(
            "\n".join([to_markdown(summary), *failures]),
            key=f"custsync-{summary['flow']}-{summary['target']}",
            description="custsync run summary",
        )
    except (RuntimeError, ValueError) as exc:  # an artifact is a nicety; never lose the run for it
        get_run_logger().warning("could not create the summary artifact: %s", exc)


def _origin() -> Origin:
    """The Prefect flow run (and deployment) this run is, for its ``runs`` row."""
    from prefect.context import FlowRunContext
    from prefect.runtime import deployment, flow_run

    context = FlowRunContext.get()
    run = context.flow_run if context is not None else None
    if run is not None and run.deployment_id is None:
        # A CLI run: no deployment. prefect.runtime would ask the API for the flow run to
        # find that out, with a client of its own: about 1 s measured (issue 10).
        return Origin(prefect_flow_run_id=str(run.id))
    name = deployment.name
    return Origin(
        prefect_flow_run_id=str(flow_run.id) if flow_run.id else None,
        prefect_deployment=str(name) if name else None,
    )


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    return get_run_logger()


PREFECT = Engine(
    recover=recover_stage,
    plan=plan_stage,
    execute=execute_stage,
    logger=_logger,
    origin=_origin,
    secrets=with_secret_blocks,
    publish=_publish,
    look_up=look_up_stage,
)
"""The stages as Prefect tasks of the flow run, its logger, Secret blocks and artifacts."""


def final_state(summary: dict[str, Any]) -> State[Any]:
    """The flow run's end: ``Failed`` for exit code 2 or more, ``Completed with rejects`` for
    exit code 1, ``Nothing new`` (Completed) for a landing-folder run that read nothing,
    ``Completed``; the summary is its result."""
    logger = get_run_logger()
    if summary["exit_code"] >= ExitCode.BAD_INPUT:
        logger.error("run %s: %s", summary["status"], summary.get("message"))
        return Failed(message=str(summary.get("message")), data=summary)
    landing = summary.get("landing")
    if summary["exit_code"] == ExitCode.OK and isinstance(landing, dict) and not landing["read"]:
        # A clean end, named so that an automation can tell "nothing arrived" from a sync.
        return Completed(name=NOTHING_NEW, message=str(summary.get("message")), data=summary)
    if summary["exit_code"] == ExitCode.RECORDS_FAILED:
        # Completed (the run did its job), but not like a clean run: the Prefect UI, its
        # API and automations see the name, operators see the warning.
        message = f"{failed_records(summary)} record(s) failed or were rejected"
        logger.warning("%s: custsync report --run %s", message, summary["run_id"])
        return Completed(name=WITH_REJECTS, message=message, data=summary)
    return Completed(message="done", data=summary)


def _state_file(spec: RunSpec) -> Path | None:
    """The state file the run will write, or ``None`` when the settings are unusable (the run
    then stops on them, with nothing to hold)."""
    if spec.state:
        return Path(spec.state)
    try:
        return load_settings().state
    except SettingsError:
        return None


async def run_flow(spec: RunSpec) -> State[Any]:
    """Body shared by the sync and migrate flows: :func:`pipelines.orchestration.run_stages`
    with Prefect's engine, holding the state file's run slot (:mod:`pipelines.runlock`: a
    second run of the file waits), announcing its counts (:func:`pipelines.alerts.emit_finished`,
    for the rejects alert) and ending in :func:`final_state`."""
    state = _state_file(spec)
    if state is None:
        summary = await run_stages(spec, PREFECT)
    else:
        async with one_run_per_state_file(state, get_run_logger()):
            summary = await run_stages(spec, PREFECT)
    counted = "rejected" in summary  # a run that could not open its state file counted nothing
    await emit_finished(summary, failed_records(summary) if counted else 0)
    return final_state(summary)


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
    landing: bool = RunSpec.landing,
    processed: str | None = RunSpec.processed,
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
        landing: read ``extract`` as a landing folder (:mod:`pipelines.landing`): the newest
            complete night of new files only, then moved to ``processed``.
        processed: where a landing-folder run moves its files (default: ``processed/``
            beside the landing folder).
    """
    return await run_flow(RunSpec.from_parameters(SYNC, locals()))
