from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from tests.transforms.conftest import extract, person
from transforms.fields import MAX_FIELD_CHARS
from transforms.normalise import normalise
from transforms.schema import CANONICAL_COLUMNS
from transforms.validate import REJECTS_SCHEMA, mask, row_is_broken, validate


def _rejects(target: str, **fields: Any) -> set[tuple[str, str]]:
    result = validate(normalise(extract([person("C-1", **fields)])), target)
    return {(r["field"], r["rule"]) for r in result.rejects.iter_rows(named=True)}


PHONE_OK, PHONE_BAD = "+49 (30) 123-45.67", "+49 30 CALL-ME"

# (target, column, a value that passes, a value that fails, the rule it breaks)
CASES: list[tuple[str, str, str, str, str]] = [
    ("verifone", "title", "Dr. med", "Dr4", "pattern"),
    ("verifone", "title", "T" * 120, "T" * 121, "max_length"),
    ("verifone", "first_name", "F" * 22, "F" * 23, "max_length"),
    ("verifone", "middle_name", "M" * 22, "M" * 23, "max_length"),
    ("verifone", "last_name", "L" * 22, "L" * 23, "max_length"),
    ("verifone", "company_name", "C" * 100, "C" * 101, "max_length"),
    ("verifone", "company_registration_number", "R" * 24, "R" * 25, "max_length"),
    ("verifone", "email", "a" * 243 + "@example.com", "a" * 244 + "@example.com", "max_length"),
    ("verifone", "email", "ada.l+news@example.co.uk", "ada@example", "email"),
    ("verifone", "email", "o'brien@example.ie", "ada@@example.com", "email"),
    ("verifone", "phone", PHONE_OK, PHONE_BAD, "pattern"),
    ("verifone", "phone", "1" * 25, "1" * 26, "max_length"),
    ("verifone", "work_phone", PHONE_OK, PHONE_BAD, "pattern"),
    ("verifone", "work_phone", "2" * 25, "2" * 26, "max_length"),
    ("verifone", "tax_id", "123456789", "1234567890", "max_length"),
    ("verifone", "tax_id", "000123", "12-345", "pattern"),
    ("verifone", "billing_address_1", "A" * 40, "A" * 41, "max_length"),
    ("verifone", "billing_address_2", "A" * 40, "A" * 41, "max_length"),
    ("verifone", "billing_address_3", "A" * 40, "A" * 41, "max_length"),
    ("verifone", "billing_city", "C" * 28, "C" * 29, "max_length"),
    ("verifone", "billing_state", "S" * 35, "S" * 36, "max_length"),
    ("verifone", "billing_postal_code", "0" * 10, "0" * 11, "max_length"),
    ("verifone", "billing_country_code", "de", "XX", "country"),
    ("verifone", "billing_phone", PHONE_OK, PHONE_BAD, "pattern"),
    ("verifone", "billing_phone", "3" * 25, "3" * 26, "max_length"),
    ("verifone", "shipping_first_name", "F" * 22, "F" * 23, "max_length"),
    ("verifone", "shipping_middle_name", "M" * 22, "M" * 23, "max_length"),
    ("verifone", "shipping_last_name", "L" * 22, "L" * 23, "max_length"),
    ("verifone", "shipping_address_1", "A" * 40, "A" * 41, "max_length"),
    ("verifone", "shipping_address_2", "A" * 40, "A" * 41, "max_length"),
    ("verifone", "shipping_address_3", "A" * 40, "A" * 41, "max_length"),
    ("verifone", "shipping_city", "C" * 28, "C" * 29, "max_length"),
    ("verifone", "shipping_state", "S" * 35, "S" * 36, "max_length"),
    ("verifone", "shipping_postal_code", "0" * 10, "0" * 11, "max_length"),
    ("verifone", "shipping_country_code", "AX", "UK", "country"),
    ("verifone", "shipping_phone", PHONE_OK, PHONE_BAD, "pattern"),
    ("verifone", "shipping_phone", "4" * 25, "4" * 26, "max_length"),
    ("verifone", "first_name", "O'Brien-Smith", "Back\\slash", "forbidden_character"),
    ("verifone", "language", "de", "x" * (MAX_FIELD_CHARS + 1), "max_field_size"),
    ("verifone", "status", "closed", "deleted", "status"),
    ("sumup", "email", "zoe@example.de", "zoe at example.de", "email"),
    ("sumup", "birth_date", "1990-02-28", "1990-02-30", "date"),
    ("sumup", "birth_date", "2000-02-29", "28.02.1990", "date"),
    ("sumup", "birth_date", "1985-12-10", "1985-1-2", "date"),
    ("sumup", "tax_id", "4" * 255, "4" * 256, "max_length"),
    ("sumup", "billing_country_code", "BR", "Brazil", "country"),
    ("sumup", "first_name", "F" * MAX_FIELD_CHARS, "F" * (MAX_FIELD_CHARS + 1), "max_field_size"),
    ("sumup", "status", "active", "paused", "status"),
]


@pytest.mark.parametrize(("target", "column", "good", "bad", "rule"), CASES)
def test_each_rule_passes_and_fails(
    target: str, column: str, good: str, bad: str, rule: str
) -> None:
    assert (column, rule) not in _rejects(target, **{column: good})
    assert (column, rule) in _rejects(target, **{column: bad})


def test_a_valid_row_has_no_reject_on_either_target() -> None:
    assert _rejects("verifone") == set()
    assert _rejects("sumup") == set()


def test_the_target_decides_which_rules_apply() -> None:
    # SumUp publishes no name length and receives no title or shipping address.
    assert _rejects("sumup", first_name="F" * 23, title="Dr4", shipping_country_code="XX") == set()
    # Verifone receives no birth date.
    assert _rejects("verifone", birth_date="yesterday") == set()


@pytest.mark.parametrize(
    ("fields", "ok"),
    [
        ({"first_name": None, "last_name": None, "company_name": "Acme Ltd"}, True),
        ({"first_name": "Ada", "last_name": "Lovelace"}, True),
        ({"first_name": "Ada", "last_name": None}, False),
        ({"first_name": None, "last_name": "  "}, False),
    ],
)
def test_verifone_needs_company_or_both_names(fields: dict[str, Any], ok: bool) -> None:
    broken = ("company_name", "name_or_company") in _rejects("verifone", **fields)
    assert broken is not ok


def test_null_or_duplicated_keys_reject_every_row_with_that_key() -> None:
    rows = [
        person("A"),
        person("DUP", first_name="First"),
        person("B"),
        person("DUP", first_name="Second"),
        person(None),
        person("  "),
    ]
    result = validate(normalise(extract(rows)), "verifone")
    assert result.valid["external_id"].to_list() == ["A", "B"]
    assert result.rejects.schema == REJECTS_SCHEMA
    keyed = result.rejects.filter(pl.col("rule") == "unique")
    # one reject for each row with the key: each names its row
    assert keyed.select("external_id", "field", "source_row").rows() == [
        ("DUP", "external_id", 2),
        ("DUP", "external_id", 4),
    ]
    unkeyed = result.rejects.filter(pl.col("external_id").is_null())
    assert unkeyed["rule"].to_list() == ["required", "required"]
    assert unkeyed["source_row"].to_list() == [5, 6]


def test_one_reject_per_key_field_and_rule_and_a_unique_reject_per_row() -> None:
    rows = [person("DUP", email="bad"), person("DUP", email="worse")]
    rejects = validate(normalise(extract(rows)), "sumup").rejects
    assert rejects.select("field", "rule", "source_row").rows() == [
        ("email", "email", 1),
        ("external_id", "unique", 1),
        ("external_id", "unique", 2),
    ]


def test_valid_frame_has_exactly_the_canonical_columns_in_order() -> None:
    rows = [person(f"K{i}") for i in range(5)]
    valid = validate(normalise(extract(rows)), "verifone").valid
    assert valid.columns == list(CANONICAL_COLUMNS)
    assert valid["external_id"].to_list() == [f"K{i}" for i in range(5)]


def test_rejected_values_are_masked() -> None:
    rejects = validate(
        normalise(extract([person("C-1", email="very.secret.person@@example.com")])), "sumup"
    ).rejects
    value = rejects.filter(pl.col("field") == "email")["value"].item()
    assert value == "ver***"
    assert "secret" not in rejects.write_csv()


@pytest.mark.parametrize(
    ("value", "masked"), [("ab", "a***"), ("x", "***"), ("Guðrún Björk", "Guð***"), (None, None)]
)
def test_mask_keeps_a_short_prefix(value: str | None, masked: str | None) -> None:
    frame = pl.DataFrame({"v": [value]}, schema={"v": pl.String})
    assert frame.select(mask(pl.col("v")))["v"].item() == masked


@pytest.mark.parametrize("target", ["verifone", "sumup"])
def test_row_is_broken_flags_exactly_the_rows_validate_rejects(target: str) -> None:
    long = "x" * (MAX_FIELD_CHARS + 1)
    rows = [
        person("ok"),
        person("long-language", language=long),  # only custsync's own limit applies
        person("long-name", first_name="X" * 23),  # Verifone's 22, not SumUp's
        person("long-key" + long),
        person("bad-mail", email="nope"),
        person("no-city", billing_city=None),
        person("odd-status", status="odd"),
    ]
    frame = normalise(extract(rows))
    flagged = frame.filter(row_is_broken(target)).collect().get_column("external_id")
    rejected = validate(frame, target).rejects.get_column("external_id").unique()
    assert sorted(flagged) == sorted(rejected)
    assert "ok" not in flagged and "no-city" not in flagged
