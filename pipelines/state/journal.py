"""The journal of intents and the batch write that closes them.

A batch's intents are committed ``pending`` before its calls are made
(:meth:`Journal.open_journal`); :meth:`Journal.record_batch` then records its calls, outcomes
and snapshot rows and closes those intents in ONE transaction, so a crash loses at most the
batch in flight and leaves its intents pending for the next run to reconcile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from pipelines.state.base import adapts_memory
from pipelines.state.frames import CALLS_SCHEMA, CHANGES_SCHEMA, OUTCOMES_SCHEMA, SNAPSHOT_SCHEMA
from pipelines.state.ownership import Ownership, refuse_outcomes
from pipelines.state.plan import BASED, MERGE_BASE, SNAPSHOT_JOIN
from pipelines.state.publish import batch_committed
from transforms.actions import BASED_ACTIONS


class Journal(Ownership):
    """Opening intents, reading the pending ones, and recording a batch (which refuses an
    upsert of a remote id another key owns: :class:`~pipelines.state.ownership.Ownership`)."""

    @adapts_memory
    def open_journal(self, run_id: str, target: str, plan_ids: Sequence[str]) -> None:
        """Record intents as ``pending`` and commit, before the batch's calls are made."""
        if not plan_ids:
            return
        frame = pl.DataFrame({"plan_id": list(plan_ids)}, schema={"plan_id": pl.String})
        with self.transaction():
            self._insert(
                frame,
                "INSERT INTO journal"
                " SELECT $run_id, $target, plan_id, 'pending', now(), NULL, NULL FROM {batch}",
                {"run_id": run_id, "target": target},
            )

    @adapts_memory
    def pending_journal(self, target: str) -> pl.DataFrame:
        """Intents still pending (a crashed run's batch in flight), with their plan rows.

        Columns: ``run_id, plan_id, opened_at`` and the plan row's ``external_id, action,
        status, remote_id, payload, content_hash, base_payload, reason, content_key``.
        """
        return self._frame(
            f"""
            SELECT j.run_id, j.plan_id, j.opened_at, p.external_id, p.action, p.status,
                   p.remote_id, p.payload, p.content_hash, {MERGE_BASE}, p.reason,
                   p.content_key
            FROM journal j
            JOIN plan p ON p.run_id = j.run_id AND p.plan_id = j.plan_id
            {SNAPSHOT_JOIN}
            WHERE j.target = $target AND j.state = 'pending'
            ORDER BY j.opened_at, p.external_id
            """,
            {"target": target},
        )

    def record_batch(
        self,
        run_id: str,
        target: str,
        *,
        calls: pl.DataFrame,
        outcomes: pl.DataFrame,
        snapshot_upserts: pl.DataFrame,
        snapshot_deletes: Sequence[str],
        changes: pl.DataFrame | None = None,
    ) -> int:
        """Record one executed batch in ONE transaction (all of it, or none of it).

        Inserts ``calls`` (:data:`~pipelines.state.frames.CALLS_SCHEMA`) and ``outcomes``
        (:data:`~pipelines.state.frames.OUTCOMES_SCHEMA`), upserts ``snapshot_upserts``
        (:data:`~pipelines.state.frames.SNAPSHOT_SCHEMA`; confirmed successes only) and
        deletes the ``snapshot_deletes`` keys, and closes the journal entries of the
        outcomes' plan ids (whichever run opened them). ``changes``
        (:data:`~pipelines.state.frames.CHANGES_SCHEMA`) are the batch's changed fields. The
        run's plan rows of the batch's updates, closes and deletes get the ``base_payload``
        they were executed against (the key's snapshot payload, read before this batch moves
        it), unless they carry one. ``run_id`` and ``target`` columns are set from the
        arguments.

        A remote id belongs to at most one key: an upsert giving a key a remote id that
        another key holds (in the snapshot, or earlier in this batch) is refused. Its snapshot
        row is not written, its ``succeeded``/``adopted`` outcome is recorded as ``failed``
        (``REMOTE_ID_OWNED``) and the key is listed in ``remote_id_conflicts``, so that the next
        run looks for its customer before creating one. Returns the number of refused rows.
        """
        params = {"run_id": run_id, "target": target}
        calls = _conform(calls, CALLS_SCHEMA, params)
        outcomes = _conform(outcomes, OUTCOMES_SCHEMA, params)
        changed = _conform(
            changes if changes is not None else pl.DataFrame(), CHANGES_SCHEMA, params
        )
        upserts = _conform(snapshot_upserts, SNAPSHOT_SCHEMA, {}).unique(
            "external_id", keep="last", maintain_order=True
        )
        deletes = pl.DataFrame(
            {"external_id": list(snapshot_deletes)}, schema={"external_id": pl.String}
        )
        closing = outcomes.select(pl.col("plan_id").drop_nulls().unique())
        based = outcomes.filter(
            pl.col("plan_id").is_not_null() & pl.col("action").is_in(BASED_ACTIONS)
        ).select("plan_id", "external_id")
        refused, outcomes = self._write_batch(
            params,
            calls=calls,
            outcomes=outcomes,
            changed=changed,
            upserts=upserts,
            deletes=deletes,
            closing=closing,
            based=based,
        )
        batch_committed(self, run_id, calls=calls, outcomes=outcomes, changes=changed)
        return refused.height

    @adapts_memory
    def _write_batch(
        self,
        params: dict[str, str],
        *,
        calls: pl.DataFrame,
        outcomes: pl.DataFrame,
        changed: pl.DataFrame,
        upserts: pl.DataFrame,
        deletes: pl.DataFrame,
        closing: pl.DataFrame,
        based: pl.DataFrame,
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """:meth:`record_batch`'s transaction (run again whole if DuckDB needed more memory);
        the refused rows and the outcomes as recorded."""
        target = params["target"]
        with self.transaction():
            refused = self._owned_elsewhere(target, upserts, deletes)
            if refused.height:
                upserts = upserts.join(refused, on="external_id", how="anti")
                outcomes = refuse_outcomes(outcomes, refused)
                self._insert(
                    refused,
                    "INSERT INTO remote_id_conflicts SELECT $target, external_id, remote_id,"
                    " kept_by, payload, 'refused', $run_id, now() FROM {batch}",
                    params,
                )
            if calls.height:
                self._insert(calls, "INSERT INTO calls SELECT * FROM {batch}", {})
            if outcomes.height:
                self._insert(outcomes, "INSERT INTO outcomes SELECT * FROM {batch}", {})
            if changed.height:
                self._insert(changed, "INSERT INTO changes SELECT * FROM {batch}", {})
            if based.height:
                # Before the snapshot moves: the merge base is the key's payload until then.
                # The batch's keys are looked up first: joining the whole snapshot took 50 ms
                # a batch (1,000 of 500,000 keys), this 5 ms.
                self._insert(
                    based,
                    "UPDATE plan SET base_payload = s.payload FROM ("
                    " SELECT external_id, payload FROM snapshot WHERE target = $target"
                    " AND external_id IN (SELECT external_id FROM {batch})) s"
                    " WHERE plan.run_id = $run_id AND plan.target = $target"
                    f" AND plan.action IN ({BASED}) AND plan.base_payload IS NULL"
                    " AND plan.plan_id IN (SELECT plan_id FROM {batch})"
                    " AND s.external_id = plan.external_id",
                    params,
                )
            if closing.height:
                self._insert(
                    closing,
                    "UPDATE journal SET state = 'done', closed_at = now(), closed_run_id = $run_id"
                    " WHERE target = $target AND state = 'pending'"
                    " AND plan_id IN (SELECT plan_id FROM {batch})",
                    params,
                )
            if deletes.height:
                # Before the upserts: a key gone this batch no longer holds its remote id.
                self._insert(
                    deletes,
                    "DELETE FROM snapshot WHERE target = $target"
                    " AND external_id IN (SELECT external_id FROM {batch})",
                    {"target": target},
                )
            if upserts.height:
                self._insert(
                    upserts,
                    "INSERT OR REPLACE INTO snapshot (target, external_id, remote_id,"
                    " content_hash, payload, status, synced_at, run_id, content_key)"
                    " SELECT $target, external_id, remote_id, content_hash, payload, status,"
                    " now(), $run_id, content_key FROM {batch}",
                    params,
                )
        return refused, outcomes


def _conform(frame: pl.DataFrame, schema: pl.Schema, params: Mapping[str, Any]) -> pl.DataFrame:
    """The frame with exactly ``schema``'s columns, in order, run_id/target from ``params``."""
    if frame.height == 0:  # e.g. pl.DataFrame([]) from an empty list: no columns at all
        return pl.DataFrame(schema=schema)
    missing = [n for n in schema.names() if n not in frame.columns and n not in params]
    if missing:
        raise ValueError(f"missing column(s): {', '.join(missing)}")
    return frame.with_columns(
        pl.lit(value, pl.String).alias(name) for name, value in params.items()
    ).select(pl.col(name).cast(dtype) for name, dtype in schema.items())
