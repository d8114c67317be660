"""Three-way merge for get-merge-post updates.

``base`` is what custsync last sent (the snapshot payload), ``source`` what the extract says
now, ``remote`` what the provider holds now. Per field (a dotted path into nested objects):

- the source changed it (source ≠ base): the source value wins. If the remote also changed it
  to something else, that field is a *conflict* (reported; the source still wins);
- the source did not change it: the remote value is kept. If the remote differs from base,
  somebody edited it outside custsync: that field is *drift* (reported and kept).

Without a base (a record never synced, e.g. adopted in a migration) there is no telling who
changed what: every value the source has wins and every other remote value is kept.

Every field the update changes at the provider, and every drift field kept, is also a
:class:`FieldChange` (before, after, why): the ``changes`` table of the state file.
:func:`create_changes` and :func:`remove_changes` give those of a create and of a delete or close.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

Why = Literal["source", "remote_kept", "drift"]
"""Why a field changed: ``source`` (the extract changed it), ``remote_kept`` (the extract did
not; the provider's value differs from the base and is kept), ``drift`` (the provider's value
differs from the base and the extract changed it: overwritten)."""


class FieldChange(NamedTuple):
    """One field of one record, before and after an action (a tuple: built per field, cheap)."""

    field: str
    """The provider's field path, dotted (``billing.city``)."""
    before: Any
    """The provider's value before (``None``: absent, e.g. before a create)."""
    after: Any
    """The value sent (``None``: absent, e.g. after a delete)."""
    why: Why


@dataclass(frozen=True)
class MergeResult:
    """The outcome of :func:`three_way_merge`; paths are dotted (``billing.first_name``)."""

    merged: dict[str, Any]
    """The body to send: nested, without null members or empty objects."""
    changed: tuple[str, ...]
    """Fields whose value the update changes at the provider (merged ≠ remote)."""
    drift: tuple[str, ...]
    """Fields edited at the provider outside custsync and kept."""
    conflicts: tuple[str, ...]
    """Fields edited at the provider outside custsync that the source overwrites."""
    changes: tuple[FieldChange, ...] = ()
    """By path: every changed field (before = the remote value, why ``source``, or ``drift``
    for a conflict) and every drift field kept (before = after = the remote value, why
    ``remote_kept``)."""


def flatten(payload: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"billing": {"city": "X"}}`` → ``{"billing.city": "X"}``; nulls are left out."""
    flat: dict[str, Any] = {}
    for key, value in payload.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{path}."))
        elif value is not None:
            flat[path] = value
    return flat


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`flatten`."""
    nested: dict[str, Any] = {}
    for path, value in flat.items():
        *parents, leaf = path.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def three_way_merge(
    base: Mapping[str, Any] | None, source: Mapping[str, Any], remote: Mapping[str, Any]
) -> MergeResult:
    """Merge ``source`` into ``remote`` relative to ``base`` (see the module docstring)."""
    src, rem = flatten(source), flatten(remote)
    old = flatten(base) if base is not None else None
    merged: dict[str, Any] = {}
    changed: list[str] = []
    drift: list[str] = []
    conflicts: list[str] = []
    changes: list[FieldChange] = []
    for path in sorted(src.keys() | rem.keys() | (old.keys() if old is not None else set())):
        s, r = src.get(path), rem.get(path)
        why: Why = "source"
        if old is None:
            value = s if s is not None else r
        else:
            b = old.get(path)
            if s != b:
                value = s
                if r != b and r != s:
                    conflicts.append(path)
                    why = "drift"
            else:
                value = r
                if r != b:
                    drift.append(path)
                    changes.append(FieldChange(path, r, r, "remote_kept"))
        if value is not None:
            merged[path] = value
        if value != r:
            changed.append(path)
            changes.append(FieldChange(path, r, value, why))
    return MergeResult(
        unflatten(merged), tuple(changed), tuple(drift), tuple(conflicts), tuple(changes)
    )


def create_changes(payload: Mapping[str, Any]) -> tuple[FieldChange, ...]:
    """The changes of a create: every field of ``payload``, from nothing (why ``source``)."""
    return tuple(FieldChange(p, None, v, "source") for p, v in sorted(flatten(payload).items()))


def remove_changes(payload: Mapping[str, Any]) -> tuple[FieldChange, ...]:
    """The changes of a delete or close: every field of the last ``payload``, to nothing."""
    return tuple(FieldChange(p, v, None, "source") for p, v in sorted(flatten(payload).items()))
