"""A tenant's child run: its RunSpec, its settings, its credentials read where they point."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.secret import Secret
from pipelines.settings import SettingsError, load_settings
from pipelines.tenant_run import (
    resolve_credentials,
    tenant_publisher,
    tenant_settings,
    tenant_spec,
)
from pipelines.tenants import TenantsError, parse_tenants

FILE = Path("/platform/tenants.toml")
TEXT = """
state_dir = "/var/custsync"

[defaults]
rate_limit = 4

[defaults.sumup]
client_id = "cc_platform"
client_secret = "PLATFORM_SUMUP_CLIENT_SECRET"

[[tenants]]
id = "acme"
extract = ["landing/acme/*.csv"]
mode = "mirror"
[tenants.sumup]
refresh_token = "block:acme-sumup-refresh"
[tenants.verifone]
token = "ACME_VERIFONE_TOKEN"
entity_id = "acme-entity"

[[tenants]]
id = "bolt"
extract = "/data/bolt.parquet"
rate_limit = 0
[tenants.sumup]
api_key = "BOLT_SUMUP_API_KEY"
"""
TENANTS = parse_tenants(TEXT, FILE)
WORKER_ENV = {  # what a worker's environment might hold besides the tenants' references
    "CUSTSYNC_SUMUP_API_KEY": "sup_sk_platform_default",
    "CUSTSYNC_VERIFONE_TOKEN": "platform-token",
    "CUSTSYNC_VERIFONE_ENTITY_ID": "platform-entity",
    "CUSTSYNC_CONFIG": "/nonexistent/custsync.toml",
}


def test_the_spec_is_the_tenants_extract_mode_rate_and_own_state_file() -> None:
    spec = tenant_spec(TENANTS, "acme", "verifone", dry_run=True)
    assert spec.extract == ("/platform/landing/acme/*.csv",)
    assert (spec.target, spec.mode, spec.dry_run, spec.rate_limit) == (
        "verifone",
        "mirror",
        True,
        4.0,
    )
    assert spec.state == "/var/custsync/acme-verifone.duckdb"
    bolt = tenant_spec(TENANTS, "bolt", "sumup")
    assert (bolt.extract, bolt.mode, bolt.rate_limit) == (("/data/bolt.parquet",), "upsert", 0.0)
    assert bolt.state == "/var/custsync/bolt-sumup.duckdb"


def test_an_unknown_tenant_or_target_is_named() -> None:
    with pytest.raises(TenantsError, match="tenant nobody: no such tenant"):
        tenant_spec(TENANTS, "nobody", "sumup")
    with pytest.raises(TenantsError, match="tenant bolt: verifone: has no table"):
        tenant_spec(TENANTS, "bolt", "verifone")


def test_the_workers_own_credentials_never_serve_a_tenant() -> None:
    base = load_settings(env=WORKER_ENV)
    settings = tenant_settings(base, TENANTS, "acme", "verifone")
    verifone = settings.provider("verifone")
    assert verifone.text("entity_id") == "acme-entity"
    assert verifone.secret("token") is None and verifone.secret("api_key") is None
    # the other target is untouched
    assert settings.provider("sumup").secret("api_key") == Secret("sup_sk_platform_default")


def _resolve(tenant: str, target: str, env: dict[str, str], blocks: dict[str, str]) -> object:
    async def read_block(name: str) -> Secret | None:
        return Secret(blocks[name]) if name in blocks else None

    base = tenant_settings(load_settings(env=WORKER_ENV), TENANTS, tenant, target)
    return asyncio.run(
        resolve_credentials(base, TENANTS, tenant, target, env=env, read_block=read_block)
    )


secret_values = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1)


@given(refresh=secret_values, client_secret=secret_values)
def test_credentials_are_read_from_the_referenced_variable_and_block(
    refresh: str, client_secret: str
) -> None:
    settings = _resolve(
        "acme",
        "sumup",
        {"PLATFORM_SUMUP_CLIENT_SECRET": client_secret},
        {"acme-sumup-refresh": refresh},
    )
    sumup = settings.provider("sumup")  # type: ignore[attr-defined]
    assert sumup.secret("refresh_token") == Secret(refresh)
    assert sumup.secret("client_secret") == Secret(client_secret)
    assert sumup.text("client_id") == "cc_platform"
    assert sumup.secret("api_key") is None  # not the worker's CUSTSYNC_SUMUP_API_KEY


def test_a_missing_reference_is_named_and_no_value_is_shown() -> None:
    env = {"PLATFORM_SUMUP_CLIENT_SECRET": "cc_sk_shown_nowhere"}
    with pytest.raises(SettingsError) as missing:
        _resolve("acme", "sumup", env, {})
    message = str(missing.value)
    assert message == (
        "tenant acme: sumup.refresh_token: the Prefect Secret block acme-sumup-refresh "
        "is unset or empty"
    )
    with pytest.raises(SettingsError, match="environment variable BOLT_SUMUP_API_KEY"):
        _resolve("bolt", "sumup", {"BOLT_SUMUP_API_KEY": ""}, {})


def test_an_inherited_reference_may_be_unset_for_a_tenant_that_needs_none() -> None:
    settings = _resolve("bolt", "sumup", {"BOLT_SUMUP_API_KEY": "sup_sk_bolt"}, {})
    sumup = settings.provider("sumup")  # type: ignore[attr-defined]
    assert sumup.secret("api_key") == Secret("sup_sk_bolt")
    assert sumup.secret("client_secret") is None


LANDING = """
audit_dir = "/shared/audit"
[[tenants]]
id = "cargo"
landing = "landing/cargo"
processed = "/archive/cargo"
[tenants.sumup]
api_key = "CARGO_SUMUP_API_KEY"

[[tenants]]
id = "dock"
landing = "landing/dock/customers-*.parquet"
[tenants.sumup]
api_key = "DOCK_SUMUP_API_KEY"
"""


def test_a_landing_folder_tenant_runs_by_the_landing_rules() -> None:
    tenants = parse_tenants(LANDING, FILE)
    cargo = tenant_spec(tenants, "cargo", "sumup")
    assert (cargo.extract, cargo.landing, cargo.processed) == (
        ("/platform/landing/cargo/*",),
        True,
        "/archive/cargo",
    )
    dock = tenant_spec(tenants, "dock", "sumup")
    assert (dock.extract, dock.landing, dock.processed) == (
        ("/platform/landing/dock/customers-*.parquet",),
        True,
        None,  # processed/ beside the landing folder (pipelines.landing.processed_folder)
    )
    plain = tenant_spec(TENANTS, "bolt", "sumup")
    assert (plain.landing, plain.processed) == (False, None)


def test_the_tenant_publishes_under_the_files_audit_folder() -> None:
    publisher = tenant_publisher(parse_tenants(LANDING, FILE), "dock", "sumup")
    assert (publisher.audit_dir, publisher.tenant, publisher.target) == (
        Path("/shared/audit"),
        "dock",
        "sumup",
    )
    beside = tenant_publisher(TENANTS, "bolt", "sumup")
    assert beside.audit_dir == Path("/var/audit")  # beside state_dir = /var/custsync


@pytest.mark.parametrize(
    ("name", "result"),
    [("Nothing new", "ok"), ("Completed", "ok"), ("Completed with rejects", "rejects")],
)
def test_a_night_with_nothing_new_counts_as_ok_in_the_fleet(
    tmp_path: Path, name: str, result: str
) -> None:
    from prefect.states import Completed

    from pipelines.flows.fleet import result_of

    tenants = parse_tenants(LANDING, tmp_path / "tenants.toml")
    run = SimpleNamespace(id="6f1c0000-0000-0000-0000-000000000000", state=Completed(name=name))
    # No state file to read the summary from (another machine's): the state's name decides.
    outcome = result_of(tenants, "cargo", "sumup", run, 1.0)  # type: ignore[arg-type]
    assert (outcome.result, outcome.failed) == (result, False)
