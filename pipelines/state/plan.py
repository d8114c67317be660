"""A run's plan, stored before anything is sent, and its validation rejects.

A stored plan row is complete: its remote id and content hash come from the snapshot when the
diff did not know them (:meth:`Plan.write_plan`), and the merge base of an update or close (a
delete's last payload) is the key's snapshot payload, joined in when the plan is read rather
than copied into a million-row write (a key's snapshot row changes only when that key's own
action is recorded; see docs/state.md). It is stored later: when the action's batch is
recorded (``record_batch``), or when the run finishes for rows not executed
(:meth:`Plan.keep_bases`).
"""

from __future__ import annotations

import polars as pl

from connectors.providers.registry import describe
from pipelines.state.base import StateBase, adapts_memory
from pipelines.state.publish import run_changed
from transforms.actions import BASED_ACTIONS
from transforms.diff import PLAN_SCHEMA
from transforms.twins import Twins

BASED = ", ".join(f"'{action}'" for action in BASED_ACTIONS)
"""SQL: the actions whose plan row has a ``base_payload`` (a list for ``IN (...)``)."""
NEEDS_BASE = f"p.action IN ({BASED}) AND p.base_payload IS NULL"
"""SQL: plan row ``p`` takes its merge base from the snapshot."""
SNAPSHOT_JOIN = (
    f"LEFT JOIN snapshot s ON {NEEDS_BASE} AND s.target = p.target"
    " AND s.external_id = p.external_id"
)
"""SQL: the snapshot rows ``s`` holding the merge bases of plan rows ``p``."""
MERGE_BASE = (
    f"CASE WHEN p.action IN ({BASED}) THEN coalesce(p.base_payload, s.payload) END AS base_payload"
)
"""SQL: the ``base_payload`` column of plan row ``p``: the stored one, else the snapshot's."""

_PLAN_TABLE_COLUMNS = (
    "run_id",
    "target",
    "plan_id",
    "external_id",
    "action",
    "status",
    "remote_id",
    "payload",
    "content_hash",
    "base_payload",
    "reason",
    "planned_at",
    "content_key",
)


class Plan(StateBase):
    """Writing and reading the ``plan`` and ``rejects`` tables."""

    def write_rejects(self, run_id: str, target: str, rejects: pl.DataFrame) -> int:
        """Store a run's rejects (:data:`transforms.validate.REJECTS_SCHEMA`); return the count."""
        if rejects.height == 0:
            return 0
        source_row = pl.col("source_row") if "source_row" in rejects.columns else pl.lit(None)
        frame = rejects.select(
            "external_id",
            "field",
            "rule",
            "message",
            "value",
            source_row.cast(pl.Int64).alias("source_row"),
        )
        self._insert_rejects(run_id, target, frame)
        run_changed(self, run_id)  # its planned / rejected counts (pipelines.state.publish)
        return frame.height

    @adapts_memory
    def _insert_rejects(self, run_id: str, target: str, frame: pl.DataFrame) -> None:
        with self.transaction():
            self._insert(
                frame,
                "INSERT INTO rejects SELECT $run_id, $target, external_id, field, rule, message,"
                " value, source_row, now() FROM {batch}",
                {"run_id": run_id, "target": target},
            )

    def write_plan(self, run_id: str, target: str, plan: pl.DataFrame) -> int:
        """Store a run's plan (:data:`transforms.diff.PLAN_SCHEMA`) before anything is sent.

        ``unchanged`` rows are not stored (millions of them would say nothing an auditor
        needs; count them in the run summary). A missing ``remote_id`` or ``content_hash`` (a
        delete's) is filled in from the snapshot here, so that the diff can run on content keys
        alone. The ``base_payload`` of an update or close is stored only when the plan carries
        one: otherwise it is the snapshot's payload, which :meth:`plan` and
        :meth:`pending_journal` join in when read.
        Returns the number of rows stored.
        """
        frame = (
            plan.filter(pl.col("action") != "unchanged")
            .select(PLAN_SCHEMA.names())
            .with_columns(
                pl.when(pl.col("action").is_in(BASED_ACTIONS))
                .then(pl.col("base_payload"))
                .alias("base_payload")
            )
        )
        if frame.height == 0:
            return 0
        self._insert_plan(run_id, target, frame)
        run_changed(self, run_id)  # its planned / rejected counts (pipelines.state.publish)
        return frame.height

    @adapts_memory
    def _insert_plan(self, run_id: str, target: str, frame: pl.DataFrame) -> None:
        with self.transaction():
            # Only the keys lacking a remote id are looked up, on the keys alone: joining the
            # snapshot's payloads here took most of the write at 10M rows.
            self._run(
                """
                INSERT INTO plan ({columns})
                SELECT $run_id, $target, b.plan_id, b.external_id, b.action, b.status,
                       coalesce(b.remote_id, s.remote_id), b.payload,
                       coalesce(b.content_hash, s.content_hash), b.base_payload, b.reason,
                       now(), b.content_key
                FROM {batch} b
                LEFT JOIN (
                    SELECT s.external_id, s.remote_id, s.content_hash FROM snapshot s
                    SEMI JOIN {missing} m ON m.external_id = s.external_id
                    WHERE s.target = $target
                ) s ON s.external_id = b.external_id
                """.format(
                    columns=", ".join(_PLAN_TABLE_COLUMNS),
                    batch=self._register(frame),
                    missing=self._register(
                        frame.filter(
                            pl.col("remote_id").is_null() | pl.col("content_hash").is_null()
                        ).select("external_id")
                    ),
                ),
                {"run_id": run_id, "target": target},
            )

    def keep_bases(self, run_id: str, target: str) -> None:
        """Store the ``base_payload`` of the run's updates, closes and deletes that have none:
        those never executed (a dry run's, a stopped run's), whose snapshot rows have not
        moved since the plan was made. (An executed row gets its base when its batch is
        recorded.) Only the run's keys are looked up in the snapshot."""
        with self.transaction():
            self._run(
                f"""
                UPDATE plan SET base_payload = s.payload FROM (
                    SELECT external_id, payload FROM snapshot
                    WHERE target = $target AND external_id IN (
                        SELECT external_id FROM plan WHERE run_id = $run_id
                        AND action IN ({BASED}) AND base_payload IS NULL)
                ) s
                WHERE plan.run_id = $run_id AND plan.action IN ({BASED})
                  AND plan.base_payload IS NULL AND s.external_id = plan.external_id
                """,
                {"run_id": run_id, "target": target},
            )

    def plan(self, run_id: str) -> pl.DataFrame:
        """A run's stored plan: :data:`~transforms.diff.PLAN_SCHEMA` columns plus ``target``
        and ``planned_at``, in plan order (``external_id``, ``action``, ``plan_id``).

        ``base_payload`` of an update or close is the stored one, else the key's snapshot
        payload (unchanged until that key's own action is recorded).
        """
        return self.plan_rows(run_id)

    @adapts_memory
    def plan_rows(
        self,
        run_id: str,
        start: tuple[str, str, str] | None = None,
        end: tuple[str, str, str] | None = None,
    ) -> pl.DataFrame:
        """The rows of :meth:`plan` from key ``start`` (included) to ``end`` (excluded), keys
        being ``(external_id, action, plan_id)``; ``None``: from the first, to the last. A run
        reads its plan a batch at a time with it (:meth:`plan_starts` gives the keys)."""
        columns = ", ".join(
            MERGE_BASE if name == "base_payload" else f"p.{name}" for name in PLAN_SCHEMA.names()
        )
        params: dict[str, object] = {"run_id": run_id}
        where = "run_id = $run_id"
        # The plain external_id bounds are what DuckDB can check against its per-block
        # min/max and skip the rest of the table; the tuples decide at the edges.
        if start is not None:
            where += " AND external_id >= $e0 AND (external_id, action, plan_id) >= ($e0, $a0, $p0)"
            params.update(e0=start[0], a0=start[1], p0=start[2])
        if end is not None:
            where += " AND external_id <= $e1 AND (external_id, action, plan_id) < ($e1, $a1, $p1)"
            params.update(e1=end[0], a1=end[1], p1=end[2])
        # The snapshot's payloads are fetched by row id for the keys found by a join on keys
        # alone: joining on the keys with the payload column scanned every payload of the
        # target (0.9 s instead of 0.3 s for 500,000 bases among 10M keys). Sorting here
        # rather than in SQL spares DuckDB sorting the payloads (0.5 s for 700,000 rows).
        frame = self._frame(
            f"""
            WITH p AS MATERIALIZED (SELECT * FROM plan WHERE {where}),
            found AS MATERIALIZED (
                SELECT s.rowid AS row FROM snapshot s SEMI JOIN p
                ON {NEEDS_BASE} AND s.target = p.target AND s.external_id = p.external_id
            ),
            s AS (SELECT target, external_id, payload FROM snapshot
                  WHERE rowid IN (SELECT row FROM found))
            SELECT {columns}, p.target, p.planned_at FROM p
            LEFT JOIN s ON {NEEDS_BASE} AND s.target = p.target
                AND s.external_id = p.external_id
            """,
            params,
        )
        return frame.sort("external_id", "action", "plan_id")

    @adapts_memory
    def plan_starts(self, run_id: str, batch_size: int) -> list[tuple[str, str, str]]:
        """The key ``(external_id, action, plan_id)`` of the first row of each batch of
        ``batch_size`` rows of the run's plan, in plan order."""
        rows = self._run(
            """
            SELECT external_id, action, plan_id FROM (
                SELECT external_id, action, plan_id,
                       row_number() OVER (ORDER BY external_id, action, plan_id) - 1 AS n
                FROM plan WHERE run_id = $run_id
            ) WHERE n % $size = 0 ORDER BY n
            """,
            {"run_id": run_id, "size": max(batch_size, 1)},
        )
        return [(str(e), str(a), str(p)) for e, a, p in rows]

    def plan_creates(self, run_id: str) -> pl.DataFrame:
        """The run's planned creates as :func:`transforms.twins.find_twins` reads them:
        ``external_id``, ``action``, ``content_key``, and the ``payload`` only of a row
        without a content key (the only one twins are found by payload)."""
        return self._frame(
            """
            SELECT external_id, action, content_key,
                   CASE WHEN content_key IS NULL THEN payload END AS payload
            FROM plan WHERE run_id = $run_id AND action = 'create'
            """,
            {"run_id": run_id},
        )

    @adapts_memory
    def plan_twins(self, run_id: str, target: str) -> Twins:
        """The twins of the run's planned creates, found in the state file: what
        :func:`transforms.twins.find_twins` finds in :meth:`plan_creates` (a test checks it),
        without reading every create (a migration's are all its customers: issue 14).

        Creates with the same content key (or, lacking one, the same payload) are twins; a
        group's label is its lowest ``external_id``. Client-chosen ids (SumUp) have none.
        """
        if describe(target).client_id is not None:
            return Twins()
        rows = self._run(
            """
            WITH c AS (
                SELECT external_id,
                       coalesce(CAST(content_key AS VARCHAR), payload) AS twin
                FROM plan WHERE run_id = $run_id AND action = 'create'
            ),
            doubled AS (
                SELECT twin, min(external_id) AS label FROM c WHERE twin IS NOT NULL
                GROUP BY twin HAVING count(*) > 1
            )
            SELECT c.external_id, d.label FROM c JOIN doubled d USING (twin)
            """,
            {"run_id": run_id},
        )
        return Twins(group_of={str(key): str(label) for key, label in rows})

    def drop_plan(self, run_id: str) -> None:
        """Delete the run's plan rows: a run stopped while planning stores no plan (its
        parts are stored as they are built)."""
        with self.transaction():
            self._run("DELETE FROM plan WHERE run_id = $run_id", {"run_id": run_id})

    @adapts_memory
    def planned_count(self, run_id: str, action: str | None = None) -> int:
        """How many rows the run's plan has (of ``action`` only, when given)."""
        rows = self._run(
            "SELECT count(*) FROM plan WHERE run_id = $run_id"
            " AND ($action IS NULL OR action = $action)",
            {"run_id": run_id, "action": action},
        )
        return int(rows[0][0])
