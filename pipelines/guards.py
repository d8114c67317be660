"""The guards: stop a run (exit code 3) before any call when its plan looks like an accident.

A pure function of what the plan stage counted and of what the caller allowed: no state file,
no provider. The flow applies the stop it returns.
"""

from __future__ import annotations

from pipelines.exit_codes import ExitCode
from pipelines.run import RunSpec, RunStop
from pipelines.settings import Settings
from pipelines.stored_plan import PlanCounts


def check_guards(counts: PlanCounts, spec: RunSpec, settings: Settings) -> RunStop | None:
    """Why the run must not send its plan, or ``None`` when it may.

    An extract without a valid row stops the run unless ``spec.allow_empty``; an extract with
    more rejected rows than ``settings.max_reject_fraction`` of its rows stops it (two nights'
    files read together look like this: every key twice); a plan deleting more than
    ``settings.max_delete_fraction`` of the snapshot's active customers stops it unless
    ``spec.allow_deletes``. The empty extract is the first reason given.
    """
    if counts.valid_rows == 0 and not spec.allow_empty:
        return RunStop(
            ExitCode.GUARD,
            "the extract has no valid rows: refusing to run (pass --allow-empty if intended)",
        )
    rejected, rows = counts.extract_rows - counts.valid_rows, counts.extract_rows
    most = settings.max_reject_fraction
    if rows and rejected > most * rows:
        return RunStop(
            ExitCode.GUARD,
            f"{rejected} of {rows} extract rows were rejected, more than {most:.0%}: refusing to "
            "run (see the rejects with custsync report --run ID; pass --max-reject-fraction "
            "if intended)",
        )
    deletes, active = counts.deletes, counts.snapshot_active
    limit = settings.max_delete_fraction
    if deletes and not spec.allow_deletes and deletes > limit * max(active, 1):
        return RunStop(
            ExitCode.GUARD,
            f"the plan deletes {deletes} of {active} customers, more than "
            f"{limit:.0%}: refusing to run (pass --allow-deletes if intended)",
        )
    return None
