"""The stages of a run, in order, whatever runs them: Prefect's engine or none.

:func:`run_stages` is the body of the sync and migrate flows (:mod:`pipelines.flows.sync`
hands it Prefect tasks, its run logger, Secret blocks and an artifact) and of a CLI run
without a Prefect server (:mod:`pipelines.local`: the same stage functions, called directly,
the state file the only record). This module imports nothing of Prefect.

A landing-folder run (``spec.landing``) chooses its files after recovery
(:func:`pipelines.arrivals.look`; with nothing new it ends there, exit code 0) and moves them
to ``processed/`` at the end (:func:`pipelines.arrivals.put_away`).

Stages never raise for what a user can cause (bad file, bad setting, refused credentials, a
guard): they stop the run with an exit code. Nor for a bug: the run ends ``crashed`` (exit code
70) with a crash file (:mod:`pipelines.crash`), and what earlier batches recorded stays.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import duckdb

from pipelines import arrivals, crash
from pipelines.exit_codes import ExitCode
from pipelines.extract import ExtractError
from pipelines.guards import check_guards
from pipelines.progress import listener
from pipelines.provenance import Origin
from pipelines.run import Run
from pipelines.settings import Settings, SettingsError, load_settings
from pipelines.spec import MIGRATE, RunSpec
from pipelines.state.store import StateError


@dataclass(frozen=True)
class Engine:
    """What runs the stages: each stage as a callable (a Prefect task, or the bare function),
    where log lines go, where credentials may also come from, and what is published at the end."""

    recover: Callable[[Run], Awaitable[int]]
    plan: Callable[[Run], int]
    """The plan stage (:func:`pipelines.planning.plan`; an apply's loads a stored plan)."""
    execute: Callable[[Run, int], Awaitable[None]]
    logger: Callable[[], logging.Logger | logging.LoggerAdapter[logging.Logger]]
    origin: Callable[[], Origin]
    secrets: Callable[[Settings, str], Awaitable[Settings]]
    publish: Callable[[Run, dict[str, Any]], Awaitable[None]]
    look_up: Callable[[Run], Awaitable[int]]
    """A migration's adoption look-ups, after the guards (:func:`pipelines.adopting.look_up`)."""
    settings: Callable[[], Settings] | None = None
    """The settings a run starts from; ``None``: :func:`load_settings` (the environment and
    ``custsync.toml``). A fleet's child run starts from its tenant's
    (:mod:`pipelines.tenant_run`)."""


async def run_stages(spec: RunSpec, engine: Engine) -> dict[str, Any]:
    """Run ``spec`` to its end and return its summary (``exit_code`` says how it ended)."""
    started = time.monotonic()
    logger = engine.logger()
    try:
        base = engine.settings() if engine.settings is not None else None
        run = Run.open(spec, engine.origin(), base)
    except (SettingsError, ExtractError, StateError, OSError, duckdb.Error) as exc:
        # Nothing could be recorded: the state file itself is unusable.
        return Run.unrecorded_summary(spec, exc, started)
    except BaseException as exc:
        if not crash.is_internal(exc):
            raise
        return crashed_before_start(spec, exc, started)
    past_guards = False
    try:
        if spec.calls_provider:  # a real run, or a migration's dry run (its look-ups)
            with run.stop_on_error():
                run.settings = await engine.secrets(run.settings, spec.target)
                run.connector()  # no credentials: stop now, before reading anything
        run.store.release()  # between writes, readers may open the file
        if not spec.dry_run and not run.stopped:
            settled = await engine.recover(run)
            run.store.release()
            if settled:
                logger.info("settled %d action(s) left in flight by an earlier run", settled)
        if spec.landing and not run.stopped:
            with run.stop_on_error():
                arrivals.look(run)
        nothing_new = run.landing is not None and run.landing.nothing_new
        if nothing_new and not run.stopped:
            logger.info("%s", run.note)
        planned = 0 if run.stopped or nothing_new else engine.plan(run)
        run.store.release()
        if not run.stopped and not nothing_new:
            logger.info("%d action(s) planned, %d unchanged", planned, run.plan.counts.unchanged)
            # An apply's plan passed the guards when it was planned (its dry run ended planned).
            guard = None if spec.plan_run else check_guards(run.plan.counts, spec, run.settings)
            if guard is not None:
                run.stop(guard.exit_code, guard.message)
        if spec.flow == MIGRATE and planned and not run.stopped:
            adopted = await engine.look_up(run)
            if adopted:
                logger.info("%d planned create(s) exist at the provider: adopted", adopted)
        # Past planning and its guards: what was read is done with, whatever the batches do.
        past_guards = not run.stopped and not nothing_new
        if not spec.dry_run and planned and not run.stopped:
            listener().start(f"{spec.target}: {spec.mode}", planned)
            try:
                for batch_no in range(run.plan.batch_count):
                    await engine.execute(run, batch_no)
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
    if run.landing is not None:
        with run.stop_on_error():
            arrivals.put_away(run, read=past_guards)
    summary = run.finish(duration_s=time.monotonic() - started)
    await engine.publish(run, summary)
    return summary


def crashed_before_start(spec: RunSpec, exc: BaseException, started: float) -> dict[str, Any]:
    """The summary of a run that crashed before its run row was written (a crash file)."""
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
    return summary
