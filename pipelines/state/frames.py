"""What a batch records, typed once: a row type and a frame schema per table.

The executor builds :class:`OutcomeRow` and :class:`SnapshotRow` values, the ledger
(:mod:`pipelines.ledger`) a :class:`CallRow` per HTTP call; each kind becomes a frame once, by
:func:`calls_frame` / :func:`outcomes_frame` / :func:`snapshot_frame`, which
``StateStore.record_batch`` takes. The builders also take plain dicts (missing keys become
null), and the ``empty_*`` helpers start from nothing. ``run_id`` and ``target`` may be left
out: ``record_batch`` fills them from its arguments. Changes, one row per field, are kept in
columns as they come (:class:`ChangeLog`): a dict per field would cost more than the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from itertools import accumulate, chain
from typing import Any, TypedDict

import orjson
import polars as pl
import pyarrow as pa

from transforms.merge import FieldChange

UTC_TIME = pl.Datetime("us", "UTC")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
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


CHANGES_SCHEMA = pl.Schema(
    {
        "run_id": _TEXT,
        "target": _TEXT,
        "plan_id": _TEXT,
        "external_id": _TEXT,
        "remote_id": _TEXT,
        "action": _TEXT,
        "field": _TEXT,
        "before": _TEXT,
        "after": _TEXT,
        "why": _TEXT,
        "occurred_at": UTC_TIME,
    }
)
"""One row per changed field of a succeeded action (migration 007): ``before`` and ``after``
as text, a string as is and any other value as JSON text."""


class CallRow(TypedDict):
    """A row of :data:`CALLS_SCHEMA` as the ledger builds it (``record_batch`` adds the run
    and the target)."""

    plan_id: str | None
    operation: str
    method: str
    path_template: str
    status: int | None
    error_code: str | None
    attempt: int
    latency_ms: float
    started_at: datetime
    request_id: str


class OutcomeRow(TypedDict):
    """A row of :data:`OUTCOMES_SCHEMA`: one record's outcome, as the executor builds it.

    ``plan_id`` is ``None`` for an outcome that leaves its journal intent pending."""

    run_id: str
    target: str
    plan_id: str | None
    external_id: str
    action: str
    result: str
    remote_id: str | None
    http_status: int | None
    error_class: str | None
    error_code: str | None
    message: str | None
    changed_fields: list[str]
    drift_fields: list[str]
    at: datetime


class SnapshotRow(TypedDict):
    """A row of :data:`SNAPSHOT_SCHEMA`: a confirmed success advancing the snapshot."""

    external_id: str
    remote_id: str
    content_hash: str
    payload: str
    status: str
    content_key: int


def utc_column(values: list[Any]) -> pl.Series | list[Any]:
    """Aware datetimes (or nulls) as a :data:`UTC_TIME` series, through integers: polars
    converts 10,000 datetime objects in 40 ms, as many integers in 0.3 ms (measured here), a
    fifth of recording a migration's batch (issue 14). Anything else (a naive datetime) is
    returned as it is, for polars' own conversion."""
    try:
        micros = [None if v is None else (v - _EPOCH) // _MICROSECOND for v in values]
    except TypeError:  # a naive datetime (or no datetime): polars decides
        return values
    return pl.Series(micros, dtype=pl.Int64).cast(UTC_TIME)


_TEXT_LIST = pl.List(_TEXT)


def text_list_column(values: list[Any]) -> pl.Series | list[Any]:
    """Lists of strings as a ``List(String)`` series, built from one flat array and offsets
    (Arrow): polars converting 500 Python lists took ~1 ms, this 0.3 ms (measured here; an
    outcome row has two such columns). A null, or anything but strings, is returned as it
    is, for polars' own conversion."""
    try:
        if any(v is None for v in values):
            return values
        offsets = pa.array([0, *accumulate(map(len, values))], pa.int64())
        flat = pa.array(list(chain.from_iterable(values)), pa.large_string())
    except (TypeError, pa.ArrowException):
        return values
    return pl.Series(pa.LargeListArray.from_arrays(offsets, flat)).cast(_TEXT_LIST)


def _frame(rows: Iterable[Mapping[str, Any]], schema: pl.Schema) -> pl.DataFrame:
    # Column by column: polars building a frame from one dict a row took a third of
    # recording a migration's batch (issue 14).
    listed = rows if isinstance(rows, list) else list(rows)
    return frame_of({name: [row.get(name) for row in listed] for name in schema.names()}, schema)


def frame_of(columns: Mapping[str, list[Any]], schema: pl.Schema) -> pl.DataFrame:
    """A frame of ``schema`` from one list per column (its datetimes by :func:`utc_column`)."""
    converters = {UTC_TIME: utc_column, _TEXT_LIST: text_list_column}
    return pl.DataFrame(
        {
            name: converters[schema[name]](values) if schema[name] in converters else values
            for name, values in columns.items()
        },
        schema=schema,
    )


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


def value_text(value: Any) -> str | None:
    """A field value as the ``changes`` table stores it: a string as is, ``None`` as NULL,
    anything else (a number, a boolean, a list) as JSON text."""
    if value is None or type(value) is str:
        return value
    return orjson.dumps(value).decode()


class ChangeLog:
    """A batch's change rows, kept column by column (:data:`CHANGES_SCHEMA`; ``run_id`` and
    ``target`` are set by ``record_batch``)."""

    def __init__(self) -> None:
        self._columns: dict[str, list[Any]] = {
            name: [] for name in CHANGES_SCHEMA.names() if name not in ("run_id", "target")
        }

    def __len__(self) -> int:
        return len(self._columns["field"])

    def add(
        self,
        *,
        plan_id: str | None,
        external_id: str,
        remote_id: str | None,
        action: str,
        changes: Iterable[FieldChange],
        at: datetime,
    ) -> None:
        """Append one record's ``changes`` (of ``action``, known at ``at``)."""
        cols = self._columns
        fields, before, after, why = cols["field"], cols["before"], cols["after"], cols["why"]
        n = 0  # counted here: changes may be a generator
        for change in changes:
            fields.append(change.field)
            before.append(value_text(change.before))
            after.append(value_text(change.after))
            why.append(change.why)
            n += 1
        if n:
            for name, value in (
                ("plan_id", plan_id),
                ("external_id", external_id),
                ("remote_id", remote_id),
                ("action", action),
                # microseconds since the epoch: polars converts 10,000 datetime objects in
                # 40 ms, as many integers in 0.3 ms (measured here)
                ("occurred_at", (at - _EPOCH) // _MICROSECOND),
            ):
                cols[name].extend([value] * n)

    def frame(self) -> pl.DataFrame:
        """The rows as one frame (:data:`CHANGES_SCHEMA` without ``run_id`` and ``target``)."""
        schema = {name: CHANGES_SCHEMA[name] for name in self._columns}
        return pl.DataFrame(self._columns, schema={**schema, "occurred_at": pl.Int64}).cast(
            {"occurred_at": UTC_TIME}
        )


def empty_changes() -> pl.DataFrame:
    """An empty frame with :data:`CHANGES_SCHEMA`."""
    return pl.DataFrame(schema=CHANGES_SCHEMA)
