"""The reads behind the HTML report (``custsync report --html``): per-run trends and records.

Each method reads the runs chosen by :meth:`ReportReads.select_runs` (the last ``n`` by start
time) and returns a tidy frame, one row per run and category, that a chart plots as it is.
Like :class:`~pipelines.state.queries.AuditQueries` it works on any connection to a state
file, and reads the documented tables and views (README, "The DuckDB file").
"""

from __future__ import annotations

import polars as pl

from pipelines.state.base import StateBase

_CHOSEN = "__report_runs"
"""The temporary table holding the chosen run ids (a read-only file allows TEMP tables)."""

_RECORDS = f"""
    SELECT o.run_id, o.target, o.external_id, o.result AS kind, o.action,
           NULL::VARCHAR AS field, coalesce(o.error_code, o.error_class) AS code,
           o.http_status, o.message, NULL::VARCHAR AS value, o.occurred_at
    FROM outcomes o JOIN {_CHOSEN} USING (run_id)
    WHERE o.result IN ('failed', 'ambiguous')
    UNION ALL
    SELECT j.run_id, j.target, j.external_id, 'rejected', NULL, j.field, j.rule, NULL,
           j.message, j.value, j.rejected_at
    FROM rejects j JOIN {_CHOSEN} USING (run_id)"""
"""``v_failures``' rows of the chosen runs, with a reject's (masked) value."""


class ReportReads(StateBase):
    """Reads of the chosen runs for the HTML report. Call :meth:`select_runs` first."""

    def select_runs(self, last: int, run_id: str | None = None) -> pl.DataFrame:
        """Choose the last ``last`` runs (or the one ``run_id``) and return them oldest first
        (``v_runs``' columns, each run's reason and its call latency percentiles)."""
        self._run(
            f"CREATE OR REPLACE TEMP TABLE {_CHOSEN} AS SELECT run_id FROM runs"
            " WHERE $run IS NULL OR run_id = $run ORDER BY started_at DESC LIMIT $last",
            {"run": run_id, "last": last},
        )
        return self._frame(
            f"""
            WITH lat AS (
                SELECT run_id,
                       round(quantile_cont(latency_ms, 0.50), 1) AS p50_ms,
                       round(quantile_cont(latency_ms, 0.95), 1) AS p95_ms,
                       round(quantile_cont(latency_ms, 0.99), 1) AS p99_ms
                FROM calls JOIN {_CHOSEN} USING (run_id) GROUP BY run_id)
            SELECT v.run_id, v.flow, v.target, v.mode, v.dry_run, v.status, v.exit_code,
                   v.started_at, v.duration_s, v.planned, v.succeeded, v.failed, v.rejected,
                   v.drift, v.calls, v.retries, v.http_429, lat.p50_ms, lat.p95_ms,
                   lat.p99_ms, r.summary->>'message' AS reason
            FROM v_runs v JOIN {_CHOSEN} USING (run_id) JOIN runs r USING (run_id)
            LEFT JOIN lat USING (run_id)
            ORDER BY v.started_at, v.run_id"""
        )

    def outcomes_by_action(self) -> pl.DataFrame:
        """``run_id, action, result, n``: outcomes per run, action and result."""
        return self._frame(
            f"""SELECT run_id, action, result, count(*) AS n
                FROM outcomes JOIN {_CHOSEN} USING (run_id)
                GROUP BY ALL ORDER BY run_id, action, result"""
        )

    def rejects_by_rule(self) -> pl.DataFrame:
        """``run_id, rule, n``: refused fields per run and rule (a row may break several)."""
        return self._frame(
            f"""SELECT run_id, rule, count(*) AS n FROM rejects JOIN {_CHOSEN} USING (run_id)
                GROUP BY ALL ORDER BY run_id, rule"""
        )

    def failures_by_code(self) -> pl.DataFrame:
        """``run_id, code, n``: failed or ambiguous outcomes per run and error code (the
        error class when the provider gave no code)."""
        return self._frame(
            f"""SELECT run_id, coalesce(error_code, error_class, 'unknown') AS code,
                       count(*) AS n
                FROM outcomes JOIN {_CHOSEN} USING (run_id)
                WHERE result IN ('failed', 'ambiguous') GROUP BY ALL ORDER BY run_id, code"""
        )

    def drift_by_field(self) -> pl.DataFrame:
        """``run_id, field, n``: remote edits made outside custsync, per run and field."""
        return self._frame(
            f"""SELECT run_id, field, count(*) AS n FROM v_drift JOIN {_CHOSEN} USING (run_id)
                GROUP BY ALL ORDER BY run_id, field"""
        )

    def records(self, limit: int) -> tuple[pl.DataFrame, int]:
        """The first ``limit`` failed, ambiguous and rejected records of the chosen runs
        (newest run first), and how many there are in all."""
        rows = self._frame(
            f"SELECT * FROM ({_RECORDS}) ORDER BY run_id DESC, external_id NULLS FIRST, kind, "
            "field LIMIT ?",
            [limit],
        )
        ((total,),) = self._run(f"SELECT count(*) FROM ({_RECORDS})")
        return rows, int(total)

    def customer_history(self, limit: int) -> pl.DataFrame:
        """``v_customer_history``'s outcomes and rejects of the chosen runs, by key and time
        (at most ``limit`` rows, the newest kept). Its change rows (migration 007) are left to
        :meth:`changes`."""
        outcomes_only = "AND h.kind <> 'change'" if self._has("v_customer_history", "kind") else ""
        return self._frame(
            f"""SELECT * FROM (
                    SELECT h.* FROM v_customer_history h JOIN {_CHOSEN} USING (run_id)
                    WHERE h.external_id IS NOT NULL {outcomes_only}
                    ORDER BY h.occurred_at DESC LIMIT ?)
                ORDER BY external_id, occurred_at""",
            [limit],
        )

    def changes(self, limit: int) -> pl.DataFrame | None:
        """``v_changes`` of the chosen runs: every field written, before and after, by key,
        time and field (at most ``limit`` rows, the newest kept); ``None`` for a file older
        than migration 007 (a report opens it read-only, unmigrated), which recorded none."""
        if not self._has("v_changes"):
            return None
        return self._frame(
            f"""SELECT * FROM (
                    SELECT c.* FROM v_changes c JOIN {_CHOSEN} USING (run_id)
                    ORDER BY c.occurred_at DESC, c.field LIMIT ?)
                ORDER BY external_id, occurred_at, target, field""",
            [limit],
        )

    def _has(self, relation: str, column: str | None = None) -> bool:
        """Whether the file has this table or view (and column): older files lack newer ones."""
        ((n,),) = self._run(
            "SELECT count(*) FROM information_schema.columns"
            " WHERE table_name = ? AND (? IS NULL OR column_name = ?)",
            [relation, column, column],
        )
        return bool(n)
