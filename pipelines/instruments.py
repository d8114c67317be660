"""Explicit payment-instrument deactivations: an instruments extract turned into plan rows."""

from __future__ import annotations

from collections.abc import Set

import orjson
import polars as pl

from connectors.providers.registry import get_provider
from transforms.diff import plan_id

_PLAN_SCHEMA = {
    name: pl.String
    for name in ("plan_id", "external_id", "action", "remote_id", "payload", "reason")
}
_REJECT_SCHEMA = {name: pl.String for name in ("external_id", "field", "rule", "message", "value")}


def plan_deactivations(
    instruments: pl.DataFrame, target: str, done: Set[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Plan rows (action ``deactivate``) and rejects for an ``external_id, token`` frame.

    The customer id derives from the external id (a client-chosen id, SumUp's), so no snapshot
    is needed; a row whose plan id is in ``done`` (deactivated by an earlier run) is left out,
    so a rerun sends nothing. A target without payment instruments (Verifone) rejects every row.
    """
    provider = get_provider(target)
    rule = provider.target.client_id
    unsupported = None
    if not provider.capabilities.instruments:
        unsupported = f"{provider.target.title} customers have no instruments"
    elif rule is None:
        unsupported = f"{provider.target.title} ids are not derived from the key"
    rows, rejects = [], []
    for ext, token in instruments.select("external_id", "token").iter_rows():
        if unsupported is not None or rule is None:
            rejects.append((ext, "token", "unsupported", unsupported))
            continue
        if not ext or not token:
            rejects.append((ext, "token", "required", "external_id and token are required"))
            continue
        pid = plan_id(target, ext, "deactivate", token)
        if pid in done:
            continue
        payload = orjson.dumps({"token": token}).decode()
        rows.append((pid, ext, "deactivate", rule.of(ext), payload, "instruments extract"))
    return (
        pl.DataFrame(rows, schema=_PLAN_SCHEMA, orient="row"),
        pl.DataFrame([(*r, None) for r in rejects], schema=_REJECT_SCHEMA, orient="row"),
    )
