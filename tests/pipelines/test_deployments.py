"""prefect.yaml: every deployment's entrypoint imports and its parameters fit the flow."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOYMENTS = yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]
FLEET_GIVES = {"pipelines/flows/tenant.py:tenant_sync_flow": ("tenant", "target")}
"""Parameters the fleet flow passes to each child run (``run_deployment``)."""


def test_the_expected_deployments_exist() -> None:
    names = {d["name"] for d in DEPLOYMENTS}
    assert names == {
        "nightly-sync-verifone",
        "nightly-sync-sumup",
        "crm-migration",
        "audit-report",
        "tenant-sync",
        "fleet-nightly",
    }
    scheduled = {d["name"] for d in DEPLOYMENTS if d.get("schedules")}
    assert {"nightly-sync-verifone", "nightly-sync-sumup", "fleet-nightly"} <= scheduled
    assert "tenant-sync" not in scheduled  # the fleet starts its runs
    assert "crm-migration" not in scheduled


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["name"])
def test_entrypoint_imports_and_parameters_fit(deployment: dict) -> None:  # type: ignore[type-arg]
    path, name = deployment["entrypoint"].split(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    flow = getattr(module, name)
    signature = inspect.signature(flow.fn)
    params = deployment.get("parameters", {})
    assert set(params) <= set(signature.parameters), set(params) - set(signature.parameters)
    # Required parameters are all given, but those the fleet gives each child run.
    per_run = dict.fromkeys(FLEET_GIVES.get(deployment["entrypoint"], ()), "")
    signature.bind(**{**per_run, **params})
    secrets = {"token", "api_key", "password"}
    assert not secrets & {p.lower() for p in params}, "credentials are never parameters"


WRITERS = {"nightly-sync-verifone", "nightly-sync-sumup", "crm-migration"}


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["name"])
def test_runs_that_write_the_state_file_queue(deployment: dict) -> None:  # type: ignore[type-arg]
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

    if deployment["name"] not in WRITERS:
        assert "concurrency_limit" not in deployment  # a report reads between a run's writes
        return
    config = ConcurrencyLimitConfig.model_validate(deployment["concurrency_limit"])
    assert config.limit == 1
    assert config.collision_strategy == ConcurrencyLimitStrategy.ENQUEUE
