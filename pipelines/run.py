"""One run of a flow: the objects a run holds and the stages the flows call.

A :class:`Run` owns the state store, the connector (built lazily: a dry run needs no credentials)
and the stored plan. Flows wrap its stages in Prefect tasks; it knows nothing of Prefect.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import duckdb
import polars as pl

from connectors.errors import AuthError, FatalError
from connectors.gate import SendGate, send_gate
from connectors.http import CallRecord
from connectors.protocol import CustomerConnector
from pipelines import crash
from pipelines.batch import BatchResult, ExecutionOptions, PlanRow
from pipelines.breaker import Breaker
from pipelines.connect import build_connector
from pipelines.executor import BatchExecutor
from pipelines.exit_codes import ExitCode
from pipelines.extract import ExtractError, read_extract, read_instruments
from pipelines.halted import settle_unfinished
from pipelines.instruments import plan_deactivations
from pipelines.progress import listener
from pipelines.recover import settle_pending
from pipelines.settings import Settings, SettingsError, load_settings
from pipelines.state.frames import calls_frame, outcomes_frame, snapshot_frame
from pipelines.state.store import DIFF_COLUMNS, StateStore
from pipelines.summary import build_summary, failed_records
from transforms.planner import build_plan
from transforms.schema import Mode, Target
from transforms.twins import Twins, find_twins

log = logging.getLogger("custsync")


@dataclass(frozen=True)
class RunSpec:
    """What the caller asked for (flow parameters, JSON-able, no secrets)."""

    flow: str
    extract: tuple[str, ...]
    target: str
    mode: str = "upsert"
    dry_run: bool = False
    instruments: tuple[str, ...] = ()
    mapping: str | None = None
    allow_deletes: bool = False
    allow_empty: bool = False
    max_delete_fraction: float | None = None
    rate_limit: float | None = None
    concurrency: int | None = None
    batch_size: int | None = None
    state: str | None = None
    adopt_by: tuple[str, ...] = ()
    """Migration: payload fields to adopt an existing remote customer by before creating."""


@dataclass(frozen=True)
class RunStop:
    """Why a run stopped before it was done, and with which exit code."""

    exit_code: ExitCode
    message: str
    crash_file: Path | None = None
    """The crash file of an internal error (exit code 70)."""


class Run:
    """State and stages of one flow run."""

    def __init__(self, spec: RunSpec, settings: Settings, store: StateStore, run_id: str) -> None:
        self.spec = spec
        self.settings = settings
        self.store = store
        self.run_id = run_id
        self.unchanged = 0
        self.batch_count = 0
        self.valid_rows = 0
        self.snapshot_active = 0
        self._plan = pl.DataFrame()
        self._twins = Twins()
        self._connector: CustomerConnector | None = None
        self._executor: BatchExecutor | None = None
        self._calls: list[CallRecord] = []
        # no answer at all to this many calls in a row: the provider is unreachable
        self._breaker = Breaker(limit=max(24, 3 * settings.concurrency))
        self._stop: RunStop | None = None
        self._execute_s = 0.0
        # Closed when the run stops: nothing new is sent, and what was sent is waited for.
        self._gate = SendGate()

    # -- life cycle -------------------------------------------------------------------------------

    @classmethod
    def open(cls, spec: RunSpec) -> Run:
        """Load settings, open the state store and record the run's start."""
        settings = load_settings().with_overrides(
            state=Path(spec.state) if spec.state else None,
            rate_limit=spec.rate_limit,
            concurrency=spec.concurrency,
            batch_size=spec.batch_size,
            max_delete_fraction=spec.max_delete_fraction,
        )
        store = StateStore(settings.state)
        params = {
            k: v
            for k, v in spec.__dict__.items()
            if k not in ("flow", "target", "mode", "dry_run", "extract")
        }
        run_id = store.begin_run(
            flow=spec.flow,
            target=spec.target,
            mode=spec.mode,
            dry_run=spec.dry_run,
            extract_paths=list(spec.extract),
            params=params,
        )
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
        self._calls.append(call)
        self._breaker.observe(call)

    def _unreachable(self) -> FatalError | None:
        target = self.spec.target
        return self._breaker.error(target, getattr(self.settings, f"{target}_base_url"))

    async def aclose(self) -> None:
        """Close the connector; the store stays open until :meth:`finish`.

        Requests still in flight (work a connector left running after an error) are waited
        for first, so that their calls are logged too.
        """
        self._gate.close("the run ended")
        await self._gate.idle()
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

    def finish(self, *, duration_s: float) -> dict[str, Any]:
        """Record the end of the run and return its summary."""
        summary: dict[str, Any] = {}
        with crash.reporting(self.crash):  # the run row is closed even when counting fails
            if self._calls:
                # Calls made after the last batch was recorded (e.g. answers to requests a
                # stopped batch left in flight): every call made is logged.
                self._record(BatchResult())
            summary = build_summary(
                self.store.con, self.run_id, unchanged=self.unchanged, execute_s=self._execute_s
            )
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
            message = f"{failed} record(s) failed or were rejected" if failed else None
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
        self.store.finish_run(self.run_id, status=status, exit_code=int(exit_code), summary=summary)
        self.store.close()
        return summary

    # -- stages -----------------------------------------------------------------------------------

    async def reconcile(self) -> int:
        """Settle the intents a crashed run left pending; returns how many were settled.

        Only a non-idempotent create needs a look at the provider (did it happen?). Every other
        pending action is idempotent and simply planned again by this run's diff.
        """
        with self.stop_on_error():
            return await self._reconcile()
        return 0

    async def _reconcile(self) -> int:
        pending = self.store.pending_journal(self.spec.target)
        if pending.height == 0:
            return 0
        rows = [PlanRow.from_mapping(r) for r in pending.to_dicts()]
        result = BatchResult()
        self._calls.clear()
        with self._gated():
            unsettled, halted = await settle_pending(
                self.connector(), self._make_executor(), rows, result, self._unreachable
            )
        self._record(result)
        if halted is not None:
            raise halted
        if unsettled:
            self.stop(
                ExitCode.RECORDS_FAILED,
                f"{len(unsettled)} create(s) left in flight by an earlier run could not be "
                "checked at the provider: nothing was sent, to avoid duplicates; run again later",
            )
        return len(rows) - len(unsettled)

    def plan(self) -> int:
        """Read, validate, diff; store rejects and the plan. Returns the number of actions."""
        with self.stop_on_error():
            return self._make_plan()
        return 0

    def _make_plan(self) -> int:
        spec, target = self.spec, cast(Target, self.spec.target)
        extract = read_extract(
            list(spec.extract), mapping=Path(spec.mapping) if spec.mapping else None
        )
        for warning in extract.warnings:
            log.warning("%s", warning)
        snapshot = self.store.snapshot(target, columns=DIFF_COLUMNS)
        self.snapshot_active = snapshot.filter(pl.col("status") == "active").height
        # One streaming pass: normalise, validate, map, hash, diff (rejected keys are never
        # planned for deletion). Remote ids and merge bases are filled in when the plan is
        # stored, so the run executes from the stored plan.
        try:
            planned = build_plan(
                extract.frame,
                snapshot,
                target=target,
                mode=cast(Mode, spec.mode),
                entity_id=self.settings.verifone_entity_id if target == "verifone" else None,
                failures=self.store.failures(target),
                quarantine_after=self.settings.quarantine_after,
            )
        except pl.exceptions.PolarsError:
            extract.check_readable()  # a damaged Parquet file is bad input: ExtractError
            raise  # every file decodes: not the input's fault
        self.store.write_rejects(self.run_id, target, planned.rejects)
        self.valid_rows, self.unchanged = planned.valid_rows, planned.unchanged
        actions = planned.plan
        if spec.instruments:
            actions = pl.concat([actions, self._instrument_rows()], how="diagonal_relaxed")
        self.store.write_plan(self.run_id, target, actions)
        self._plan = self.store.plan(self.run_id)
        self._twins = find_twins(self._plan, target=target, adopt_by=spec.adopt_by)
        self._executor = None  # crash recovery may have built one before the plan's twins
        if self._twins:
            log.warning(
                "%d planned create(s) have the same content as another: sent one at a time",
                len(self._twins),
            )
        self.batch_count = math.ceil(self._plan.height / max(self.settings.batch_size, 1))
        return self._plan.height

    def check_guards(self) -> None:
        """Stop (exit 3) before any call when the plan looks like an accident."""
        spec = self.spec
        if self.valid_rows == 0 and not spec.allow_empty:
            self.stop(
                ExitCode.GUARD,
                "the extract has no valid rows: refusing to run (pass --allow-empty if intended)",
            )
        deletes = self._plan.filter(pl.col("action") == "delete").height
        limit = self.settings.max_delete_fraction
        if deletes and not spec.allow_deletes and deletes > limit * max(self.snapshot_active, 1):
            self.stop(
                ExitCode.GUARD,
                f"the plan deletes {deletes} of {self.snapshot_active} customers, more than "
                f"{limit:.0%}: refusing to run (pass --allow-deletes if intended)",
            )

    async def execute_batch(self, batch_no: int) -> None:
        """Send batch ``batch_no`` of the plan and record it in one transaction."""
        with self.stop_on_error():
            await self._execute_batch(batch_no)

    async def _execute_batch(self, batch_no: int) -> None:
        size = max(self.settings.batch_size, 1)
        rows = [PlanRow.from_mapping(r) for r in self._plan.slice(batch_no * size, size).to_dicts()]
        if not rows:
            return
        executor = self._make_executor()
        self.store.open_journal(self.run_id, self.spec.target, [r.plan_id for r in rows])
        started = time.monotonic()
        with self._gated():
            result = await executor.run(rows)
        self._execute_s += time.monotonic() - started
        if result.fatal is not None:
            # Stopped mid-batch: nothing more goes out, the answers to what went out are read
            # (each call is logged), and every row whose fate is known is closed with it.
            self._gate.close(str(result.fatal))
            await self._gate.idle()
            left = settle_unfinished(rows, result, self._calls, executor, reason=str(result.fatal))
            if left:
                log.warning("%d action(s) may have taken effect: reconciled next run", left)
        self._record(result)
        if result.fatal is not None:
            raise result.fatal  # recorded first; stop_on_error turns it into the exit code

    # -- helpers ----------------------------------------------------------------------------------

    @contextmanager
    def _gated(self) -> Iterator[None]:
        """Make the run's send gate the one the calls of the block (and their tasks) obey."""
        token = send_gate.set(self._gate)
        try:
            yield
        finally:
            send_gate.reset(token)

    def _make_executor(self) -> BatchExecutor:
        if self._executor is None:
            self._executor = BatchExecutor(
                self.connector(),
                run_id=self.run_id,
                options=ExecutionOptions(
                    adopt_by=self.spec.adopt_by,
                    twins=self._twins,
                    verify_first=frozenset(self.store.unresolved_conflicts(self.spec.target)),
                ),
                progress=listener().advance,
                halt=self._unreachable,
                owners=lambda ids: self.store.remote_owners(self.spec.target, ids),
            )
        return self._executor

    def _record(self, result: BatchResult) -> None:
        calls = calls_frame(
            [
                {
                    "plan_id": c.ref,
                    "operation": c.operation,
                    "method": c.method,
                    "path_template": c.path_template,
                    "status": c.status,
                    "error_code": c.error_code,
                    "attempt": c.attempt,
                    "latency_ms": c.latency_ms,
                    "started_at": c.started_at,
                    "request_id": c.request_id,
                }
                for c in self._calls
            ]
        )
        self._calls.clear()
        refused = self.store.record_batch(
            self.run_id,
            self.spec.target,
            calls=calls,
            outcomes=outcomes_frame(result.outcomes),
            snapshot_upserts=snapshot_frame(result.upserts),
            snapshot_deletes=result.deletes,
        )
        if refused:
            log.warning(
                "%d record(s) refused: their remote id belongs to another key"
                " (see remote_id_conflicts)",
                refused,
            )

    def _instrument_rows(self) -> pl.DataFrame:
        """Plan rows for the explicit instrument deactivations; bad rows become rejects."""
        target = self.spec.target
        done = self.store.succeeded_plan_ids(target, "deactivate")
        rows, rejects = plan_deactivations(
            read_instruments(list(self.spec.instruments)), target, done
        )
        if rejects.height:
            self.store.write_rejects(self.run_id, target, rejects)
        return rows
