"""Look a customer up at a provider by what we sent or by a business key.

Used where a create must not be repeated blindly: after a crash left a create's outcome unknown, and
when a migration adopts customers the provider already holds.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, cast

from connectors.protocol import CustomerConnector
from transforms.mapping import payload_from_remote
from transforms.schema import Target


def _scalars(payload: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for key, value in payload.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _scalars(value, path + ".")
        elif value is not None:
            yield path, str(value)


def _get(payload: Mapping[str, Any], dotted: str) -> Any:
    node: Any = payload
    for part in dotted.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


# The provider filters on these; the rest of the payload is compared locally, which keeps the
# search URL short and avoids depending on how the provider matches every field.
_SEARCH_KEYS = (
    "email_address",
    "company_registration_number",
    "company_name",
    "billing.last_name",
    "billing.first_name",
    "phone_number",
)


async def find_exact(
    connector: CustomerConnector, payload: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Remote records whose content equals ``payload`` (what a lost create would have stored)."""
    sent = dict(_scalars(payload))
    criteria = {k: sent[k] for k in _SEARCH_KEYS if k in sent}
    if "entity_id" in sent:
        criteria["entity_id"] = sent["entity_id"]
    if not criteria:
        criteria = dict(list(sent.items())[:4])
    candidates = await connector.find(criteria)
    target = cast(Target, connector.target)
    return [r for r in candidates if dict(_scalars(payload_from_remote(target, r))) == sent]


async def find_matches(
    connector: CustomerConnector, payload: Mapping[str, Any], keys: Sequence[str]
) -> list[dict[str, Any]]:
    """Remote records matching ``payload`` on the first of ``keys`` that finds any."""
    for key in keys:
        value = _get(payload, key)
        if value in (None, ""):
            continue
        criteria = {key: str(value)}
        entity = payload.get("entity_id")
        if entity:
            criteria["entity_id"] = str(entity)
        found = await connector.find(criteria)
        if found:
            return found
    return []
