"""The sync flow's Prefect tasks are the stage functions themselves, under their task names."""

from __future__ import annotations

from pipelines.execution import execute_batch
from pipelines.flows.sync import execute_stage, plan_stage, recover_stage
from pipelines.planning import plan
from pipelines.recovery import recover


def test_each_task_runs_its_stage_function_directly() -> None:
    tasks = {t.name: t.fn for t in (recover_stage, plan_stage, execute_stage)}
    assert tasks == {"recover": recover, "plan": plan, "execute-batch": execute_batch}
