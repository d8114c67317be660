"""RunSpec is the one parameter object: flows, CLI and deployments agree with it."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from connectors.providers.registry import provider_names
from pipelines.cli import cli
from pipelines.spec import FLOWS, MIGRATE, SYNC, RunSpec, parameters

REPO = Path(__file__).resolve().parents[2]


def _flow(name: str) -> Any:
    if name == SYNC:
        from pipelines.flows.sync import sync_flow

        return sync_flow
    from pipelines.flows.migrate import migrate_flow

    return migrate_flow


def _same(spec_default: Any, flow_default: Any) -> bool:
    # Prefect parameters are JSON: a sequence's default is None there, () in the spec.
    if spec_default == () and flow_default is None:
        return True
    return bool(spec_default == flow_default)


@pytest.mark.parametrize("flow", FLOWS)
def test_the_flow_parameters_are_the_spec_fields(flow: str) -> None:
    signature = inspect.signature(_flow(flow).fn)
    expected = parameters(flow)
    assert list(signature.parameters) == [p.name for p in expected]
    for param in expected:
        got = signature.parameters[param.name]
        if param.required:
            assert got.default is inspect.Parameter.empty, param.name
        else:
            assert _same(param.default, got.default), param.name


@pytest.mark.parametrize("flow", FLOWS)
def test_the_cli_options_are_the_spec_fields(flow: str) -> None:
    command = cli.get_command(click.Context(cli), flow)
    assert command is not None
    names = {p.name for p in command.params} - {"as_json", "verbose", "help"}
    assert names == {p.name for p in parameters(flow)}
    target = next(p for p in command.params if p.name == "target")
    assert isinstance(target.type, click.Choice)
    assert tuple(target.type.choices) == provider_names()


def test_a_migration_adopts_by_the_targets_keys() -> None:
    from connectors.providers import verifone

    spec = RunSpec.from_parameters(MIGRATE, {"extract": ["a.csv"], "target": "verifone"})
    assert spec.adopt_by == verifone.ADOPT_BY
    assert spec.extract == ("a.csv",)
    sumup = RunSpec.from_parameters(MIGRATE, {"extract": ["a.csv"], "target": "sumup"})
    assert sumup.adopt_by == ()
    synced = RunSpec.from_parameters(SYNC, {"extract": ["a.csv"], "target": "verifone"})
    assert synced.adopt_by == () and synced.instruments == () and synced.mode == "upsert"


def test_the_deployments_pass_only_flow_parameters_and_registered_targets() -> None:
    document = yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))
    flows = {
        "pipelines/flows/sync.py:sync_flow": SYNC,
        "pipelines/flows/migrate.py:migrate_flow": MIGRATE,
    }
    checked = 0
    for deployment in document["deployments"]:
        flow = flows.get(deployment["entrypoint"])
        if flow is None:
            continue
        given = deployment.get("parameters", {})
        assert set(given) <= {p.name for p in parameters(flow)}, deployment["name"]
        assert given["target"] in provider_names(), deployment["name"]
        checked += 1
    assert checked >= 3


def test_the_nightly_deployments_read_a_landing_folder() -> None:
    document = yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))
    nightly = [d for d in document["deployments"] if d["name"].startswith("nightly-sync-")]
    assert nightly and all(d["parameters"].get("landing") is True for d in nightly)
    assert all(d["parameters"]["mode"] == "mirror" for d in nightly)
