"""What the next plan reads: the snapshot of what each target holds, and the keys whose last
outcome failed (retried, or quarantined) or whose instrument deactivation already succeeded."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from pipelines.state.base import StateBase, adapts_memory
from transforms.actions import Action

SNAPSHOT_COLUMNS = (
    "external_id",
    "remote_id",
    "content_hash",
    "payload",
    "status",
    "synced_at",
    "run_id",
    "content_key",
)
DIFF_COLUMNS = ("external_id", "content_key", "status")
"""The snapshot columns a diff needs (see :func:`transforms.planner.build_plan`)."""


class Snapshot(StateBase):
    """Reads of the ``snapshot`` table and of earlier outcomes, for planning."""

    @adapts_memory
    def snapshot(
        self, target: str, *, payloads: bool = True, columns: Sequence[str] | None = None
    ) -> pl.DataFrame:
        """The target's snapshot: ``external_id, remote_id, content_hash, payload, status,
        synced_at, run_id``, in no particular order.

        ``payloads=False`` leaves ``payload`` out, and ``columns`` picks columns: diffing
        millions of keys needs only :data:`DIFF_COLUMNS` (:meth:`write_plan` fills in the
        remote ids and merge bases of the rows it stores).
        """
        names = list(columns) if columns is not None else list(SNAPSHOT_COLUMNS)
        if not payloads and columns is None:
            names.remove("payload")
        unknown = set(names) - set(SNAPSHOT_COLUMNS)
        if unknown:
            raise ValueError(f"not snapshot columns: {', '.join(sorted(unknown))}")
        return self._frame(
            f"SELECT {', '.join(names)} FROM snapshot WHERE target = $target",
            {"target": target},
        )

    @adapts_memory
    def failures(self, target: str) -> pl.DataFrame:
        """Keys whose latest outcome (``skipped`` aside) failed or was ambiguous.

        A refusal of the credentials (``error_class = 'AuthError'``, 401/403) says nothing about
        the record and is left aside too: a few runs with a revoked key must not quarantine
        every key they tried.

        Columns: ``external_id, action, failed_runs`` (runs with a failure since the last
        success), ``last_error``, ``content_hash`` (of the failed action, so that a key
        quarantined by :func:`~transforms.diff.plan_actions` is released when it changes).
        """
        return self._frame(
            """
            WITH o AS (
                SELECT *, row_number() OVER (
                    PARTITION BY external_id ORDER BY occurred_at DESC, run_id DESC) AS rn
                FROM outcomes WHERE target = $target AND result <> 'skipped'
                  AND error_class IS DISTINCT FROM 'AuthError'
            ),
            latest AS (SELECT * FROM o WHERE rn = 1 AND result IN ('failed', 'ambiguous')),
            last_ok AS (
                SELECT external_id, max(occurred_at) AS ok_at FROM outcomes
                WHERE target = $target AND result IN ('succeeded', 'adopted')
                GROUP BY external_id
            ),
            counted AS (
                SELECT f.external_id, count(DISTINCT f.run_id) AS failed_runs
                FROM outcomes f JOIN latest l USING (external_id)
                LEFT JOIN last_ok k USING (external_id)
                WHERE f.target = $target AND f.result IN ('failed', 'ambiguous')
                  AND f.error_class IS DISTINCT FROM 'AuthError'
                  AND (k.ok_at IS NULL OR f.occurred_at > k.ok_at)
                GROUP BY f.external_id
            )
            SELECT l.external_id, l.action, c.failed_runs::INTEGER AS failed_runs,
                   nullif(concat_ws(': ', l.error_code, l.message), '') AS last_error,
                   p.content_hash
            FROM latest l JOIN counted c USING (external_id)
            -- a plan id fixes its content hash, whichever run planned it (a crashed run's
            -- action is recorded by the run that reconciles it)
            LEFT JOIN (
                SELECT plan_id, any_value(content_hash) AS content_hash FROM plan
                WHERE target = $target AND plan_id IN (SELECT plan_id FROM latest)
                GROUP BY plan_id
            ) p ON p.plan_id = l.plan_id
            ORDER BY l.external_id
            """,
            {"target": target},
        )

    def succeeded_plan_ids(self, target: str, action: Action) -> set[str]:
        """Plan ids of ``target``'s ``action`` rows that succeeded in any run (an explicit
        deactivation done once is not planned again)."""
        rows = self._run(
            "SELECT DISTINCT plan_id FROM outcomes WHERE target = ? AND action = ?"
            " AND result = 'succeeded'",
            [target, action],
        )
        return {plan_id for (plan_id,) in rows}
