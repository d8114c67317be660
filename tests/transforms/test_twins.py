"""Planning-time twin detection: creates a look-up could not tell apart."""

from __future__ import annotations

import orjson
import polars as pl

from transforms.diff import PLAN_SCHEMA
from transforms.mapping import content_key
from transforms.twins import find_twins

TWIN = {"entity_id": "e", "company_name": "Twin Handel GmbH"}
RICH = {"entity_id": "e", "company_name": "ACME GmbH", "email_address": "hq@acme.example.com"}
SPARSE = {"entity_id": "e", "company_name": "ACME GmbH"}


def _plan(*rows: tuple[str, str, dict[str, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "plan_id": f"p-{key}",
                "external_id": key,
                "action": action,
                "payload": orjson.dumps(payload).decode(),
                "content_key": content_key(payload),
            }
            for key, action, payload in rows
        ],
        schema={
            k: PLAN_SCHEMA[k]
            for k in ("plan_id", "external_id", "action", "payload", "content_key")
        },
    )


def test_equal_creates_form_one_group_named_by_its_lowest_key() -> None:
    plan = _plan(
        ("A-2", "create", TWIN),
        ("A-1", "create", TWIN),
        ("A-3", "create", TWIN),
        ("B", "create", RICH),
        ("C", "create", SPARSE),  # a subset of B's fields is not B's twin
        ("D", "update", TWIN),  # not a create: its customer is its own already
    )
    twins = find_twins(plan, target="verifone")
    assert dict(twins.group_of) == {"A-1": "A-1", "A-2": "A-1", "A-3": "A-1"}
    assert len(twins) == 3
    assert twins.group("B") is None and twins.group("D") is None


def test_a_plan_row_without_content_key_is_grouped_by_payload() -> None:
    plan = _plan(("A-1", "create", TWIN), ("A-2", "create", TWIN)).with_columns(
        pl.lit(None, pl.UInt64).alias("content_key")
    )
    assert find_twins(plan, target="verifone").group("A-2") == "A-1"


def test_sumup_creates_have_no_twins() -> None:
    plan = _plan(("A-1", "create", TWIN), ("A-2", "create", TWIN))
    assert len(find_twins(plan, target="sumup")) == 0
