"""Migration into providers that already hold customers: adopt, never duplicate, never guess."""

from __future__ import annotations

import polars as pl
import pytest

from connectors.sandbox.server import SandboxServer
from tests.e2e.conftest import DAY1, migrate, state_file
from tests.e2e.expect import assert_in_step

pytestmark = pytest.mark.e2e


def _people() -> list[dict[str, str]]:
    rows = pl.read_csv(DAY1, infer_schema=False).filter(pl.col("email").is_not_null())
    return rows.to_dicts()


def test_verifone_migration_adopts_by_email(env: dict[str, str], sandbox: SandboxServer) -> None:
    people = _people()[:3]
    sandbox.admin.seed_verifone(
        [
            {
                "entity_id": "sandbox-entity",
                "email_address": p["email"].strip().lower(),
                "company_name": "Pre-existing Ltd",
                "work_phone": "+44 20 0000 0000",  # a field the extract does not set: kept
            }
            for p in people
        ]
    )
    summary = migrate(extract=[str(DAY1)], target="verifone")
    assert summary["exit_code"] == 0, summary
    assert summary["adopted"] == 3
    assert_in_step_allowing_kept_fields(sandbox)


def assert_in_step_allowing_kept_fields(sandbox: SandboxServer) -> None:
    customers = sandbox.admin.state()["verifone"]["customers"]
    emails = [c.get("email_address") for c in customers if c.get("email_address")]
    assert len(emails) == len(set(emails)), "a customer was duplicated"
    kept = [c for c in customers if c.get("work_phone") == "+44 20 0000 0000"]
    assert len(kept) == 3, "remote-only fields of adopted customers are kept"


def test_verifone_migration_never_guesses(env: dict[str, str], sandbox: SandboxServer) -> None:
    person = _people()[0]
    twin = {
        "entity_id": "sandbox-entity",
        "email_address": person["email"].strip().lower(),
        "company_name": "Twin",
    }
    sandbox.admin.seed_verifone([twin, dict(twin)])
    summary = migrate(extract=[str(DAY1)], target="verifone")
    assert summary["ambiguous"] == 1 and summary["exit_code"] == 1
    customers = sandbox.admin.state()["verifone"]["customers"]
    matching = [c for c in customers if c.get("email_address") == twin["email_address"]]
    assert len(matching) == 2, "nothing created or merged for an ambiguous match"


def test_sumup_migration_adopts_by_customer_id(env: dict[str, str], sandbox: SandboxServer) -> None:
    from connectors.providers.sumup import customer_id as sumup_customer_id

    ids = [sumup_customer_id(p["external_id"]) for p in _people()[:3]]
    sandbox.admin.seed_sumup(
        [{"customer_id": cid, "personal_details": {"first_name": "Old"}} for cid in ids]
    )
    summary = migrate(extract=[str(DAY1)], target="sumup")
    assert summary["exit_code"] == 0, summary
    assert summary["adopted"] == 3
    assert_in_step(sandbox, state_file(), "sumup", DAY1)
