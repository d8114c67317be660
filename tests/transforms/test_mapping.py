from __future__ import annotations

import hashlib
import json

import pytest

from connectors.providers.sumup import customer_id as sumup_customer_id
from tests.transforms.conftest import ENTITY, extract, person
from transforms.canonical import content_text
from transforms.mapping import (
    CONTENT_CODES,
    MAPPED_SCHEMA,
    content_hash,
    content_key,
    map_rows,
    payload_from_remote,
)
from transforms.normalise import normalise
from transforms.validate import validate


def _mapped(target: str, **fields: str | None) -> dict[str, str | None]:
    valid = validate(normalise(extract([person("CRM-1", **fields)])), target).valid
    assert valid.height == 1
    return map_rows(valid, target, constants={"entity_id": ENTITY}).row(0, named=True)


FULL = {
    "title": "Dr",
    "first_name": "Zoë",
    "middle_name": "A.",
    "last_name": "Müller",
    "company_name": "Müller & Söhne KG",
    "company_registration_number": "HRA 1",
    "email": "Zoe@Example.com",
    "phone": "+49 30 1",
    "work_phone": "+49 30 2",
    "birth_date": "1990-01-31",
    "tax_id": "123456789",
    "language": "de",
    "billing_address_1": "Hauptstraße 1",
    "billing_address_2": "Hof",
    "billing_address_3": "3. OG",
    "billing_city": "Berlin",
    "billing_state": "BE",
    "billing_postal_code": "01099",
    "billing_country_code": "de",
    "billing_phone": "+49 30 3",
    "shipping_first_name": "Max",
    "shipping_last_name": "Muster",
    "shipping_address_1": "Lager 2",
    "shipping_city": "Potsdam",
    "shipping_postal_code": "14467",
    "shipping_country_code": "DE",
    "shipping_phone": "+49 331 4",
}


def test_verifone_customer_request() -> None:
    row = _mapped("verifone", **FULL)
    assert row["remote_id"] is None  # Verifone assigns the id
    assert json.loads(row["payload"]) == {
        "entity_id": ENTITY,
        "title": "Dr",
        "company_name": "Müller & Söhne KG",
        "company_registration_number": "HRA 1",
        "email_address": "zoe@example.com",
        "phone_number": "+49 30 1",
        "work_phone": "+49 30 2",
        "language": "de",
        "tax": {"identifier": "123456789"},
        "billing": {
            "first_name": "Zoë",
            "middle_name": "A.",
            "last_name": "Müller",
            "address_1": "Hauptstraße 1",
            "address_2": "Hof",
            "address_3": "3. OG",
            "city": "Berlin",
            "state": "BE",
            "postal_code": "01099",
            "country_code": "DE",
            "phone": "+49 30 3",
        },
        "shipping": {
            "first_name": "Max",
            "last_name": "Muster",
            "address_1": "Lager 2",
            "city": "Potsdam",
            "postal_code": "14467",
            "country_code": "DE",
            "phone": "+49 331 4",
        },
    }


def test_sumup_customer() -> None:
    row = _mapped("sumup", **FULL)
    customer_id = sumup_customer_id("CRM-1")
    assert row["remote_id"] == customer_id
    assert json.loads(row["payload"]) == {
        "customer_id": customer_id,
        "personal_details": {
            "first_name": "Zoë",
            "last_name": "Müller",
            "email": "zoe@example.com",
            "phone": "+49 30 1",
            "birth_date": "1990-01-31",
            "tax_id": "123456789",
            "address": {
                "line_1": "Hauptstraße 1",
                "line_2": "Hof",
                "city": "Berlin",
                "state": "BE",
                "postal_code": "01099",
                "country": "DE",
            },
        },
    }


def test_empty_objects_and_null_fields_are_left_out() -> None:
    row = _mapped("verifone", billing_city=None, billing_country_code=None)
    payload = json.loads(row["payload"])
    assert "shipping" not in payload and "tax" not in payload
    assert payload["billing"] == {"first_name": "Ada", "last_name": "Lovelace"}


@pytest.mark.parametrize("target", ["verifone", "sumup"])
def test_content_hash_is_sha256_of_the_content_text_and_reproducible(target: str) -> None:
    row = _mapped(target, **FULL)
    payload = json.loads(row["payload"])
    text = content_text((CONTENT_CODES[path], value) for path, value in _flatten(payload).items())
    assert row["content_hash"] == hashlib.sha256(text.encode()).hexdigest()
    assert content_hash(payload) == row["content_hash"]
    assert row["content_key"] == content_key(payload)
    assert _mapped(target, **FULL)["content_hash"] == row["content_hash"]
    assert (
        _mapped(target, **{**FULL, "billing_city": "Köln"})["content_hash"] != row["content_hash"]
    )


def _flatten(payload: dict[str, object], prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in payload.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_content_hash_of_a_documented_example() -> None:
    # docs/extract-format.md §4: other tools may recompute it.
    payload = {"entity_id": "e-1", "billing": {"first_name": "Zoë", "city": None}, "tax": {}}
    text = "001=e-1\x1f004=Zoë\x1f"
    assert content_hash(payload) == hashlib.sha256(text.encode()).hexdigest()
    assert content_hash(payload) == (
        "0f6e8ad62d04fe8d5f5b86ccd90577df1b3dab9dfc05f6fd3db778dddbe50100"
    )


def test_content_hash_tells_types_and_fields_apart() -> None:
    assert content_hash({"title": "5"}) != content_hash({"title": 5})
    assert content_hash({"title": "Dr"}) != content_hash({"language": "Dr"})
    assert content_hash({"title": ""}) != content_hash({})
    with pytest.raises(ValueError, match="not a field"):
        content_hash({"nickname": "x"})


def test_stored_hashes_are_frozen_codes() -> None:
    # Append only: changing a code changes every stored hash.
    assert CONTENT_CODES["entity_id"] == "001"
    assert CONTENT_CODES["personal_details.address.country"] == "044"
    assert len(set(CONTENT_CODES.values())) == len(CONTENT_CODES)


def test_sumup_customer_id_is_a_documented_stable_digest() -> None:
    # The example of docs/extract-format.md: a value other tools can rely on.
    assert sumup_customer_id("CRM-00001") == "1c7e589ea1c12472c5eb3e00cf17ae3d"
    assert (
        sumup_customer_id("ada@example.com") == hashlib.sha256(b"ada@example.com").hexdigest()[:32]
    )
    assert len({sumup_customer_id(f"K{i}") for i in range(1000)}) == 1000


def test_verifone_needs_an_entity_id() -> None:
    valid = validate(normalise(extract([person("C")])), "verifone").valid
    with pytest.raises(ValueError, match="entity_id"):
        map_rows(valid, "verifone")


def test_map_rows_of_nothing_is_an_empty_typed_frame() -> None:
    valid = validate(normalise(extract([])), "sumup").valid
    mapped = map_rows(valid, "sumup")
    assert mapped.height == 0
    assert mapped.schema == MAPPED_SCHEMA


@pytest.mark.parametrize("target", ["verifone", "sumup"])
def test_payload_from_remote_is_the_mapped_shape(target: str) -> None:
    row = _mapped(target, **FULL)
    sent = json.loads(row["payload"])
    if target == "verifone":
        remote = {
            **sent,
            "id": "5b1c3d4e-0000-4000-8000-000000000001",
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-02T00:00:00Z",
            "work_phone": None,
            "billing": {**sent["billing"], "address_3": ""},
            "unknown": {"x": 1},
        }
        expected = {
            **sent,
            "billing": {k: v for k, v in sent["billing"].items() if k != "address_3"},
        }
        expected.pop("work_phone")
    else:
        remote = {**sent, "personal_details": {**sent["personal_details"], "address": {}}}
        expected = {
            **sent,
            "personal_details": {
                k: v for k, v in sent["personal_details"].items() if k != "address"
            },
        }
    assert payload_from_remote(target, remote) == expected
    assert payload_from_remote(target, sent) == sent
    assert content_hash(payload_from_remote(target, sent)) == row["content_hash"]
