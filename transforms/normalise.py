"""Normalisation: make equal values compare equal before they are validated and hashed."""

from __future__ import annotations

import polars as pl

from transforms.schema import CANONICAL_COLUMNS

_LOWER = frozenset({"email", "status"})
_UPPER = frozenset({"billing_country_code", "shipping_country_code"})
_FROM_U0300 = r"[^\x00-\u02FF]"
"""A character from U+0300 on: combining marks and every script NFC can change."""


def normalise(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Trim, Unicode NFC, empty → null, lower-case e-mail and status, upper-case countries.

    A missing ``status`` becomes ``active``. Columns outside the canonical format pass
    through untouched. Vectorised: no per-row Python.
    """
    present = set(frame.collect_schema().names())
    names = [name for name in CANONICAL_COLUMNS if name in present]
    # Separate steps, each reading the previous one's columns: nesting the expressions would
    # repeat the inner work once per reference (``col`` appears several times in a step).
    stripped = frame.with_columns(pl.col(names).str.strip_chars())
    composed = stripped.with_columns(_nfc(pl.col(name)).alias(name) for name in names)
    cased = composed.with_columns(
        *(pl.col(name).str.to_lowercase() for name in names if name in _LOWER),
        *(pl.col(name).str.to_uppercase() for name in names if name in _UPPER),
    )
    nulled = cased.with_columns(pl.when(pl.col(names) != "").then(pl.col(names)).name.keep())
    if "status" in present:
        nulled = nulled.with_columns(pl.col("status").fill_null("active"))
    return nulled


def _nfc(value: pl.Expr) -> pl.Expr:
    """``value`` in Unicode NFC, normalising only the values that may not be.

    polars normalises at about 150 ns a value, whatever it holds. A value of ASCII only
    (byte length equals character length) is NFC; so is one whose characters all lie below
    U+0300 (ASCII, Latin-1, Latin Extended-A and -B, IPA: each is NFC alone, none is a
    combining mark, and no two compose; a test checks every one and every pair). Most names
    and addresses of European CRMs are such values. polars evaluates a ``when`` branch only
    on the rows its condition selects, so the character search runs on non-ASCII values only.
    """
    return (
        pl.when(value.str.len_bytes() != value.str.len_chars())
        .then(
            pl.when(value.str.contains(_FROM_U0300))
            .then(value.str.normalize("NFC"))
            .otherwise(value)
        )
        .otherwise(value)
    )
