"""The ledger: what a run records of each batch, in the batch's one DuckDB transaction.

A connector hands every HTTP attempt to the run as a :class:`~connectors.http.CallRecord`;
the ledger keeps them until the batch they belong to is recorded. A batch's
:class:`~pipelines.batch.BatchResult` carries the typed outcome and snapshot rows
and its change rows (:mod:`pipelines.state.frames`). :meth:`Ledger.record` turns each kind into
its frame once and writes them with :meth:`~pipelines.state.store.StateStore.record_batch`:
calls, outcomes, changes, snapshot upserts and deletes, and the closing of the journal intents,
all or nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import polars as pl

from connectors.http import CallRecord
from pipelines.batch import BatchResult
from pipelines.state.frames import (
    CALLS_SCHEMA,
    CallRow,
    frame_of,
    outcomes_frame,
    snapshot_frame,
)
from pipelines.state.store import StateStore

log = logging.getLogger("custsync")


def call_row(call: CallRecord) -> CallRow:
    """The ``calls`` row of one HTTP attempt (the plan row it was made for is its ``ref``)."""
    return {
        "plan_id": call.ref,
        "operation": call.operation,
        "method": call.method,
        "path_template": call.path_template,
        "status": call.status,
        "error_code": call.error_code,
        "attempt": call.attempt,
        "latency_ms": call.latency_ms,
        "started_at": call.started_at,
        "request_id": call.request_id,
    }


_CALL_ATTRIBUTES = {
    "plan_id": "ref",
    **{
        name: name
        for name in CALLS_SCHEMA.names()
        if name not in ("plan_id", "run_id", "target")  # set by record_batch
    },
}


def calls_of(calls: Sequence[CallRecord]) -> pl.DataFrame:
    """The ``calls`` rows of ``calls`` (:func:`call_row`'s, built a column at a time: a dict
    a call took a fifth of recording a migration's batch, issue 14)."""
    columns = {name: [getattr(c, attr) for c in calls] for name, attr in _CALL_ATTRIBUTES.items()}
    return frame_of(
        {name: columns.get(name, [None] * len(calls)) for name in CALLS_SCHEMA.names()},
        CALLS_SCHEMA,
    )


class Ledger:
    """Collects a run's calls and records them, batch by batch, with the batch's outcomes."""

    def __init__(self, store: StateStore, run_id: str, target: str) -> None:
        self.store = store
        self.run_id = run_id
        self.target = target
        self._calls: list[CallRecord] = []

    def add(self, call: CallRecord) -> None:
        """Keep ``call`` for the next :meth:`record` (the connectors' ``on_call``)."""
        self._calls.append(call)

    @property
    def calls(self) -> Sequence[CallRecord]:
        """The calls made since the last batch was recorded (a stopped batch's evidence)."""
        return self._calls

    def record(self, result: BatchResult) -> int:
        """Record ``result`` and the calls kept so far in one transaction; returns how many
        snapshot rows the store refused (their remote id belongs to another key)."""
        calls = calls_of(self._calls)
        self._calls.clear()
        refused = self.store.record_batch(
            self.run_id,
            self.target,
            calls=calls,
            outcomes=outcomes_frame(result.outcomes),
            snapshot_upserts=snapshot_frame(result.upserts),
            snapshot_deletes=result.deletes,
            changes=result.changes.frame(),
        )
        if refused:
            log.warning(
                "%d record(s) refused: their remote id belongs to another key"
                " (see remote_id_conflicts)",
                refused,
            )
        return refused
