"""A remote id belongs to at most one key of a target: who owns which, and the refusal of an
upsert that would give a second key the same remote id (see migration 005, docs/state.md)."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from pipelines.state.base import StateBase


class Ownership(StateBase):
    """Which key holds a remote id, and the keys that lost one."""

    def remote_owners(self, target: str, remote_ids: Sequence[str]) -> dict[str, str]:
        """Which key of ``target``'s snapshot owns each of ``remote_ids`` (absent: none)."""
        if not remote_ids:
            return {}
        rows = self._run(
            "SELECT remote_id, external_id FROM snapshot WHERE target = ? AND remote_id IN"
            " (SELECT unnest(?::VARCHAR[]))",
            [target, list(dict.fromkeys(remote_ids))],
        )
        return {str(remote_id): str(key) for remote_id, key in rows}

    def unresolved_conflicts(self, target: str) -> set[str]:
        """Keys that lost (or were refused) a remote id another key owns, and have no snapshot
        row yet: before creating one of them, look for its customer (see migration 005)."""
        (any_conflict,) = self._run(
            "SELECT EXISTS (FROM remote_id_conflicts WHERE target = ?)", [target]
        )[0]
        if not any_conflict:
            return set()  # the usual case: no join with a snapshot of millions of rows
        rows = self._run(
            "SELECT DISTINCT c.external_id FROM remote_id_conflicts c"
            " ANTI JOIN snapshot s ON s.target = c.target AND s.external_id = c.external_id"
            " WHERE c.target = ?",
            [target],
        )
        return {str(key) for (key,) in rows}

    def _owned_elsewhere(
        self, target: str, upserts: pl.DataFrame, deletes: pl.DataFrame
    ) -> pl.DataFrame:
        """Upsert rows whose remote id another key holds: ``external_id, remote_id, kept_by,
        payload``. Holders are the snapshot's keys (but those deleted in this batch) and, for a
        remote id given to several keys of this batch, the first of them."""
        columns = pl.Schema(
            {
                "external_id": pl.String,
                "remote_id": pl.String,
                "kept_by": pl.String,
                "payload": pl.String,
            }
        )
        rows = upserts.filter(pl.col("remote_id").is_not_null())
        if rows.height == 0:
            return pl.DataFrame(schema=columns)
        # One scan of the snapshot's remote ids per batch (about 30 ms at a million rows here);
        # a unique index would do it per row, and made 1M-row upserts 15x slower (measured).
        batch, gone = self._register(rows), self._register(deletes)
        held = self._frame(
            f"""
            SELECT u.external_id, u.remote_id, s.external_id AS kept_by, u.payload
            FROM {batch} u
            JOIN snapshot s ON s.target = $target AND s.remote_id = u.remote_id
                AND s.external_id <> u.external_id
            WHERE s.external_id NOT IN (SELECT external_id FROM {gone})
            """,
            {"target": target},
        )
        first = rows.with_columns(
            pl.col("external_id").first().over("remote_id").alias("kept_by")
        ).filter(pl.col("external_id") != pl.col("kept_by"))
        return pl.concat([held.cast(columns), first.select(columns.names()).cast(columns)]).unique(
            "external_id", keep="first", maintain_order=True
        )


def refuse_outcomes(outcomes: pl.DataFrame, refused: pl.DataFrame) -> pl.DataFrame:
    """``outcomes`` with the successes of the ``refused`` rows turned into failures."""
    hit = pl.struct("external_id", "remote_id").is_in(
        refused.select(pl.struct("external_id", "remote_id")).to_series().implode()
    ) & pl.col("result").is_in(["succeeded", "adopted"])
    owner = dict(zip(refused["external_id"], refused["kept_by"], strict=True))
    message = pl.col("external_id").replace_strict(owner, default="another key")
    return outcomes.with_columns(
        pl.when(hit).then(pl.lit("failed")).otherwise(pl.col("result")).alias("result"),
        pl.when(hit)
        .then(pl.lit("StateConflict"))
        .otherwise(pl.col("error_class"))
        .alias("error_class"),
        pl.when(hit)
        .then(pl.lit("REMOTE_ID_OWNED"))
        .otherwise(pl.col("error_code"))
        .alias("error_code"),
        pl.when(hit)
        .then(
            pl.concat_str(
                pl.lit("remote id "),
                pl.col("remote_id"),
                pl.lit(" already belongs to "),
                message,
                pl.lit(": not recorded for this key; it is looked up again next run"),
            )
        )
        .otherwise(pl.col("message"))
        .alias("message"),
    )
