from __future__ import annotations

import hashlib
import json
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.canonical import canonical_json, digest, json_object, prune

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
