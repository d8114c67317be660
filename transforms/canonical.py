"""Canonical JSON and stable hashes, in Python for one payload and vectorised for a frame.

The canonical form of a payload is its JSON with keys sorted at every level, no whitespace,
UTF-8 (not ``\\u`` escapes) for non-ASCII, and null members and empty objects omitted. The
polars builder (:func:`json_object`) produces byte-for-byte what :func:`canonical_json` gives
for the same payload (a property test checks it), so a hash stored by one run compares equal
to a hash computed by the next however it was built.

Hashes are MD5 / SHA-256 hex digests of the UTF-8 bytes: stable across library versions,
unlike polars' and DuckDB's ``hash()``. Vectorised digests run in DuckDB over Arrow.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from typing import Any, Literal, TypeAlias

import duckdb
import polars as pl

Tree: TypeAlias = Mapping[str, "pl.Expr | Tree"]
"""A JSON object to build: each key maps to a string expression or to a nested object."""

_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}
for _code in range(0x20):
    _ESCAPES.setdefault(chr(_code), f"\\u{_code:04x}")
_NEEDS_ESCAPE = list(_ESCAPES)
_ESCAPED = [_ESCAPES[c] for c in _NEEDS_ESCAPE]


def prune(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Drop null members and empty objects, recursively."""
    out: dict[str, Any] = {}
    for key, value in payload.items():
        if isinstance(value, Mapping):
            value = prune(value)
            if not value:
                continue
        elif value is None:
            continue
        out[key] = value
    return out


def canonical_json(payload: Mapping[str, Any]) -> str:
    """The canonical JSON text of ``payload`` (see the module docstring)."""
    return json.dumps(prune(payload), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def md5_text(text: str) -> str:
    """MD5 hex digest of ``text``'s UTF-8 bytes."""
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def sha256_text(text: str) -> str:
    """SHA-256 hex digest of ``text``'s UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _escape_batch(values: pl.Series) -> pl.Series:
    # Most columns of a real extract hold no quote, backslash or control character: check the
    # whole batch first and skip the (5x dearer) replacement when nothing needs it.
    if values.str.contains_any(_NEEDS_ESCAPE).any():
        return values.str.replace_many(_NEEDS_ESCAPE, _ESCAPED)
    return values


def json_string(value: pl.Expr) -> pl.Expr:
    """A JSON string literal for each (non-null) value; null stays null."""
    escaped = value.map_batches(_escape_batch, return_dtype=pl.String, is_elementwise=True)
    return pl.lit('"') + escaped + pl.lit('"')


def json_object(tree: Tree) -> pl.Expr:
    """Canonical JSON text of the object ``tree`` describes, built with polars expressions.

    Null members are left out; an object whose members are all null is null itself (and so is
    left out of its parent).
    """
    members = []
    for key in sorted(tree):
        node = tree[key]
        value = json_object(node) if isinstance(node, Mapping) else json_string(node)
        members.append(pl.lit(json.dumps(key, ensure_ascii=False) + ":") + value)
    body = pl.concat_str(members, separator=",", ignore_nulls=True)
    return pl.when(body != "").then(pl.lit("{") + body + pl.lit("}"))


_lock = threading.Lock()
_con: duckdb.DuckDBPyConnection | None = None


def digest(values: pl.Series, algorithm: Literal["md5", "sha256"]) -> pl.Series:
    """Hex digest of every value's UTF-8 bytes (null stays null), computed in DuckDB."""
    global _con
    frame = pl.DataFrame({"v": values.cast(pl.String)}).to_arrow()
    with _lock:
        if _con is None:
            _con = duckdb.connect()
        table = _con.from_arrow(frame).select(f"{algorithm}(v) AS h").to_arrow_table()
    return pl.Series(values.name, table.column("h"), dtype=pl.String)
