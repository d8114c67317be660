"""Request bodies checked exactly as published (pure functions, no HTTP)."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.sandbox.validation import (
    SumUpInvalid,
    VerifoneInvalid,
    validate_sumup_create,
    validate_sumup_update,
    validate_verifone,
)

BASE: dict[str, Any] = {"entity_id": "e", "company_name": "ACME"}


def verifone_error(body: Any) -> dict[str, str]:
    with pytest.raises(VerifoneInvalid) as caught:
        validate_verifone(body)
    return caught.value.details


@pytest.mark.parametrize(
    ("field", "limit"),
    [
        ("company_name", 100),
        ("company_registration_number", 24),
        ("billing.address_1", 40),
        ("billing.city", 28),
        ("billing.first_name", 22),
        ("billing.middle_name", 22),
        ("billing.last_name", 22),
        ("billing.postal_code", 10),
        ("billing.state", 35),
        ("shipping.address_3", 40),
        ("shipping.last_name", 22),
        ("shipping.postal_code", 10),
    ],
)
def test_every_max_length(field: str, limit: int) -> None:
    def body(value: str) -> dict[str, Any]:
        if "." in field:
            outer, inner = field.split(".")
            return {**BASE, outer: {inner: value}}
        return {**BASE, field: value}

    assert validate_verifone(body("x" * limit))
    assert "at most" in verifone_error(body("x" * (limit + 1)))[field]
    assert validate_verifone(body("é" * limit)), "lengths count characters, not bytes"


@pytest.mark.parametrize(
    ("field", "good", "bad"),
    [
        ("phone_number", "+44 (20) 7946-0000", "call me"),
        ("work_phone", "0049.30.123", "12#3"),
        ("billing.phone", "+1 555 0100", "+1 555 0100 x2"),
        ("shipping.phone", "555-0100", "five"),
        ("title", "Dr. Med", "Dr3"),
        ("tax.identifier", "123456789", "12345678a"),
        ("tax.identifier", "1", "1234567890"),
        ("email_address", "first.last+tag@example.co.uk", "not-an-email"),
        ("email_address", "a@b.io", "a@b"),
        ("title", "Mr", "Mr\n1"),
    ],
)
def test_patterns_and_formats(field: str, good: str, bad: str) -> None:
    def body(value: str) -> dict[str, Any]:
        if "." in field and field != "email_address":
            outer, inner = field.split(".")
            return {**BASE, outer: {inner: value}}
        return {**BASE, field: value}

    assert validate_verifone(body(good))
    assert field in verifone_error(body(bad))


def test_tax_pattern_is_anchored_at_the_very_end() -> None:
    assert "tax.identifier" in verifone_error({**BASE, "tax": {"identifier": "123\n"}})


def test_entity_id_is_required() -> None:
    assert verifone_error({"company_name": "ACME"}) == {"entity_id": "is required"}
    assert "entity_id" in verifone_error({"entity_id": " ", "company_name": "ACME"})


def test_company_name_or_billing_names_rule() -> None:
    assert validate_verifone({"entity_id": "e", "billing": {"first_name": "A", "last_name": "B"}})
    for body in (
        {"entity_id": "e"},
        {"entity_id": "e", "billing": {"first_name": "A"}},
        {"entity_id": "e", "company_name": "  ", "billing": {"last_name": "B"}},
    ):
        assert "company_name" in verifone_error(body)


def test_backslash_is_disallowed_everywhere() -> None:
    assert "company_name" in verifone_error({**BASE, "company_name": "AC\\ME"})
    assert "billing.city" in verifone_error({**BASE, "billing": {"city": "a\\b"}})


def test_types_and_nulls() -> None:
    assert verifone_error([]) == {"body": "must be a JSON object (CustomerRequest)"}
    assert verifone_error({**BASE, "billing": "x"}) == {"billing": "must be an object"}
    assert verifone_error({**BASE, "language": 5}) == {"language": "must be a string"}
    assert verifone_error({**BASE, "title": None}) == {"title": "must be a string"}


def test_all_problems_are_reported_at_once() -> None:
    details = verifone_error({"title": "9", "tax": {"identifier": "x"}})
    assert set(details) == {"title", "tax.identifier", "entity_id"}


def test_unknown_fields_are_dropped_and_order_is_canonical() -> None:
    clean = validate_verifone(
        {"tax": {"identifier": "1", "x": 1}, "company_name": "A", "entity_id": "e", "extra": 1}
    )
    assert clean == {"entity_id": "e", "company_name": "A", "tax": {"identifier": "1"}}
    assert list(clean) == ["entity_id", "company_name", "tax"]


def sumup_param(call: Any, body: Any) -> str:
    with pytest.raises(SumUpInvalid) as caught:
        call(body)
    return caught.value.param


def test_sumup_create() -> None:
    assert validate_sumup_create({"customer_id": "c"}) == ("c", None)
    details = {"first_name": "A", "birth_date": "1993-12-31", "address": {"city": "B", "x": 1}}
    assert validate_sumup_create({"customer_id": "c", "personal_details": details}) == (
        "c",
        {"first_name": "A", "birth_date": "1993-12-31", "address": {"city": "B"}},
    )
    assert sumup_param(validate_sumup_create, {}) == "customer_id"
    assert sumup_param(validate_sumup_create, {"customer_id": ""}) == "customer_id"
    assert sumup_param(validate_sumup_create, {"customer_id": 5}) == "customer_id"
    assert sumup_param(validate_sumup_create, []) == "body"


@pytest.mark.parametrize(
    ("details", "param"),
    [
        ({"birth_date": "1993-02-30"}, "personal_details.birth_date"),
        ({"birth_date": "31.12.1993"}, "personal_details.birth_date"),
        ({"birth_date": "19931231"}, "personal_details.birth_date"),
        ({"tax_id": "x" * 256}, "personal_details.tax_id"),
        ({"email": 1}, "personal_details.email"),
        ({"first_name": None}, "personal_details.first_name"),
        ({"address": "x"}, "personal_details.address"),
        ({"address": {"state": None}}, "personal_details.address.state"),
    ],
)
def test_sumup_personal_details(details: dict[str, Any], param: str) -> None:
    body = {"customer_id": "c", "personal_details": details}
    assert sumup_param(validate_sumup_create, body) == param
    assert sumup_param(validate_sumup_update, {"personal_details": details}) == param


def test_sumup_update_needs_personal_details() -> None:
    assert sumup_param(validate_sumup_update, {}) == "personal_details"
    assert sumup_param(validate_sumup_update, {"personal_details": None}) == "personal_details"
    assert validate_sumup_update({"personal_details": {"tax_id": "x" * 255}})
