"""One run of a flow: what a run holds, from its start to its end.

A :class:`Run` owns the state store, the connector (built lazily: a dry run needs no
credentials), the executor, the send gate, the :class:`~pipelines.ledger.Ledger` and the stored
plan, and it decides how the run ends (:meth:`Run.stop`, :meth:`Run.crash`, :meth:`Run.finish`).
The stages are functions of a run, one module each: :mod:`pipelines.recovery`,
:mod:`pipelines.planning`, :mod:`pipelines.guards`, :mod:`pipelines.execution`. Flows wrap
them in Prefect tasks; none of them knows Prefect.
"""

from __future__ import annotations

import gc
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from connectors.errors import AuthError, FatalError
from connectors.gate import SendGate, send_gate
from connectors.http import CallRecord
from connectors.protocol import CustomerConnector
from pipelines import crash, retention
from pipelines.batch import BatchResult, ExecutionOptions
from pipelines.breaker import Breaker
from pipelines.connect import build_connector
from pipelines.executor import BatchExecutor
from pipelines.exit_codes import ExitCode
from pipelines.extract import ExtractError
from pipelines.landing import Landing
from pipelines.ledger import Ledger
from pipelines.progress import listener
from pipelines.provenance import Origin, provenance
from pipelines.settings import Settings, SettingsError, load_settings
from pipelines.spec import RunSpec
from pipelines.state.store import StateError, StateStore
from pipelines.stored_plan import StoredPlan
from pipelines.summary import build_summary, failed_records

log = logging.getLogger("custsync")

RELEASE_EVERY_S = 2.0
"""A run releases the state file for readers while a batch is sent at most this often:
closing it (a checkpoint) and opening it again cost ~40 ms, as much CPU as 300 connector
calls, and a migration's batches of 500 take half a second each unthrottled (issue 14). A
reader waits ``state_wait`` (60 s) for it."""
WORKERS_PER_SLOT = 2
"""Rows a batch keeps in progress per request the connector may have in flight."""
FAILURES_SHOWN = 20
"""Failed and rejected records listed in the run artifact (``custsync report`` shows all)."""


@dataclass(frozen=True)
class RunStop:
    """Why a run stopped before it was done, and with which exit code."""

    exit_code: ExitCode
    message: str
    crash_file: Path | None = None
    """The crash file of an internal error (exit code 70)."""


class Run:
    """State and life cycle of one flow run."""

    def __init__(self, spec: RunSpec, settings: Settings, store: StateStore, run_id: str) -> None:
        self.spec = spec
        self.settings = settings
        self.store = store
        self.run_id = run_id
        self.plan = StoredPlan()
        """The stored plan (empty until the plan stage stored one: :meth:`use_plan`)."""
        self.ledger = Ledger(store, run_id, spec.target)
        self.execute_s = 0.0
        """Seconds spent sending batches (the summary's rate)."""
        self.landing: Landing | None = None
        """What a landing-folder run chose to read, and what it moved (:mod:`pipelines.landing`)."""
        self.inputs: list[dict[str, Any]] = []
        """The files read, as the ``runs.inputs`` column records them."""
        self.note: str | None = None
        """The message of a run that ended well but not as usual (nothing new to read)."""
        self.failures: tuple[pl.DataFrame, int] = (pl.DataFrame(), 0)
        """The first failed and rejected records, and how many (set by :meth:`finish`)."""
        self._connector: CustomerConnector | None = None
        self._executor: BatchExecutor | None = None
        # no answer at all to this many calls in a row: the provider is unreachable
        self._breaker = Breaker(limit=max(24, 3 * settings.concurrency))
        self._stop: RunStop | None = None
        # Closed when the run stops: nothing new is sent, and what was sent is waited for.
        self._gate = SendGate()
        self._released_at = -math.inf
        self._heap_frozen = False

    # -- life cycle -------------------------------------------------------------------------------

    @classmethod
    def open(cls, spec: RunSpec, origin: Origin | None = None, base: Settings | None = None) -> Run:
        """Load settings (or start from ``base``), open the state store and record the run's
        start: who and what (:mod:`pipelines.provenance`; ``origin`` is the Prefect flow run,
        when there is one)."""
        settings = (base if base is not None else load_settings()).with_overrides(
            state=Path(spec.state) if spec.state else None,
            rate_limit=spec.rate_limit,
            concurrency=spec.concurrency,
            batch_size=spec.batch_size,
            max_delete_fraction=spec.max_delete_fraction,
            max_reject_fraction=spec.max_reject_fraction,
        )
        settings.provider(spec.target)  # an unknown target: SettingsError, nothing recorded
        retention.cutoff(settings.retain_personal_days)  # a bad limit: SettingsError, the same
        store = StateStore(
            settings.state, wait_s=settings.state_wait, memory_limit=settings.state_memory_limit
        )
        params = {
            k: v
            for k, v in spec.__dict__.items()
            if k not in ("flow", "target", "mode", "dry_run", "extract")
        }
        try:
            run_id = store.begin_run(
                flow=spec.flow,
                target=spec.target,
                mode=spec.mode,
                dry_run=spec.dry_run,
                extract_paths=list(spec.extract),
                params=params,
            )
            store.record_provenance(run_id, provenance(settings, origin or Origin()).columns())
        except BaseException:
            store.close()  # the writer lock too: a worker process may run the next flow run
            raise
        return cls(spec, settings, store, run_id)

    @staticmethod
    def unrecorded_summary(spec: RunSpec, exc: BaseException, started: float) -> dict[str, Any]:
        """The summary of a run that could not even open its state store."""
        return {
            "run_id": None,
            "flow": spec.flow,
            "target": spec.target,
            "mode": spec.mode,
            "dry_run": spec.dry_run,
            "status": "error",
            "exit_code": int(ExitCode.BAD_INPUT),
            "message": str(exc),
            "duration_s": round(time.monotonic() - started, 3),
        }

    def connector(self) -> CustomerConnector:
        """The target's connector, built on first use (its calls are collected for the batch)."""
        if self._connector is None:
            self._connector = build_connector(
                self.settings, self.spec.target, on_call=self._on_call
            )
        return self._connector

    def _on_call(self, call: CallRecord) -> None:
        self.ledger.add(call)
        self._breaker.observe(call)

    def unreachable(self) -> FatalError | None:
        """The error that stops the run when the provider stopped answering, else ``None``
        (the halt hook of the executor and of crash recovery)."""
        target = self.spec.target
        return self._breaker.error(target, self.settings.provider(target).base_url)

    def executor(self) -> BatchExecutor:
        """The run's batch executor, built on first use for the current plan's twins."""
        if self._executor is None:
            self._executor = BatchExecutor(
                self.connector(),
                run_id=self.run_id,
                options=ExecutionOptions(
                    twins=self.plan.twins,
                    verify_first=frozenset(self.store.unresolved_conflicts(self.spec.target)),
                ),
                progress=listener().advance,
                halt=self.unreachable,
                owners=lambda ids: self.store.remote_owners(self.spec.target, ids),
                workers=WORKERS_PER_SLOT * self.settings.concurrency,
            )
        return self._executor

    def release_for_readers(self) -> None:
        """Release the state file while a batch is sent (readers get in), unless that was
        done less than :data:`RELEASE_EVERY_S` ago."""
        now = time.monotonic()
        if now - self._released_at >= RELEASE_EVERY_S:
            self.store.release()
            self._released_at = now

    def freeze_heap(self) -> None:
        """Before the first batch: collect, then leave every object alive now out of the
        garbage collector's full passes until :meth:`aclose` (``gc.freeze``).

        A full pass walked the ~70,000 objects of the imported libraries every 0.6 s while
        batches were sent, 20-50 ms each: 8 % of a migration's CPU, for nothing found
        (issue 14). Objects made later are collected as before.
        """
        if not self._heap_frozen:
            gc.collect()
            gc.freeze()
            self._heap_frozen = True

    def use_plan(self, plan: StoredPlan) -> None:
        """Execute ``plan`` from now on (an executor built before, by crash recovery, did not
        know its twins: the next :meth:`executor` call builds one that does)."""
        self.plan = plan
        self._executor = None

    @contextmanager
    def gated(self) -> Iterator[None]:
        """Make the run's send gate the one the calls of the block (and their tasks) obey."""
        token = send_gate.set(self._gate)
        try:
            yield
        finally:
            send_gate.reset(token)

    async def drain(self, reason: str) -> None:
        """Close the send gate (nothing new is sent) and wait for the requests in flight, so
        that their answers are read and their calls logged."""
        self._gate.close(reason)
        await self._gate.idle()

    async def aclose(self) -> None:
        """Close the connector; the store stays open until :meth:`finish`.

        Requests still in flight (work a connector left running after an error) are waited
        for first, so that their calls are logged too.
        """
        await self.drain("the run ended")
        if self._heap_frozen:
            gc.unfreeze()  # a worker process runs other flows: their garbage may be ours
            self._heap_frozen = False
        if self._connector is not None:
            await self._connector.aclose()

    def stop(self, exit_code: ExitCode, message: str) -> None:
        """Remember why the run stopped (the first reason wins)."""
        if self._stop is None:
            self._stop = RunStop(exit_code, message)

    @property
    def stopped(self) -> bool:
        """Whether a stage stopped the run (nothing more may be sent)."""
        return self._stop is not None

    @contextmanager
    def stop_on_error(self) -> Iterator[None]:
        """Turn the errors a user can cause into a stop with the right exit code, and a bug
        into a crash (:meth:`crash`, exit code 70).

        Stages catch these themselves so that no failure crosses a Prefect task boundary
        (which would log it as a crash with a traceback).
        """
        try:
            yield
        except (SettingsError, ExtractError) as exc:
            self.stop(ExitCode.BAD_INPUT, str(exc))
        except AuthError as exc:
            self.stop(ExitCode.AUTH, str(exc))
        except FatalError as exc:
            self.stop(ExitCode.BAD_INPUT, str(exc))
        except duckdb.Error as exc:
            self.stop(ExitCode.BAD_INPUT, f"state file {self.settings.state}: {exc}")
        except StateError as exc:  # reopening between batches: a reader held it too long
            self.stop(ExitCode.BAD_INPUT, str(exc))
        except BaseException as exc:
            # Anything else is a bug: it must not cross a Prefect task boundary either (Prefect
            # would print its traceback), and the run row must say the run crashed.
            if not crash.is_internal(exc):
                raise
            self.crash(exc)

    def crash(self, exc: BaseException) -> None:
        """Write the crash file of an internal error; the run ends ``crashed`` (exit code 70).

        It wins over an earlier stop (a bug is worse news); a second crash only adds nothing.
        What was already recorded stays: each batch committed in its own transaction.
        """
        if self._stop is not None and self._stop.exit_code == ExitCode.INTERNAL:
            return
        report = crash.record_crash(exc, run_id=self.run_id, state=self.settings.state)
        self._stop = RunStop(ExitCode.INTERNAL, report.message, report.path)

    def record_inputs(self, facts: list[dict[str, Any]]) -> None:
        """Add files read to the run's ``inputs`` (written at once: a crash keeps them)."""
        self.inputs.extend(facts)
        self.store.record_provenance(self.run_id, {"inputs": self.inputs})

    def finish(self, *, duration_s: float) -> dict[str, Any]:
        """Record the end of the run and return its summary."""
        summary: dict[str, Any] = {}
        with crash.reporting(self.crash):  # the run row is closed even when counting fails
            if self.ledger.calls:
                # Calls made after the last batch was recorded (e.g. answers to requests a
                # stopped batch left in flight): every call made is logged.
                self.ledger.record(BatchResult())
            # The plan rows not executed (a dry run's, a stopped run's) keep their base too.
            self.store.keep_bases(self.run_id, self.spec.target)
            older_than = retention.cutoff(self.settings.retain_personal_days)
            if older_than is not None:
                redacted = self.store.apply_retention(self.run_id, older_than)
                if redacted:
                    log.info(
                        "retention: %d personal value(s) older than %s redacted",
                        redacted,
                        older_than,
                    )
            summary = build_summary(
                self.store.con,
                self.run_id,
                unchanged=self.plan.counts.unchanged,
                execute_s=self.execute_s,
            )
            if self.spec.dry_run:
                # Nothing is recorded yet: the plan says which adoptions are left for a person.
                summary["ambiguous"] = self.store.planned_unadoptable(self.run_id)
            # Read before the store closes: the run artifact lists them.
            self.failures = self.store.failure_sample(self.run_id, FAILURES_SHOWN)
        message: str | None
        if self._stop is not None:
            exit_code, message = self._stop.exit_code, self._stop.message
            status = "crashed" if exit_code == ExitCode.INTERNAL else "stopped"
            if self._stop.crash_file is not None:
                summary["crash_file"] = str(self._stop.crash_file)
        else:
            failed = failed_records(summary)
            exit_code = ExitCode.RECORDS_FAILED if failed else ExitCode.OK
            status = "planned" if self.spec.dry_run else "done"
            message = f"{failed} record(s) failed or were rejected" if failed else self.note
        summary.update(
            {
                "run_id": self.run_id,
                "flow": self.spec.flow,
                "target": self.spec.target,
                "mode": self.spec.mode,
                "dry_run": self.spec.dry_run,
                "status": status,
                "exit_code": int(exit_code),
                "message": message,
                "duration_s": round(duration_s, 3),
            }
        )
        if self.spec.plan_run is not None:
            summary["plan_run_id"] = self.spec.plan_run  # the dry run this run applied
        if self.landing is not None:
            summary["landing"] = self.landing.report()
        self.store.finish_run(self.run_id, status=status, exit_code=int(exit_code), summary=summary)
        self.store.close()
        return summary
