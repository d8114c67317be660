"""``custsync apply RUN_ID``: execute a dry run's stored plan, that plan and nothing else.

A dry run (``sync … --dry-run``, ``migrate … --dry-run``) stores its plan, the SHA-256 of every
extract file it read and a fingerprint of the target's snapshot. An apply is a new run (flow
``apply``, its ``plan_run_id`` the dry run's) that goes through the same stages as any run:
open, recover, then, instead of planning, :func:`load_plan`: it checks that the plan may still
be applied, copies its rows (and rejects) under the new run, and the execute stage sends them
batch by batch, with the same journal, recovery and crash safety as any run.

"Exactly" means the same actions on the same keys with the same payloads (a migration's
adoptions on the same remote customers). An update is still get-merge-post: it merges with
what the provider holds at apply time.

Refusals, each one ``error:`` line: an unknown run id (exit code 2); a run that is not a dry
run, a dry run that did not end ``planned`` (a guard stopped it, or it failed), a plan already
applied, an extract file changed, gone or added (the dry run's globs now match other files),
a snapshot that changed since the plan (another run recorded to the target), or a dry run
recorded before fingerprints existed (exit code 3, nothing sent).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from pipelines.exit_codes import ExitCode
from pipelines.extract import ExtractError, expand_paths
from pipelines.orchestration import Engine, run_stages
from pipelines.planning import use_stored_plan
from pipelines.provenance import file_facts
from pipelines.run import Run, RunStop
from pipelines.settings import SettingsError, load_settings
from pipelines.spec import APPLY, FLOWS, RunSpec
from pipelines.state.applied import PlannedRun
from pipelines.state.store import StateError, StateStore
from pipelines.stored_plan import PlanCounts
from transforms.schema import Mode


class ApplyError(Exception):
    """An apply that cannot even start: no state file, or no such run (exit code 2)."""


@dataclass(frozen=True)
class Inputs:
    """The extract files as an apply finds them: their facts, and those it could not read."""

    facts: tuple[Mapping[str, Any], ...]
    """``{path, bytes, sha256}`` of every file the dry run's extract paths match now."""
    problem: str | None = None
    """Why the files cannot be compared (a path matching nothing any more)."""


def current_inputs(paths: Sequence[str]) -> Inputs:
    """The files ``paths`` (the dry run's extract paths, globs allowed) match now."""
    try:
        files = expand_paths(list(paths))
        return Inputs(tuple(file_facts(files)))
    except (ExtractError, OSError) as exc:
        return Inputs((), str(exc))


def why_refused(
    planned: PlannedRun,
    *,
    applied: Sequence[tuple[str, str]],
    inputs: Inputs,
    fingerprint: str,
    redacted: bool = False,
    forgotten: Sequence[str] = (),
) -> str | None:
    """Why ``planned``'s plan must not be applied now (exit code 3), or ``None``.

    ``applied``: the runs that applied it already; ``inputs``: the extract files now;
    ``fingerprint``: the target's snapshot now; ``redacted``: retention has redacted the
    plan's personal values since; ``forgotten``: plan keys forgotten since (``custsync
    forget``). The first reason found is given.
    """
    rid = planned.run_id
    if not planned.dry_run or planned.flow not in FLOWS:
        return f"run {rid} is not a dry run ({planned.flow}): only a dry run's plan is applied"
    if planned.status != "planned":
        why = f": {planned.message}" if planned.message else ""
        return f"dry run {rid} ended {planned.status}{why}; nothing to apply"
    if applied:
        other, status = applied[0]
        return f"the plan of dry run {rid} was already applied by run {other} ({status})"
    if inputs.problem is not None:
        return f"the extract changed since dry run {rid} was planned: {inputs.problem}"
    then = {str(f["path"]): str(f["sha256"]) for f in planned.inputs}
    now = {str(f["path"]): str(f["sha256"]) for f in inputs.facts}
    for path in sorted(then.keys() | now.keys()):
        if path not in now:
            return f"extract file {path} is no longer read: dry run {rid}'s plan is stale"
        if path not in then:
            return f"extract file {path} was not read by dry run {rid}: its plan is stale"
        if then[path] != now[path]:
            return f"extract file {path} changed since dry run {rid} was planned"
    if redacted:
        return (
            f"the personal values of dry run {rid}'s plan were redacted by retention"
            " (retain_personal_days)"
        )
    if forgotten:
        more = f" and {len(forgotten) - 1} more" if len(forgotten) > 1 else ""
        return f"{forgotten[0]}{more} of dry run {rid}'s plan were forgotten since (erasure)"
    if planned.snapshot_fingerprint is None:
        return f"dry run {rid} was planned by an older custsync (no snapshot fingerprint)"
    if planned.snapshot_fingerprint != fingerprint:
        return (
            f"the {planned.target} snapshot changed since dry run {rid} was planned (another"
            " run recorded to it)"
        )
    return None


def load_plan(run: Run) -> int:
    """An apply's plan stage: check that the dry run's plan may be applied, then take its
    rows as this run's. Returns the actions to send (0 when refused: exit code 3)."""
    with run.stop_on_error():
        return _load_plan(run)
    return 0


def _load_plan(run: Run) -> int:
    plan_run = run.spec.plan_run
    assert plan_run is not None, "an apply names the dry run it applies"
    store = run.store
    planned = store.planned_run(plan_run)
    if planned is None:  # deleted since the apply started: as unknown
        run.stop(ExitCode.BAD_INPUT, f"no run {plan_run!r} in {run.settings.state}")
        return 0
    inputs = current_inputs(planned.extract_paths)
    refusal = why_refused(
        planned,
        applied=store.applied_by(plan_run),
        inputs=inputs,
        fingerprint=store.snapshot_fingerprint(planned.target),
        redacted=store.plan_redacted(plan_run),
        forgotten=store.plan_forgotten(plan_run),
    )
    if refusal is not None:
        run.stop(ExitCode.GUARD, f"{refusal}: not applied (plan again with --dry-run)")
        return 0
    store.record_provenance(run.run_id, {"inputs": list(inputs.facts)})
    store.claim_plan(run.run_id, plan_run)
    return use_stored_plan(run, PlanCounts(unchanged=planned.unchanged))


def apply_spec(plan_run: str, state: str | None) -> RunSpec:
    """The spec of a run applying ``plan_run``: its dry run's target, mode, extract and pace.

    Raises :class:`ApplyError` when there is no state file or no such run.
    """
    try:
        path = Path(state) if state else load_settings().state
    except SettingsError as exc:
        raise ApplyError(str(exc)) from exc
    if not path.is_file():
        raise ApplyError(f"no state file at {path}: pass --state")
    try:
        with StateStore(path, read_only=True) as store:
            planned = store.planned_run(plan_run)
    except StateError as exc:
        raise ApplyError(str(exc)) from exc
    if planned is None:
        raise ApplyError(f"no run {plan_run!r} in {path}")
    params = planned.params
    return RunSpec(
        flow=APPLY,
        extract=planned.extract_paths,
        target=planned.target,
        mode=cast(Mode, planned.mode),
        state=str(path),
        plan_run=plan_run,
        # The dry run's pace: the plan's content is stored, only how fast it goes is chosen.
        mapping=params.get("mapping"),
        rate_limit=params.get("rate_limit"),
        concurrency=params.get("concurrency"),
        batch_size=params.get("batch_size"),
    )


async def run_apply(plan_run: str, state: str | None, engine: Engine) -> dict[str, Any]:
    """Apply ``plan_run``'s stored plan with ``engine`` (whose plan stage is
    :func:`load_plan`); the run's summary (``exit_code`` says how it ended)."""
    started = time.monotonic()
    try:
        spec = apply_spec(plan_run, state)
    except ApplyError as exc:
        stop = RunStop(ExitCode.BAD_INPUT, str(exc))
        return {
            "run_id": None,
            "flow": APPLY,
            "plan_run_id": plan_run,
            "target": None,
            "mode": None,
            "dry_run": False,
            "status": "error",
            "exit_code": int(stop.exit_code),
            "message": stop.message,
            "duration_s": round(time.monotonic() - started, 3),
        }
    return await run_stages(spec, engine)
