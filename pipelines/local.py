"""A run without a Prefect server: the flow's stages, called directly, recorded in DuckDB.

Without ``PREFECT_API_URL``, a Prefect flow run would first start Prefect's temporary server
(15–30 s on these machines, for a run that takes about a second) and import Prefect (about
2 s). The CLI runs the same stages (:func:`pipelines.orchestration.run_stages`) with this
engine instead: no Prefect import, no task runs, no artifact; the state file records the run
exactly as under Prefect (its ``prefect_flow_run_id`` is empty). Set ``PREFECT_API_URL`` for a
run that is a Prefect flow run, visible in the UI.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pipelines.adopting import look_up
from pipelines.apply import load_plan, run_apply
from pipelines.execution import execute_batch
from pipelines.orchestration import Engine, run_stages
from pipelines.planning import plan
from pipelines.provenance import Origin
from pipelines.recovery import recover
from pipelines.run import Run
from pipelines.settings import Settings
from pipelines.spec import RunSpec

log = logging.getLogger("custsync")


async def _no_secret_blocks(settings: Settings, target: str) -> Settings:
    return settings  # no Prefect server: credentials come from the environment only


async def _nothing_to_publish(run: Run, summary: dict[str, Any]) -> None:
    return None  # the summary is printed, and the state file holds it


LOCAL = Engine(
    recover=recover,
    plan=plan,
    execute=execute_batch,
    logger=lambda: log,
    origin=Origin,
    secrets=_no_secret_blocks,
    publish=_nothing_to_publish,
    look_up=look_up,
)
"""The stages called directly, logging to ``custsync``; credentials from the environment."""


async def run_local(flow: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Run ``flow`` (``sync`` or ``migrate``) with ``params`` without Prefect; its summary."""
    return await run_stages(RunSpec.from_parameters(flow, params), LOCAL)


LOCAL_APPLY = replace(LOCAL, plan=load_plan)
"""The stages of an apply: its plan stage loads the dry run's stored plan."""


async def run_local_apply(plan_run: str, state: str | None) -> dict[str, Any]:
    """Apply dry run ``plan_run``'s stored plan without Prefect; its summary."""
    return await run_apply(plan_run, state, LOCAL_APPLY)
