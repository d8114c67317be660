"""Building RSQL filters (Verifone's ``search`` parameter) safely from values.

RSQL: ``field==value``, ``field=in=(a,b)``; ``;`` is AND, ``,`` is OR, AND binds tighter.
A value containing a reserved character or whitespace must be quoted; inside double quotes a
backslash escapes ``"`` and ``\\``. Values are always quoted unless they are plainly safe,
so user data can never change the structure of a filter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote_plus

# Field selectors: letters, digits, underscore, dotted paths (billing.first_name).
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
# Unquoted arguments must avoid RSQL's reserved characters, whitespace and the wildcard.
_BARE = re.compile(r"^[A-Za-z0-9_\-.:@]+$")


def quote(value: str) -> str:
    """An RSQL argument for ``value``: bare when plainly safe, else double-quoted."""
    if _BARE.match(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def field(name: str) -> str:
    """Validate a selector (``email_address``, ``billing.last_name``)."""
    if not _FIELD.match(name):
        raise ValueError(f"not an RSQL field name: {name!r}")
    return name


def eq(name: str, value: str) -> str:
    """``name==value``."""
    return f"{field(name)}=={quote(value)}"


def in_(name: str, values: Iterable[str]) -> str:
    """``name=in=(v1,v2,…)``."""
    items = [quote(v) for v in values]
    if not items:
        raise ValueError("=in= needs at least one value")
    return f"{field(name)}=in=({','.join(items)})"


def and_(*clauses: str) -> str:
    """AND of clauses; a clause holding a top-level OR is grouped so it cannot leak out."""
    parts = [c if _is_simple(c) else f"({c})" for c in clauses if c]
    return ";".join(parts)


def all_equal(criteria: Mapping[str, str]) -> str:
    """AND of ``field==value`` for every item (dotted field names allowed)."""
    return and_(*(eq(k, v) for k, v in criteria.items()))


def _is_simple(clause: str) -> bool:
    # Only a top-level OR needs parentheses under an AND (AND binds tighter; "a;b" nested in
    # another AND is still an AND). Quoted text may contain ',' and is skipped.
    depth = 0
    in_quotes = escaped = False
    for ch in clause:
        if in_quotes:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_quotes = False
        elif ch == '"':
            in_quotes = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            return False
    return True


def encoded_len(text: str) -> int:
    """Length of ``text`` once percent-encoded in a query string (as httpx sends it)."""
    return len(quote_plus(text, safe=""))
