"""The field tables carry every constraint the providers publish."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connectors.providers.sumup import FIELDS as SUMUP_FIELDS
from connectors.providers.verifone import FIELDS as VERIFONE_FIELDS
from transforms.countries import ISO_3166_ALPHA2
from transforms.schema import CANONICAL_COLUMNS

CONTRACTS = Path(__file__).resolve().parents[1] / "contracts"


def _schemas(name: str) -> dict[str, Any]:
    document = json.loads((CONTRACTS / name).read_text(encoding="utf-8"))
    schemas: dict[str, Any] = document["components"]["schemas"]
    return schemas


def _leaves(schemas: dict[str, Any], schema: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        if "$ref" in prop:
            ref = schemas[prop["$ref"].rsplit("/", 1)[1]]
            out.update(_leaves(schemas, ref, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = prop
    return out


@pytest.mark.parametrize(
    ("contract", "root", "fields", "own"),
    [
        ("verifone-customer-api.json", "CustomerRequest", VERIFONE_FIELDS, {"entity_id"}),
        ("sumup-customers-api.json", "Customer", SUMUP_FIELDS, {"customer_id"}),
    ],
)
def test_every_published_field_and_constraint_is_in_the_table(
    contract: str, root: str, fields: Any, own: set[str]
) -> None:
    schemas = _schemas(contract)
    published = _leaves(schemas, schemas[root])
    table = {f.path: f for f in fields}
    assert set(published) - own == set(table), "the table maps every request field, no other"
    for path, prop in published.items():
        if path in own:
            continue
        field = table[path]
        assert field.max_length == prop.get("maxLength"), path
        assert field.pattern == prop.get("pattern"), path
        assert field.column in CANONICAL_COLUMNS


def test_country_list_is_the_249_assigned_codes() -> None:
    assert len(ISO_3166_ALPHA2) == 249
    assert {"DE", "GB", "US", "AX", "SS", "XK"} & ISO_3166_ALPHA2 == {"DE", "GB", "US", "AX", "SS"}
    assert "UK" not in ISO_3166_ALPHA2
