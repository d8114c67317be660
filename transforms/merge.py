"""Three-way merge for get-merge-post updates.

``base`` is what custsync last sent (the snapshot payload), ``source`` what the extract says
now, ``remote`` what the provider holds now. Per field (a dotted path into nested objects):

- the source changed it (source ≠ base): the source value wins. If the remote also changed it
  to something else, that field is a *conflict* (reported; the source still wins);
- the source did not change it: the remote value is kept. If the remote differs from base,
  somebody edited it outside custsync: that field is *drift* (reported and kept).

Without a base (a record never synced, e.g. adopted in a migration) there is no telling who
changed what: every value the source has wins and every other remote value is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


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
    drift: list[str] = []
    conflicts: list[str] = []
    for path in sorted(src.keys() | rem.keys() | (old.keys() if old is not None else set())):
        s, r = src.get(path), rem.get(path)
        if old is None:
            value = s if s is not None else r
        else:
            b = old.get(path)
            if s != b:
                value = s
                if r != b and r != s:
                    conflicts.append(path)
            else:
                value = r
                if r != b:
                    drift.append(path)
        if value is not None:
            merged[path] = value
    changed = tuple(p for p in sorted(merged.keys() | rem.keys()) if merged.get(p) != rem.get(p))
    return MergeResult(unflatten(merged), changed, tuple(drift), tuple(conflicts))
