"""Typed frames the executor hands to ``StateStore.record_batch``.

Build them with :func:`calls_frame` / :func:`outcomes_frame` / :func:`snapshot_frame` from
dicts (missing keys become null), or start from the ``empty_*`` helpers. ``run_id`` and
``target`` may be left out: ``record_batch`` fills them from its arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl

UTC_TIME = pl.Datetime("us", "UTC")
_TEXT = pl.String()
_INT = pl.Int32()

RESULTS: tuple[str, ...] = ("succeeded", "failed", "adopted", "ambiguous", "skipped")
"""Allowed ``outcomes.result`` values. ``adopted``: the record already existed at the
provider and custsync took it over; ``ambiguous``: the call's effect is unknown (timeout)."""

CALLS_SCHEMA = pl.Schema(
    {
        "run_id": _TEXT,
        "target": _TEXT,
        "plan_id": _TEXT,
        "operation": _TEXT,
        "method": _TEXT,
        "path_template": _TEXT,
        "status": _INT,
        "error_code": _TEXT,
        "attempt": _INT,
        "latency_ms": pl.Float64(),
        "started_at": UTC_TIME,
        "request_id": _TEXT,
    }
)
"""One row per HTTP call (each retry attempt is a call)."""

OUTCOMES_SCHEMA = pl.Schema(
    {
        "run_id": _TEXT,
        "target": _TEXT,
        "plan_id": _TEXT,
        "external_id": _TEXT,
        "action": _TEXT,
        "result": _TEXT,
        "remote_id": _TEXT,
        "http_status": _INT,
        "error_class": _TEXT,
        "error_code": _TEXT,
        "message": _TEXT,
        "changed_fields": pl.List(_TEXT),
        "drift_fields": pl.List(_TEXT),
        "at": UTC_TIME,
    }
)
"""One row per record per run. ``at`` (when the outcome became known) is stored as
``outcomes.occurred_at``: ``AT`` is a reserved word in DuckDB SQL."""

SNAPSHOT_SCHEMA = pl.Schema(
    {
        "external_id": _TEXT,
        "remote_id": _TEXT,
        "content_hash": _TEXT,
        "payload": _TEXT,
        "status": _TEXT,
        "content_key": pl.UInt64(),
    }
)
"""A snapshot upsert: the plan row's (source) payload and hash, the confirmed remote id.

Store the *source* payload, not the merged body sent: the next diff compares source hashes,
and the next merge needs what the source said as its base."""


def _frame(rows: Iterable[Mapping[str, Any]], schema: pl.Schema) -> pl.DataFrame:
    records = [{name: row.get(name) for name in schema.names()} for row in rows]
    return pl.DataFrame(records, schema=schema)


def empty_calls() -> pl.DataFrame:
    """An empty frame with :data:`CALLS_SCHEMA`."""
    return pl.DataFrame(schema=CALLS_SCHEMA)


def empty_outcomes() -> pl.DataFrame:
    """An empty frame with :data:`OUTCOMES_SCHEMA`."""
    return pl.DataFrame(schema=OUTCOMES_SCHEMA)


def empty_snapshot() -> pl.DataFrame:
    """An empty frame with :data:`SNAPSHOT_SCHEMA`."""
    return pl.DataFrame(schema=SNAPSHOT_SCHEMA)


def calls_frame(rows: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """Calls from dicts keyed by :data:`CALLS_SCHEMA` names (``started_at`` an aware datetime)."""
    return _frame(rows, CALLS_SCHEMA)


def outcomes_frame(rows: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """Outcomes from dicts keyed by :data:`OUTCOMES_SCHEMA` names."""
    return _frame(rows, OUTCOMES_SCHEMA)


def snapshot_frame(rows: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """Snapshot upserts from dicts keyed by :data:`SNAPSHOT_SCHEMA` names."""
    return _frame(rows, SNAPSHOT_SCHEMA)
