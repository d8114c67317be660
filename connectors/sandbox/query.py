"""What an RSQL search means over stored Verifone customers.

Semantics (documented in docs/sandbox.md):

- String fields compare exactly (case-sensitive, no wildcards); ``id`` ignores case.
  ``=regex=`` is a Python regular expression searched anywhere in the value
  (anchor it with ``^…$``).
- A field the record lacks never equals anything: ``==``, ``=in=`` and ``=regex=`` are false,
  ``!=`` and ``=out=`` true.
- ``created_at``/``updated_at`` take a date (``2024-05-01``: the whole UTC day) or a
  date-time (``2024-05-01T10:00:00.123Z``, an instant at millisecond precision, UTC if no
  offset).
- ``shipping.phone`` is a *number* in the published table: a stored phone compares by its
  digits (``+44 (20) 7946-0000`` → 442079460000); the argument must be digits.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from connectors.sandbox.rsql import And, Comparison, Node, Or, RsqlError

STRING_OPS = frozenset({"==", "!=", "=in=", "=out=", "=regex="})
ORDERED_OPS = frozenset({"==", "!=", "=in=", "=out=", "=gt=", "=ge=", "=lt=", "=le="})
_MULTI = frozenset({"=in=", "=out="})

RECORD_FIELDS = frozenset({"id", "entity_id", "created_at", "updated_at"})
"""Fields held on the record itself: filtering on them needs no decoding."""
DATE_FIELDS = frozenset({"created_at", "updated_at"})
NUMBER_FIELDS = frozenset({"shipping.phone"})
_ADDRESS_KEYS = (
    "address_1",
    "address_2",
    "address_3",
    "city",
    "country_code",
    "first_name",
    "middle_name",
    "last_name",
    "phone",
    "postal_code",
    "state",
)
FILTERABLE = frozenset(
    {f"billing.{k}" for k in _ADDRESS_KEYS}
    | {f"shipping.{k}" for k in _ADDRESS_KEYS}
    | {
        "company_name",
        "company_registration_number",
        "email_address",
        "entity_id",
        "id",
        "phone_number",
        "title",
        "work_phone",
        "tax.identifier",
        "language",
        "created_at",
        "updated_at",
    }
)
"""Every filterable field of the published table (also the accepted ``order_criteria``)."""

Getter = Callable[[Any, dict[str, Any] | None], Any]
Predicate = Callable[[Any, dict[str, Any] | None], bool]


@dataclass(frozen=True, slots=True)
class Query:
    """A compiled search: ``predicate(record, doc)``; ``needs_doc``: decode ``doc`` first."""

    node: Node
    predicate: Predicate
    needs_doc: bool


def ms_of(moment: datetime) -> int:
    """Milliseconds since the epoch (naive values are UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def parse_instant(text: str) -> tuple[int, int]:
    """``[lo, hi)`` in epoch ms: a whole UTC day for a date, one millisecond for a date-time."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return ms_of(start), ms_of(start + timedelta(days=1))
        if "T" not in text and " " not in text:
            raise ValueError(text)
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError as exc:
        raise RsqlError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 date-time") from exc
    lo = ms_of(moment)
    return lo, lo + 1


def phone_number(value: Any) -> int | None:
    """The numeric value of a stored phone string: its digits, or ``None`` if it has none."""
    if not isinstance(value, str):
        return None
    digits = "".join(c for c in value if c.isdigit())
    return int(digits) if digits else None


def getter(field: str) -> Getter:
    """How to read ``field`` from ``(record, decoded doc)``."""
    if field == "id":
        return lambda rec, doc: rec.id
    if field == "entity_id":
        return lambda rec, doc: rec.entity_id
    if field == "created_at":
        return lambda rec, doc: rec.created_ms
    if field == "updated_at":
        return lambda rec, doc: rec.updated_ms
    if "." in field:
        outer, inner = field.split(".", 1)
        if field in NUMBER_FIELDS:
            return lambda rec, doc: phone_number((doc or {}).get(outer, {}).get(inner))
        return lambda rec, doc: (doc or {}).get(outer, {}).get(inner)
    return lambda rec, doc: (doc or {}).get(field)


def compile_query(node: Node) -> Query:
    """Check fields and operators and build the predicate; raise :class:`RsqlError`."""
    return Query(node, _compile(node), _needs_doc(node))


def _needs_doc(node: Node) -> bool:
    if isinstance(node, Comparison):
        return node.selector not in RECORD_FIELDS
    return any(_needs_doc(child) for child in node.children)


def _compile(node: Node) -> Predicate:
    if isinstance(node, And):
        parts = [_compile(child) for child in node.children]
        return lambda rec, doc: all(part(rec, doc) for part in parts)
    if isinstance(node, Or):
        parts = [_compile(child) for child in node.children]
        return lambda rec, doc: any(part(rec, doc) for part in parts)
    return _comparison(node)


def _comparison(node: Comparison) -> Predicate:
    field, op, args = node.selector, node.operator, node.arguments
    if field not in FILTERABLE:
        raise RsqlError(f"unknown field {field!r} in search")
    ordered = field in DATE_FIELDS or field in NUMBER_FIELDS
    allowed = ORDERED_OPS if ordered else STRING_OPS
    if op not in STRING_OPS | ORDERED_OPS:
        raise RsqlError(f"unknown operator {op!r} in search")
    if op not in allowed:
        raise RsqlError(f"operator {op} is not allowed on {field}")
    if op not in _MULTI and len(args) != 1:
        raise RsqlError(f"operator {op} takes exactly one argument")
    get = getter(field)
    if field in DATE_FIELDS:
        return _date_predicate(get, op, [parse_instant(a) for a in args])
    if field in NUMBER_FIELDS:
        numbers = []
        for arg in args:
            if not re.fullmatch(r"\+?[0-9]+", arg):
                raise RsqlError(f"{field} is a number: {arg!r} is not one")
            numbers.append(int(arg))
        return _ordered_predicate(get, op, numbers)
    values = [a.lower() for a in args] if field == "id" else list(args)
    if op == "=regex=":
        try:
            pattern = re.compile(values[0])
        except re.error as exc:
            raise RsqlError(f"invalid regular expression {values[0]!r}: {exc}") from exc
        return lambda rec, doc: _regex(pattern, get(rec, doc))
    return _ordered_predicate(get, op, values)


def _regex(pattern: re.Pattern[str], value: Any) -> bool:
    return isinstance(value, str) and pattern.search(value) is not None


def _ordered_predicate(get: Getter, op: str, values: list[Any]) -> Predicate:
    one = values[0]
    if op == "==":
        return lambda rec, doc: get(rec, doc) == one
    if op == "!=":
        return lambda rec, doc: get(rec, doc) != one
    if op in _MULTI:
        members = frozenset(values)
        if op == "=in=":
            return lambda rec, doc: get(rec, doc) in members
        return lambda rec, doc: get(rec, doc) not in members
    comparisons: dict[str, Callable[[Any], bool]] = {
        "=gt=": lambda v: v > one,
        "=ge=": lambda v: v >= one,
        "=lt=": lambda v: v < one,
        "=le=": lambda v: v <= one,
    }
    compare = comparisons[op]
    return lambda rec, doc: (v := get(rec, doc)) is not None and compare(v)


def _date_predicate(get: Getter, op: str, spans: list[tuple[int, int]]) -> Predicate:
    lo, hi = spans[0]

    def within(value: int) -> bool:
        return any(a <= value < b for a, b in spans)

    predicates: dict[str, Predicate] = {
        "==": lambda rec, doc: within(get(rec, doc)),
        "=in=": lambda rec, doc: within(get(rec, doc)),
        "!=": lambda rec, doc: not within(get(rec, doc)),
        "=out=": lambda rec, doc: not within(get(rec, doc)),
        "=gt=": lambda rec, doc: get(rec, doc) >= hi,
        "=ge=": lambda rec, doc: get(rec, doc) >= lo,
        "=lt=": lambda rec, doc: get(rec, doc) < lo,
        "=le=": lambda rec, doc: get(rec, doc) < hi,
    }
    return predicates[op]


def index_lookups(node: Node, indexed: frozenset[str]) -> list[tuple[str, tuple[str, ...]]] | None:
    """The index probes that cover every match of ``node``, or ``None`` if a scan is needed.

    ``id==x``/``id=in=(…)`` (and the same on other indexed fields) are covered; an AND is
    covered by its most selective covered child; an OR only if every child is.
    """
    if isinstance(node, Comparison):
        if node.selector in indexed and node.operator in ("==", "=in="):
            values = node.arguments
            if node.selector == "id":
                values = tuple(v.lower() for v in values)
            return [(node.selector, values)]
        return None
    probes = [index_lookups(child, indexed) for child in node.children]
    if isinstance(node, And):
        covered = [p for p in probes if p is not None]
        if not covered:
            return None
        return min(covered, key=lambda p: sum(len(values) for _, values in p))
    if any(p is None for p in probes):
        return None
    return [probe for p in probes if p is not None for probe in p]
