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
Algorithm = Literal["md5", "sha256"]
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


def _escaped(value: pl.Expr) -> pl.Expr:
    return value.map_batches(_escape_batch, return_dtype=pl.String, is_elementwise=True)


def json_string(value: pl.Expr) -> pl.Expr:
    """A JSON string literal for each (non-null) value; null stays null."""
    return pl.concat_str(pl.lit('"'), _escaped(value), pl.lit('"'))


def _leaves(tree: Tree) -> list[pl.Expr]:
    out: list[pl.Expr] = []
    for node in tree.values():
        out.extend(_leaves(node) if isinstance(node, Mapping) else [node])
    return out


def _members(tree: Tree) -> pl.Expr:
    """``"k":v,...`` of an object, without braces; null when every member is null."""
    members = []
    for key in sorted(tree):
        node = tree[key]
        name = json.dumps(key, ensure_ascii=False)
        if isinstance(node, Mapping):
            # Braces go into the member's own concatenation: one string built per member.
            member = pl.concat_str(pl.lit(name + ":{"), _members(node), pl.lit("}"))
        else:
            member = pl.concat_str(pl.lit(name + ':"'), _escaped(node), pl.lit('"'))
        members.append(member)
    body = pl.concat_str(members, separator=",", ignore_nulls=True)
    # Whether any leaf is set is asked of the leaves: testing the built text instead would
    # build it twice, or need replace(), which the streaming engine runs on whole columns.
    return pl.when(pl.any_horizontal(leaf.is_not_null() for leaf in _leaves(tree))).then(body)


def json_object(tree: Tree) -> pl.Expr:
    """Canonical JSON text of the object ``tree`` describes, built with polars expressions.

    Null members are left out; an object whose members are all null is null itself (and so is
    left out of its parent).
    """
    return pl.concat_str(pl.lit("{"), _members(tree), pl.lit("}"))


_local = threading.local()


def _connection() -> duckdb.DuckDBPyConnection:
    # One in-memory connection per thread, single-threaded: the streaming engine already
    # hashes batches on every core at once, and DuckDB releases the GIL while it works.
    con: duckdb.DuckDBPyConnection | None = getattr(_local, "con", None)
    if con is None:
        con = duckdb.connect(config={"threads": 1})
        _local.con = con
    return con


def digest(values: pl.Series, algorithm: Algorithm) -> pl.Series:
    """Hex digest of every value's UTF-8 bytes (null stays null), computed in DuckDB."""
    frame = pl.DataFrame({"v": values.cast(pl.String)}).to_arrow()
    table = _connection().from_arrow(frame).select(f"{algorithm}(v) AS h").to_arrow_table()
    return pl.Series(values.name, table.column("h"), dtype=pl.String)


def hex_digest(value: pl.Expr, algorithm: Algorithm) -> pl.Expr:
    """Expression form of :func:`digest` (elementwise, so it streams batch by batch)."""
    return value.map_batches(
        lambda batch: digest(batch, algorithm), return_dtype=pl.String, is_elementwise=True
    )
