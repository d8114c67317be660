"""The field-level changes of a planned update: what ``custsync report --plan`` shows.

``old`` is the merge base (what custsync last sent: the snapshot payload), ``new`` what the
extract says now; fields are dotted paths (``billing.city``). Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from transforms.merge import flatten


class FieldChange(TypedDict):
    """One field an update changes: its dotted path, the value it had and the value it gets
    (``None``: absent)."""

    field: str
    old: Any
    new: Any


def field_changes(
    old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> list[FieldChange]:
    """The fields whose value differs between ``old`` and ``new``, by path."""
    before, after = flatten(old or {}), flatten(new or {})
    return [
        FieldChange(field=path, old=before.get(path), new=after.get(path))
        for path in sorted(before.keys() | after.keys())
        if before.get(path) != after.get(path)
    ]


def describe_change(change: FieldChange) -> str:
    """``field: old → new`` (``∅`` for an absent value), for a table or a CSV cell."""

    def shown(value: Any) -> str:
        return "∅" if value is None else str(value)

    return f"{change['field']}: {shown(change['old'])} → {shown(change['new'])}"
