"""Canonical JSON, content texts and stable hashes, in Python for one payload and vectorised.

The canonical form of a payload is its JSON with keys sorted at every level, no whitespace,
UTF-8 (not ``\\u`` escapes) for non-ASCII, and null members and empty objects omitted. The
polars builder (:func:`json_object`) produces byte-for-byte what :func:`canonical_json` gives
for the same payload (a property test checks it).

A payload's *content text* (:func:`content_text`, vectorised :func:`content_text_expr`) is
what its content hash is computed over: its leaf values, each under a short code, in code
order. It is cheaper to build than the JSON (no key names, no nesting, one escape rule), so
the JSON is built only for rows that are sent. Both builders agree byte for byte (tested).

A payload's *content key* (:func:`content_key`, vectorised :func:`content_key_expr`) is what
a diff compares: the sum, modulo 2**64, of the 64-bit XXH3 of each leaf value seeded with its
code. Hashing each column where it lies costs an eighth of building the content text.

Hashes are MD5 / SHA-256 hex digests of the UTF-8 bytes, and XXH3-64: published algorithms,
stable across library versions, unlike polars' and DuckDB's ``hash()``. Vectorised digests run
in the ``polars-hash`` plugin; :func:`content_key` uses the ``xxhash`` library (the same
algorithm, checked against each other by a test).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeAlias

import polars as pl
import polars_hash as plh
import xxhash

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


def digest(values: pl.Series, algorithm: Algorithm) -> pl.Series:
    """Hex digest of every value's UTF-8 bytes (null stays null)."""
    return (
        pl.select(hex_digest(pl.lit(values.cast(pl.String)), algorithm))
        .to_series()
        .alias(values.name)
    )


def hex_digest(value: pl.Expr, algorithm: Algorithm) -> pl.Expr:
    """Expression form of :func:`digest`: native, elementwise, streams batch by batch.

    Computed by the ``polars-hash`` plugin in Rust on every core, without the GIL (a DuckDB
    round trip per batch took twice the time and kept a connection alive until exit).
    """
    if algorithm == "md5":
        return plh.NonCryptographicHashingNameSpace(value).md5()
    return plh.CryptographicHashingNameSpace(value).sha2_256()


# -- the content text a content hash is computed over ------------------------------------------

CONTENT_SEPARATOR = "\x1f"
"""Ends every member of a content text (ASCII unit separator)."""

_CONTENT_ESCAPES = {"\\": "\\\\", CONTENT_SEPARATOR: "\\x"}
_CONTENT_TABLE = str.maketrans(_CONTENT_ESCAPES)
_CONTENT_NEEDS_ESCAPE = list(_CONTENT_ESCAPES)
_CONTENT_ESCAPED = [_CONTENT_ESCAPES[c] for c in _CONTENT_NEEDS_ESCAPE]


def content_text(members: Iterable[tuple[str, Any]]) -> str:
    """The content text of ``(code, value)`` members (see ``docs/extract-format.md`` §4).

    Members with a null value are left out; the rest are ordered by code and each written as
    ``code=value<US>`` for a string (``\\`` and ``<US>`` in the value escaped as ``\\\\`` and
    ``\\x``) or ``code:json<US>`` for any other JSON value. The encoding is injective: two
    texts are equal only for equal members.
    """
    out = []
    for code, value in sorted(members, key=lambda member: member[0]):
        if value is None:
            continue
        if isinstance(value, str):
            out.append(f"{code}={value.translate(_CONTENT_TABLE)}{CONTENT_SEPARATOR}")
        else:
            text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            out.append(f"{code}:{text.translate(_CONTENT_TABLE)}{CONTENT_SEPARATOR}")
    return "".join(out)


def content_text_expr(members: Mapping[str, pl.Expr], *, present: str | None = None) -> pl.Expr:
    """Vectorised :func:`content_text` of string expressions keyed by code (never null).

    Equal, byte for byte, to :func:`content_text` of the same members (a property test
    checks it). ``present`` names the code of a member the caller guarantees is never null
    (Verifone's ``entity_id``, a setting): the text is then built with one conditional
    literal per member, the separator of one member joined to the code of the next, instead
    of a concatenation per member.
    """
    codes = sorted(members)
    if not codes:
        return pl.lit("", pl.String)
    if present is not None and codes[0] == present:
        parts = [pl.lit(f"{present}="), _content_escaped(members[present])]
        for code in codes[1:]:
            value = members[code]
            parts.append(pl.when(value.is_not_null()).then(pl.lit(f"{CONTENT_SEPARATOR}{code}=")))
            parts.append(_content_escaped(value))
        parts.append(pl.lit(CONTENT_SEPARATOR))
        return pl.concat_str(parts, ignore_nulls=True)
    return pl.concat_str(
        [
            pl.concat_str(
                pl.lit(f"{code}="), _content_escaped(members[code]), pl.lit(CONTENT_SEPARATOR)
            )
            for code in codes
        ],
        ignore_nulls=True,
    )


def _content_escaped(value: pl.Expr) -> pl.Expr:
    # A plain expression, not map_batches: a Python callback holds the GIL and made the
    # streaming engine keep about 400 MB more of batches in flight per million rows.
    return (
        pl.when(value.str.contains_any(_CONTENT_NEEDS_ESCAPE))
        .then(value.str.replace_many(_CONTENT_NEEDS_ESCAPE, _CONTENT_ESCAPED))
        .otherwise(value)
    )


# -- the content key a diff compares ------------------------------------------------------------

_KEY_MODULUS = 1 << 64
_NON_STRING_SEED = 1 << 32
"""Added to a code's seed for a leaf that is not a string (written as its JSON), so that 5 and
"5" differ."""


def content_key(members: Iterable[tuple[str, Any]]) -> int:
    """The content key of ``(code, value)`` members (see ``docs/extract-format.md`` §4).

    The sum, modulo 2**64, over members whose value is not null, of XXH3-64 of the value's
    UTF-8 bytes with the seed ``int(code)`` (a leaf that is not a string: of its compact JSON,
    seed ``int(code) + 2**32``). Each member's hash depends on its code, so values cannot
    trade places; a field added later leaves the key of every row where it is null alone.
    """
    total = 0
    for code, value in members:
        if value is None:
            continue
        if isinstance(value, str):
            data, seed = value.encode("utf-8"), int(code)
        else:
            text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            data, seed = text.encode("utf-8"), int(code) + _NON_STRING_SEED
        total += xxhash.xxh3_64_intdigest(data, seed=seed)
    return total % _KEY_MODULUS


def content_key_expr(members: Mapping[str, pl.Expr]) -> pl.Expr:
    """Vectorised :func:`content_key` of string expressions keyed by code: ``UInt64``.

    Each column is hashed where it lies (no text is built) and the sums wrap modulo 2**64 as
    :func:`content_key`'s do; equal to it for the same members (a property test checks it).
    """
    terms = [
        plh.NonCryptographicHashingNameSpace(members[code]).xxh3_64(seed=int(code)).fill_null(0)
        for code in sorted(members)
    ]
    if not terms:
        return pl.lit(0, pl.UInt64)
    return pl.sum_horizontal(terms)
