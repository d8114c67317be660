"""The read side of the audit trail: what ``custsync report``, the audit-report flow, the run
summary and the demo show.

The reports read the documented views (README, "The DuckDB file"), so that what a person sees
in ``custsync report`` is what they get in SQL. :class:`AuditQueries` works on any connection
to a state file: the store's (it is one of the store's parts), or one it was handed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from pipelines.state.base import StateBase
from pipelines.state.frames import CHANGES_SCHEMA, UTC_TIME

EXAMPLE_QUERIES: tuple[tuple[str, str], ...] = (
    (
        "What did each run do?",
        "SELECT flow, target, mode, exit_code, planned, succeeded, failed, rejected, drift, "
        "calls FROM v_runs ORDER BY started_at",
    ),
    (
        "Everything that happened to one customer, across runs and providers",
        "SELECT target, flow, action, result, changed_fields, drift_fields "
        "FROM v_customer_history WHERE external_id = ? AND kind <> 'change' ORDER BY occurred_at",
    ),
    (
        "What custsync changed in Verifone for that customer: from what to what, when, in which"
        " run, started by whom",
        "SELECT strftime(occurred_at, '%Y-%m-%d %H:%M:%S') AS at, run_id, flow, os_user, host, "
        "action, field, before, after, why FROM v_changes "
        "WHERE target = 'verifone' AND external_id = ? ORDER BY occurred_at, field",
    ),
)
"""Questions an auditor asks, as ``(title, SQL)``; ``?`` is a customer's external id. The demo
prints and runs them."""


@dataclass(frozen=True)
class OutcomeCount:
    """Outcomes of one run with one action and one result."""

    action: str
    result: str
    count: int
    drifted: int
    """Those that reported drift (remote edits made outside custsync)."""


@dataclass(frozen=True)
class RunCounts:
    """What a run recorded, counted: the raw figures of its summary."""

    planned: dict[str, int]
    """Stored plan rows per action (``unchanged`` keys are not stored)."""
    outcomes: tuple[OutcomeCount, ...]
    calls: int
    retries: int
    """Calls that were not a first attempt."""
    http_429: int
    rejected: int
    """Distinct keys rejected by validation (a null key counts once)."""


V_CHANGES_SCHEMA = pl.Schema(
    {
        **CHANGES_SCHEMA,
        "flow": pl.String(),
        "mode": pl.String(),
        "started_at": UTC_TIME,
        "custsync_version": pl.String(),
        "host": pl.String(),
        "os_user": pl.String(),
        "prefect_flow_run_id": pl.String(),
        "prefect_deployment": pl.String(),
    }
)
"""The columns of ``v_changes`` (migration 007): the changes with who and what ran them."""

_RUNS = "SELECT v.*, r.summary->>'message' AS reason FROM v_runs v JOIN runs r USING (run_id)"
"""``v_runs`` with each run's reason: why it stopped, or what failed (its summary's message)."""


class AuditQueries(StateBase):
    """Reads of the audit views and tables, for reports and run summaries."""

    def query(self, sql: str, params: Sequence[Any] = ()) -> pl.DataFrame:
        """Run a read query of the caller's (``?`` placeholders), e.g. :data:`EXAMPLE_QUERIES`."""
        return self._frame(sql, params)

    def recent_runs(self, limit: int = 20) -> pl.DataFrame:
        """The last ``limit`` runs, newest first (``v_runs``)."""
        return self._frame(f"{_RUNS} ORDER BY v.started_at DESC LIMIT ?", [limit])

    def run_summary(self, run_id: str) -> dict[str, Any] | None:
        """The run's ``v_runs`` row (with the summary recorded when it finished), or ``None``
        for an unknown run."""
        row = self._frame(f"{_RUNS} WHERE v.run_id = ?", [run_id])
        return None if row.height == 0 else row.to_dicts()[0]

    def run_failures(self, run_id: str) -> pl.DataFrame:
        """Failed, ambiguous and rejected records of one run (``v_failures``)."""
        return self._frame(
            "SELECT * FROM v_failures WHERE run_id = ? ORDER BY external_id, kind", [run_id]
        )

    def failure_sample(self, run_id: str, limit: int = 20) -> tuple[pl.DataFrame, int]:
        """The first ``limit`` failed, ambiguous and rejected records of one run (key, kind,
        action or field, code or rule, message, masked value: rejects store values masked),
        and how many there are in all."""
        records = """
            SELECT external_id, 'rejected' AS kind, field AS what, rule AS code, message, value
            FROM rejects WHERE run_id = $run
            UNION ALL
            SELECT external_id, result, action, coalesce(error_code, error_class), message, NULL
            FROM outcomes WHERE run_id = $run AND result IN ('failed', 'ambiguous')"""
        sample = self._frame(
            f"SELECT * FROM ({records}) ORDER BY kind, external_id NULLS FIRST, what LIMIT $n",
            {"run": run_id, "n": limit},
        )
        ((total,),) = self._run(f"SELECT count(*) FROM ({records})", {"run": run_id})
        return sample, int(total)

    def run_rejects(self, run_id: str) -> pl.DataFrame:
        """One run's rejects (values masked as stored), in extract order."""
        return self._frame(
            "SELECT external_id, field, rule, message, value, source_row, rejected_at"
            " FROM rejects WHERE run_id = ? ORDER BY source_row NULLS LAST, external_id, field",
            [run_id],
        )

    def run_plan(self, run_id: str) -> pl.DataFrame:
        """The actions a run planned (what a dry run shows), by external id."""
        return self._frame(
            "SELECT external_id, action, reason, remote_id, plan_id FROM plan WHERE run_id = ? "
            "ORDER BY external_id, action",
            [run_id],
        )

    def changes(self, run_id: str | None = None, *, last_runs: int | None = None) -> pl.DataFrame:
        """Changed fields, before and after (``v_changes``), by run, key, time and field: one
        run's, the last ``last_runs`` runs', or all. A file older than migration 007 (opened
        read-only, not migrated) has none."""
        if not self._run(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'v_changes'"
        )[0][0]:
            return pl.DataFrame(schema=V_CHANGES_SCHEMA)
        where, params = "", dict[str, Any]()
        if run_id is not None:
            where, params = "WHERE run_id = $run", {"run": run_id}
        elif last_runs is not None:
            where = "WHERE run_id IN (SELECT run_id FROM runs ORDER BY started_at DESC LIMIT $n)"
            params = {"n": last_runs}
        return self._frame(
            f"SELECT * FROM v_changes {where}"
            " ORDER BY started_at, run_id, external_id, occurred_at, field",
            params,
        )

    def drift(self, limit: int = 50) -> pl.DataFrame:
        """The most recent remote edits made outside custsync (``v_drift``)."""
        return self._frame("SELECT * FROM v_drift ORDER BY occurred_at DESC LIMIT ?", [limit])

    def latency(self) -> pl.DataFrame:
        """Call latency percentiles per operation (``v_call_latency``)."""
        return self._frame("SELECT * FROM v_call_latency ORDER BY target, operation")

    def run_counts(self, run_id: str) -> RunCounts:
        """Plan rows, outcomes, calls and rejects of one run, counted."""
        planned = {
            str(action): int(n)
            for action, n in self._run(
                "SELECT action, count(*) FROM plan WHERE run_id = ? GROUP BY action", [run_id]
            )
        }
        outcomes = tuple(
            OutcomeCount(str(action), str(result), int(n), int(drifted))
            for action, result, n, drifted in self._run(
                """SELECT action, result, count(*), count(*) FILTER (WHERE len(drift_fields) > 0)
                   FROM outcomes WHERE run_id = ? GROUP BY action, result""",
                [run_id],
            )
        )
        # An aggregate without GROUP BY always gives one row.
        ((calls, retries, http_429),) = self._run(
            """SELECT count(*), count(*) FILTER (WHERE attempt > 1),
                      count(*) FILTER (WHERE status = 429)
               FROM calls WHERE run_id = ?""",
            [run_id],
        )
        ((rejected,),) = self._run(
            "SELECT count(DISTINCT coalesce(external_id, '')) FROM rejects WHERE run_id = ?",
            [run_id],
        )
        return RunCounts(
            planned=planned,
            outcomes=outcomes,
            calls=int(calls),
            retries=int(retries),
            http_429=int(http_429),
            rejected=int(rejected),
        )
