from __future__ import annotations

import hashlib
import json
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.canonical import (
    canonical_json,
    content_text,
    content_text_expr,
    digest,
    json_object,
    key_digest,
    key_digest_text,
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
@given(
    st.lists(st.tuples(*(VALUES | st.sampled_from(["a\\x", "=:", "\\"]),) * 3), min_size=1),
    st.sampled_from(["", "\x1f", "\\\x1f"]),
)
def test_the_faster_builder_agrees_on_the_rows_it_is_vouched_for(
    rows: list[tuple[str | None, ...]], barred: str
) -> None:
    # "001" always present and no value holding a barred character: what validation vouches.
    rows = [("id", *row) for row in rows if not any(c in (v or "") for v in row for c in barred)]
    frame = pl.DataFrame(rows, schema=dict.fromkeys(CODES, pl.String), orient="row")
    members = {code: pl.col(code) for code in CODES}
    built = frame.select(content_text_expr(members, barred=barred, present="001").alias("t"))
    assert built["t"].to_list() == [content_text(zip(CODES, row, strict=True)) for row in rows]


def test_key_digest_is_xxh3_64() -> None:
    # Published test vectors of XXH3_64bits (seed 0): the stored keys outlive this library.
    assert key_digest_text("") == 0x2D06800538D394C2
    assert key_digest_text("abc") == 0x78AF5F94892F3950
    keys = pl.select(key_digest(pl.Series(["", "abc", None]))).to_series().to_list()
    assert keys == [0x2D06800538D394C2, 0x78AF5F94892F3950, None]


def test_content_text_format() -> None:
    members = [("010", "a\x1fb\\c"), ("002", None), ("001", "x"), ("003", 5)]
    assert content_text(members) == "001=x\x1f003:5\x1f010=a\\xb\\\\c\x1f"
