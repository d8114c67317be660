"""The apply flow: execute a dry run's stored plan (``custsync apply RUN_ID``), or refuse.

The stages are the sync flow's Prefect tasks, but for the plan stage, which loads the stored
plan after checking that it may still be applied (:mod:`pipelines.apply`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from prefect import flow, task
from prefect.states import State

from pipelines.apply import load_plan, run_apply
from pipelines.flows.sync import _TASK, PREFECT, final_state

load_plan_stage = task(name="load-plan", **_TASK)(load_plan)  # type: ignore[call-overload]
"""Check the dry run's plan may be applied (extract and snapshot unchanged); take its rows."""

PREFECT_APPLY = replace(PREFECT, plan=load_plan_stage)
"""The sync flow's engine, with the apply's plan stage."""


@flow(name="custsync-apply", persist_result=False, validate_parameters=True)
async def apply_flow(run_id: str, state: str | None = None) -> State[Any]:
    """Execute the plan stored by dry run ``run_id``, exactly, as a new run.

    Refused (nothing sent) when the run is unknown (exit code 2), is not a dry run that ended
    ``planned``, was applied already, or when an extract file or the target's snapshot changed
    since it was planned (exit code 3).

    Args:
        run_id: the dry run whose plan to apply (``custsync report`` lists runs).
        state: the DuckDB file (default ``$CUSTSYNC_STATE`` or ``data/custsync.duckdb``).
    """
    return final_state(await run_apply(run_id, state, PREFECT_APPLY))
