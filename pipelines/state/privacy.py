"""Personal data in the state file: the suppression list, erasure redaction and retention.

``custsync forget`` suppresses a key before anything is sent (:meth:`Privacy.suppress`), so
that no later extract re-creates it even when the erase is still to be confirmed; once the
provider confirmed the erase, :meth:`Privacy.redact_forgotten` redacts every personal column of
:data:`~pipelines.state.redaction.PERSONAL_COLUMNS` for those keys, in one transaction that
also marks them done. Retention (:meth:`Privacy.apply_retention`) redacts the columns that have
a time column, for rows older than a limit. Each redaction is recorded in ``redactions``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import polars as pl

from pipelines.state.base import StateBase
from pipelines.state.redaction import PERSONAL_COLUMNS, PersonalColumn, redact_json, retained


class Privacy(StateBase):
    """The ``suppressed`` and ``redactions`` tables (migration 010), and redaction."""

    def suppress(self, run_id: str, target: str, keys: pl.DataFrame) -> None:
        """Put ``keys`` (``external_id, remote_id``) on ``target``'s suppression list; a key
        already there keeps its first request (and its remote id, when this one has none)."""
        if keys.height == 0:
            return
        with self.transaction():
            self._insert(
                keys.select("external_id", "remote_id"),
                "INSERT INTO suppressed (target, external_id, remote_id, requested_at,"
                " requested_run_id) SELECT $target, external_id, remote_id, now(), $run_id"
                " FROM {batch} ON CONFLICT DO UPDATE SET"
                " remote_id = coalesce(suppressed.remote_id, excluded.remote_id)",
                {"target": target, "run_id": run_id},
            )

    def suppressed(self, target: str) -> pl.DataFrame:
        """``target``'s suppression list: ``external_id, remote_id, requested_at, erased_at,
        redacted_at`` (``redacted_at`` NULL: the erasure is not complete yet)."""
        return self._frame(
            "SELECT external_id, remote_id, requested_at, erased_at, redacted_at"
            " FROM suppressed WHERE target = $target ORDER BY external_id",
            {"target": target},
        )

    def forgotten_keys(self, target: str) -> pl.Series:
        """The keys no extract may send to ``target`` again (rule ``forgotten``)."""
        return self._frame(
            "SELECT external_id FROM suppressed WHERE target = $target", {"target": target}
        ).get_column("external_id")

    def known_keys(self, target: str, keys: Sequence[str]) -> pl.DataFrame:
        """Which of ``keys`` the state file knows for ``target``, with the remote id it last
        knew for each (NULL: never created there): ``external_id, remote_id``.

        A key is known when any table holds a row of it: the snapshot, a plan row, an
        outcome, a reject, a remote-id conflict or the suppression list. A remote id the
        snapshot gives another key is never this key's (it lost it: migration 005), so an
        erase never touches the keeper's customer.
        """
        frame = pl.DataFrame({"external_id": list(keys)}, schema={"external_id": pl.String})
        with self.transaction():
            name = self._register(frame)
            return self._frame(
                f"""
                WITH remote AS (
                    SELECT external_id, remote_id, 3 AS rank, synced_at AS seen_at FROM snapshot
                    WHERE target = $target AND remote_id IS NOT NULL
                    UNION ALL
                    SELECT external_id, remote_id, 2, requested_at FROM suppressed
                    WHERE target = $target AND remote_id IS NOT NULL
                    UNION ALL
                    SELECT external_id, remote_id, 1, occurred_at FROM outcomes
                    WHERE target = $target AND remote_id IS NOT NULL
                      AND result IN ('succeeded', 'adopted')
                ),
                latest AS (
                    SELECT external_id, remote_id FROM (
                        SELECT *, row_number() OVER (
                            PARTITION BY external_id ORDER BY rank DESC, seen_at DESC) AS rn
                        FROM remote r
                        -- never a remote id another key owns now (one this key lost: 005)
                        WHERE NOT EXISTS (
                            SELECT 1 FROM snapshot o WHERE o.target = $target
                              AND o.remote_id = r.remote_id AND o.external_id <> r.external_id))
                    WHERE rn = 1
                ),
                seen AS (
                    SELECT external_id FROM plan WHERE target = $target
                    UNION SELECT external_id FROM outcomes WHERE target = $target
                    UNION SELECT external_id FROM rejects WHERE target = $target
                    UNION SELECT external_id FROM remote_id_conflicts WHERE target = $target
                    UNION SELECT external_id FROM suppressed WHERE target = $target
                    UNION SELECT external_id FROM latest
                )
                SELECT k.external_id, l.remote_id
                FROM {name} k JOIN seen s USING (external_id)
                LEFT JOIN latest l USING (external_id)
                ORDER BY k.external_id
                """,
                {"target": target},
            )

    def erase_results(self, run_id: str, plan_ids: Sequence[str]) -> dict[str, bool]:
        """Key -> whether its ``erase`` in ``plan_ids`` succeeded in run ``run_id`` (a key
        without an outcome there is ``False``)."""
        frame = pl.DataFrame({"plan_id": list(plan_ids)}, schema={"plan_id": pl.String})
        with self.transaction():
            name = self._register(frame)
            rows = self._run(
                f"""
                SELECT p.external_id, bool_or(o.result = 'succeeded') IS TRUE
                FROM plan p JOIN {name} b USING (plan_id)
                LEFT JOIN outcomes o ON o.run_id = p.run_id AND o.plan_id = p.plan_id
                WHERE p.run_id = $run_id
                GROUP BY p.external_id ORDER BY p.external_id
                """,
                {"run_id": run_id},
            )
        return {str(key): bool(ok) for key, ok in rows}

    def redact_forgotten(self, run_id: str, target: str, keys: Sequence[str]) -> int:
        """Redact every personal value of ``keys`` at ``target`` in every registered column,
        and mark them erased and redacted, in ONE transaction; returns the values redacted.

        Call it only for keys whose erase the provider confirmed (their snapshot rows went
        with the erase's outcome).
        """
        if not keys:
            return 0
        frame = pl.DataFrame({"external_id": list(keys)}, schema={"external_id": pl.String})
        total = 0
        with self.transaction():
            name = self._register(frame)
            for entry in PERSONAL_COLUMNS:
                only = f" AND {entry.only}" if entry.only else ""
                count = self._redact(
                    entry,
                    f"target = $target AND {entry.key} IN (SELECT external_id FROM {name}){only}",
                    {"target": target},
                )
                total += count
                self._log_redaction(run_id, "forget", target, entry.table, entry.column, count)
            self._run(
                f"UPDATE suppressed SET erased_at = coalesce(erased_at, now()),"
                f" redacted_at = now(), done_run_id = $run_id"
                f" WHERE target = $target AND external_id IN (SELECT external_id FROM {name})",
                {"target": target, "run_id": run_id},
            )
        return total

    def apply_retention(self, run_id: str, older_than: datetime) -> int:
        """Redact the retained columns' values in rows older than ``older_than`` (rows a
        pending action still needs excepted); returns the values redacted.

        Each column's pass is recorded in ``redactions`` (with 0 rows too): the rows older than
        the previous pass's limit were redacted then, so only the rows between the two limits
        are read, and those a pending action kept back then but has released since. Reading
        every old payload again on every run took 2 s per 200,000 rows here.
        """
        total = 0
        with self.transaction():
            for entry in retained():
                previous = self._run(
                    "SELECT max(older_than), max(redacted_at) FROM redactions"
                    " WHERE reason = 'retention' AND table_name = ? AND column_name = ?",
                    [entry.table, entry.column],
                )[0]
                since, last_pass = previous
                fresh = "TRUE" if since is None else f"{entry.retained_by} >= $since"
                if since is not None and entry.released_since:
                    fresh = f"({fresh} OR {entry.released_since})"
                extra = f" AND NOT ({entry.in_use})" if entry.in_use else ""
                extra += f" AND {entry.only}" if entry.only else ""
                params: dict[str, object] = {"cutoff": older_than}
                if since is not None:
                    params["since"] = since
                if since is not None and entry.released_since:
                    params["last_pass"] = last_pass
                count = self._redact(
                    entry, f"{entry.retained_by} < $cutoff AND {fresh}{extra}", params
                )
                total += count
                self._log_redaction(
                    run_id, "retention", None, entry.table, entry.column, count, older_than
                )
        return total

    def _redact(self, entry: PersonalColumn, where: str, params: Mapping[str, object]) -> int:
        """Redact ``entry`` in the rows ``where`` selects (inside the caller's transaction);
        returns how many values changed. A JSON payload is parsed and rewritten in Python
        (:func:`~pipelines.state.redaction.redact_json`), the others in SQL."""
        table, column = entry.table, entry.column
        if entry.how != "json":
            (count,) = self._run(
                f"UPDATE {table} SET {column} = {entry.redacted()}"
                f" WHERE {where} AND {entry.holds_values()}",
                dict(params),
            )[0]
            return int(count)
        found = self._frame(
            f"SELECT rowid AS rid, {column} AS old FROM {table}"
            f" WHERE {where} AND {entry.holds_values()}",
            dict(params),
        )
        if found.height == 0:
            return 0
        changed = found.with_columns(
            pl.col("old").map_elements(redact_json, return_dtype=pl.String).alias("new")
        ).filter(pl.col("new") != pl.col("old"))
        if changed.height:
            self._insert(
                changed.select("rid", "new"),
                f"UPDATE {table} SET {column} = b.new FROM {{batch}} b WHERE {table}.rowid = b.rid",
                {},
            )
        return changed.height

    def _log_redaction(
        self,
        run_id: str,
        reason: str,
        target: str | None,
        table: str,
        column: str,
        rows: int,
        older_than: datetime | None = None,
    ) -> None:
        self._run(
            "INSERT INTO redactions VALUES (?, ?, ?, ?, ?, ?, ?, now())",
            [run_id, reason, target, table, column, rows, older_than],
        )
