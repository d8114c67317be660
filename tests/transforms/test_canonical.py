from __future__ import annotations

import hashlib
import json
from typing import Any

import polars as pl
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.canonical import (
    canonical_json,
    content_key,
    content_key_expr,
    content_text,
    content_text_expr,
    digest,
    json_object,
    prune,
)

# Every character class JSON escaping cares about: quotes, backslashes, control characters,
# non-ASCII (kept as UTF-8), line separators that JavaScript chokes on.
TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12
) | st.sampled_from(['"', "\\", "\n", "\x00", "\x1f", "\u2028", "é", "Zoë", "🙂", ""])
VALUES = st.none() | TEXT
KEYS = ("a", "b", "z_key", "Name", "é")

ROWS = st.fixed_dictionaries(
    {
        "top": VALUES,
        "other": VALUES,
        "n1": VALUES,
        "n2": VALUES,
        "deep": VALUES,
    }
)


def _tree() -> dict[str, Any]:
    return {
        "top": pl.col("top"),
        "Other": pl.col("other"),
        "nested": {"b": pl.col("n1"), "a": pl.col("n2"), "deeper": {"x": pl.col("deep")}},
    }


def _payload(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "top": row["top"],
        "Other": row["other"],
        "nested": {"b": row["n1"], "a": row["n2"], "deeper": {"x": row["deep"]}},
    }


@settings(max_examples=200)
@given(st.lists(ROWS, min_size=1, max_size=8))
def test_polars_builds_exactly_the_canonical_json(rows: list[dict[str, Any]]) -> None:
    frame = pl.DataFrame(rows, schema=dict.fromkeys(rows[0], pl.String))
    built = frame.select(json_object(_tree()).alias("p"))["p"].to_list()
    for row, text in zip(rows, built, strict=True):
        expected = canonical_json(_payload(row))
        if expected == "{}":
            assert text is None  # an object with nothing in it is left out entirely
        else:
            assert text == expected
            assert json.loads(text) == prune(_payload(row))


def test_canonical_json_sorts_keys_and_drops_nulls_and_empty_objects() -> None:
    payload = {"b": "2", "a": None, "c": {"y": None}, "d": {"z": "é", "x": "1"}}
    assert canonical_json(payload) == '{"b":"2","d":{"x":"1","z":"é"}}'


@given(st.lists(st.none() | st.text(max_size=40), max_size=20))
def test_digests_match_hashlib(values: list[str | None]) -> None:
    series = pl.Series("v", values, dtype=pl.String)
    for algorithm in ("md5", "sha256"):
        expected = [
            None if v is None else hashlib.new(algorithm, v.encode("utf-8")).hexdigest()
            for v in values
        ]
        assert digest(series, algorithm).to_list() == expected  # type: ignore[arg-type]


CODES = ("001", "002", "010", "100")


@settings(max_examples=200)
@given(st.lists(st.tuples(*(VALUES | st.sampled_from(["\x1f", "a\\x", "=:"]),) * 4), min_size=1))
def test_polars_builds_exactly_the_content_text(rows: list[tuple[str | None, ...]]) -> None:
    frame = pl.DataFrame(rows, schema=dict.fromkeys(CODES, pl.String), orient="row")
    members = {code: pl.col(code) for code in reversed(CODES)}  # order is the builder's job
    built = frame.select(content_text_expr(members).alias("t"))["t"].to_list()
    texts = [content_text(zip(CODES, row, strict=True)) for row in rows]
    assert built == texts
    # Injective: different rows never share a text.
    assert len(set(texts)) == len(set(rows))


@settings(max_examples=200)
@given(st.lists(st.tuples(*(VALUES | st.sampled_from(["\x1f", "a\\x", "=:"]),) * 3), min_size=1))
def test_the_cheaper_builder_agrees_when_the_first_member_is_present(
    rows: list[tuple[str | None, ...]],
) -> None:
    rows = [("id", *row) for row in rows]
    frame = pl.DataFrame(rows, schema=dict.fromkeys(CODES, pl.String), orient="row")
    members = {code: pl.col(code) for code in CODES}
    built = frame.select(content_text_expr(members, present="001").alias("t"))
    assert built["t"].to_list() == [content_text(zip(CODES, row, strict=True)) for row in rows]


@settings(max_examples=200)
@given(st.lists(st.tuples(*(VALUES,) * 4), min_size=1))
def test_polars_computes_exactly_the_content_key(rows: list[tuple[str | None, ...]]) -> None:
    frame = pl.DataFrame(rows, schema=dict.fromkeys(CODES, pl.String), orient="row")
    members = {code: pl.col(code) for code in reversed(CODES)}  # order is the builder's job
    built = frame.select(content_key_expr(members).alias("k"))
    assert built.schema["k"] == pl.UInt64
    assert built["k"].to_list() == [content_key(zip(CODES, row, strict=True)) for row in rows]


def test_content_key_is_a_sum_of_seeded_xxh3() -> None:
    # Published XXH3_64bits test vectors (seed 0, so code "000"): the stored keys outlive
    # both libraries that compute them.
    assert content_key([("000", "")]) == 0x2D06800538D394C2
    assert content_key([("000", "abc")]) == 0x78AF5F94892F3950
    a, b = xxhash.xxh3_64_intdigest(b"a", seed=1), xxhash.xxh3_64_intdigest(b"b", seed=2)
    assert content_key([("001", "a"), ("002", "b")]) == (a + b) % 2**64
    assert content_key([("001", "a"), ("002", None)]) == content_key([("001", "a")]) == a
    assert content_key([]) == 0


def test_content_key_tells_fields_values_and_types_apart() -> None:
    assert content_key([("001", "a"), ("002", "b")]) != content_key([("001", "b"), ("002", "a")])
    assert content_key([("003", "5")]) != content_key([("003", 5)])
    assert content_key([("003", "")]) != content_key([])


def test_content_text_format() -> None:
    members = [("010", "a\x1fb\\c"), ("002", None), ("001", "x"), ("003", 5)]
    assert content_text(members) == "001=x\x1f003:5\x1f010=a\\xb\\\\c\x1f"
