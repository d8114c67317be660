"""What Prefect sees of a run: credentials from Secret blocks, the summary artifact, states."""

from __future__ import annotations

import asyncio

import pytest

from connectors.sandbox.server import SandboxServer
from tests.e2e.conftest import DAY1, sync

pytestmark = pytest.mark.e2e


def test_credentials_come_from_a_secret_block_when_the_environment_has_none(
    env: dict[str, str], sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.blocks.system import Secret

    monkeypatch.delenv("CUSTSYNC_SUMUP_API_KEY")
    without = sync(extract=[str(DAY1)], target="sumup")
    assert without["exit_code"] == 2 and "CUSTSYNC_SUMUP_API_KEY" in without["message"]

    Secret(value="sup_sk_sandbox").save("custsync-sumup-api-key", overwrite=True)
    try:
        summary = sync(extract=[str(DAY1)], target="sumup")
    finally:
        Secret.delete("custsync-sumup-api-key")
    assert summary["exit_code"] == 0, summary
    assert summary["create"]["succeeded"] == len(sandbox.admin.state()["sumup"]["customers"]) > 0


def test_each_run_publishes_its_summary_as_an_artifact(
    env: dict[str, str], sandbox: SandboxServer
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    summary = sync(extract=[str(DAY1)], target="verifone")

    async def latest() -> list[str]:
        async with get_client() as client:
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    key=ArtifactFilterKey(any_=["custsync-sync-verifone"])
                )
            )
        return [str(a.data) for a in artifacts]

    markdown = "\n".join(asyncio.run(latest()))
    assert summary["run_id"] in markdown
    assert "| create | 40 | 40 | 0 |" in markdown
    assert "sandbox-token" not in markdown
