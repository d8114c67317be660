"""The DuckDB state store (snapshot, plan, journal, audit log) and the frames it takes."""

from pipelines.state.frames import (
    CALLS_SCHEMA,
    CHANGES_SCHEMA,
    OUTCOMES_SCHEMA,
    RESULTS,
    SNAPSHOT_SCHEMA,
    ChangeLog,
    calls_frame,
    empty_calls,
    empty_changes,
    empty_outcomes,
    empty_snapshot,
    outcomes_frame,
    snapshot_frame,
)
from pipelines.state.store import StateError, StateStore, migrations, new_run_id

__all__ = [
    "CALLS_SCHEMA",
    "CHANGES_SCHEMA",
    "OUTCOMES_SCHEMA",
    "RESULTS",
    "SNAPSHOT_SCHEMA",
    "ChangeLog",
    "StateError",
    "StateStore",
    "calls_frame",
    "empty_calls",
    "empty_changes",
    "empty_outcomes",
    "empty_snapshot",
    "migrations",
    "new_run_id",
    "outcomes_frame",
    "snapshot_frame",
]
