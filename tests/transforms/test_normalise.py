from __future__ import annotations

import unicodedata

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from tests.transforms.conftest import extract
from transforms.normalise import normalise


def _one(**fields: str | None) -> dict[str, str | None]:
    return normalise(extract([fields])).collect().row(0, named=True)


def test_trims_composes_nulls_and_cases() -> None:
    row = _one(
        external_id="  C-1\t",
        first_name="Zoe\u0308",  # "Zoë" decomposed
        last_name="   ",
        email=" Ada@Example.COM ",
        billing_country_code=" gb",
        shipping_country_code="de",
        status=" Closed ",
        billing_postal_code="01099",
    )
    assert row["external_id"] == "C-1"
    assert row["first_name"] == "Zoë" and unicodedata.is_normalized("NFC", row["first_name"])
    assert row["last_name"] is None
    assert row["email"] == "ada@example.com"
    assert row["billing_country_code"] == "GB" and row["shipping_country_code"] == "DE"
    assert row["status"] == "closed"
    assert row["billing_postal_code"] == "01099"


def test_missing_status_means_active() -> None:
    assert _one(external_id="C-1")["status"] == "active"
    assert _one(external_id="C-1", status="")["status"] == "active"


def test_columns_outside_the_format_pass_through() -> None:
    frame = extract([{"external_id": "C-1"}]).with_columns(pl.lit(" x ").alias("extra"))
    assert normalise(frame).collect()["extra"].item() == " x "


# Unicode's White_Space property (what polars trims), not Python's str.isspace(), which also
# counts the information separators U+001C..U+001F.
WHITE_SPACE = "\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
WHITE_SPACE += "\u2028\u2029\u202f\u205f\u3000"


@given(st.text(max_size=30))
def test_normalising_twice_changes_nothing(value: str) -> None:
    once = normalise(extract([{"external_id": "k", "first_name": value}])).collect()
    twice = normalise(once.lazy()).collect()
    assert once.equals(twice)
    got = once["first_name"].item()
    expected = unicodedata.normalize("NFC", value.strip(WHITE_SPACE))
    assert got == (expected or None)


def test_text_below_u0300_is_nfc_as_it_stands() -> None:
    # What lets normalise skip NFC for such values: every character below U+0300 is NFC on
    # its own, is a starter, and composes with none of the others.
    below = [chr(code) for code in range(0x300)]
    assert all(unicodedata.is_normalized("NFC", c) and not unicodedata.combining(c) for c in below)
    assert all(unicodedata.is_normalized("NFC", a + b) for a in below for b in below)


def test_values_mixing_latin_and_other_scripts_are_composed() -> None:
    values = ["Müller", "Mu\u0308ller", "Ωmega\u0301", "Åström", "A\u030astro\u0308m", "Ḱ"]
    rows = normalise(
        extract([{"external_id": str(i), "last_name": v} for i, v in enumerate(values)])
    )
    got = rows.collect()["last_name"].to_list()
    assert got == [unicodedata.normalize("NFC", v) for v in values]
    assert got[1] == got[0] and got[4] == got[3]
