"""Migration adoption look-up: the customers a provider already holds, by a business key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.protocol import CustomerConnector

AMBIGUOUS = "ambiguous"
"""The start of the ``reason`` of a planned adoption left for a person (no remote id)."""
LOOK_UP_FAILED = "look-up failed"
"""The start of the ``reason`` of a planned adoption whose look-up failed (no remote id)."""


def dotted(payload: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` of ``payload`` (``None`` when absent)."""
    node: Any = payload
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


@dataclass(frozen=True)
class Matches:
    """Remote records found by one business key."""

    key: str
    """The dotted payload field that found them."""
    records: list[dict[str, Any]]


async def find_matches(
    connector: CustomerConnector, payload: Mapping[str, Any], keys: Sequence[str]
) -> Matches | None:
    """Remote records matching ``payload`` on the first of ``keys`` that finds any.

    The caller decides what may be adopted: a record another key owns never may, and neither
    may one that two keys of the extract both find (see :mod:`transforms.twins`).
    """
    for key in keys:
        value = dotted(payload, key)
        if value in (None, ""):
            continue
        criteria = {key: str(value)}
        entity = payload.get("entity_id")
        if entity:
            criteria["entity_id"] = str(entity)
        found = await connector.find(criteria)
        if found:
            return Matches(key, found)
    return None
