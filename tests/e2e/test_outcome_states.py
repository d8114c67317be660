"""A run with rejected or failed records is seen as such through Prefect's API."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from connectors.sandbox.server import SandboxServer
from tests.e2e.conftest import DAY1, DAY2


async def _run(**params: Any) -> tuple[str, str, dict[str, Any]]:
    from prefect.client.orchestration import get_client

    from pipelines.flows.sync import sync_flow

    state = await sync_flow(return_state=True, **params)
    summary = await state.result(raise_on_failure=False)
    async with get_client() as client:
        flow_run = await client.read_flow_run(state.state_details.flow_run_id)
    assert flow_run.state is not None
    return flow_run.state.type.value, flow_run.state.name, summary


async def _artifact(key: str, run_id: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    found = [str(a.data) for a in artifacts if run_id in str(a.data)]
    assert found, f"no artifact {key} for {run_id}"
    return found[0]


def test_a_run_with_rejects_ends_completed_with_rejects(
    env: dict[str, str], sandbox: SandboxServer, tmp_path: Path
) -> None:
    kind, name, summary = asyncio.run(_run(extract=[str(DAY1)], target="sumup"))
    assert (kind, name, summary["exit_code"]) == ("COMPLETED", "Completed", 0)
    kind, name, summary = asyncio.run(
        _run(extract=[str(DAY2)], target="sumup", mode="mirror", allow_deletes=True)
    )
    assert summary["exit_code"] == 1 and summary["rejected"] >= 1
    assert (kind, name) == ("COMPLETED", "Completed with rejects")
    # The artifact lists what was rejected, and the command that shows all of it.
    markdown = asyncio.run(_artifact("custsync-sync-sumup", summary["run_id"]))
    assert f"#### Failed and rejected records ({summary['rejected']} of" in markdown
    assert f"`custsync report --run {summary['run_id']}`" in markdown
    assert "| rejected |" in markdown
    # No instruments extract today: nothing to deactivate, and the run is not failed for it.
    kind, name, summary = asyncio.run(
        _run(extract=[str(DAY1)], target="sumup", instruments=[str(tmp_path / "instr-*.csv")])
    )
    assert kind == "COMPLETED" and summary["deactivate"]["planned"] == 0


def test_two_nights_read_together_are_stopped_by_the_reject_guard(
    env: dict[str, str], sandbox: SandboxServer, monkeypatch: Any
) -> None:
    monkeypatch.delenv("CUSTSYNC_MAX_REJECT_FRACTION")  # the default, 5 %
    before = int(sandbox.admin.counters()["total"])
    kind, _name, summary = asyncio.run(_run(extract=[str(DAY1), str(DAY2)], target="sumup"))
    # Every key of both nights appears twice: rejected as not unique, and nothing is sent.
    assert summary["exit_code"] == 3 and kind == "FAILED"
    assert "extract rows were rejected, more than 5%" in summary["message"]
    assert int(sandbox.admin.counters()["total"]) == before
    kind, _name, summary = asyncio.run(_run(extract=[str(DAY1)], target="sumup"))
    assert summary["exit_code"] == 0  # one night alone goes through


def test_the_runs_row_says_which_prefect_flow_run_and_which_files(
    env: dict[str, str], sandbox: SandboxServer
) -> None:
    import hashlib
    import json

    import duckdb

    from pipelines.flows.sync import sync_flow

    async def main() -> tuple[str, dict[str, Any]]:
        state = await sync_flow(return_state=True, extract=[str(DAY1)], target="sumup")
        return str(state.state_details.flow_run_id), await state.result(raise_on_failure=False)

    flow_run_id, summary = asyncio.run(main())
    with duckdb.connect(env["CUSTSYNC_STATE"], read_only=True) as con:
        row = con.execute(
            "SELECT prefect_flow_run_id, inputs, settings FROM runs WHERE run_id = ?",
            [summary["run_id"]],
        ).fetchone()
    assert row is not None and row[0] == flow_run_id
    (read,) = json.loads(row[1])
    assert read["path"] == str(DAY1) and read["bytes"] == DAY1.stat().st_size
    assert read["sha256"] == hashlib.sha256(DAY1.read_bytes()).hexdigest()
    assert "sup_sk_sandbox" not in row[2] and json.loads(row[2])["sumup"]["api_key"] == "set"
