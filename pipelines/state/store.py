"""The DuckDB state store: snapshot, plan, journal and the audit log, in one file.

Opening a store applies pending migrations (``migrations/NNN_name.sql``, in order, each in
its own transaction together with its ``schema_version`` row). Frames go in and out through
Arrow in whole batches: per-row INSERTs run at about 1,000 rows/s here, Arrow batches at
hundreds of thousands. One process writes at a time (DuckDB's rule for a file).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import polars as pl

from pipelines.state.frames import CALLS_SCHEMA, OUTCOMES_SCHEMA, SNAPSHOT_SCHEMA
from transforms.diff import PLAN_SCHEMA
from transforms.mapping import content_key

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_DUCKDB_MAGIC = (8, b"DUCK")
"""Offset and bytes of a DuckDB file's magic number."""
_LOCK_HOLDER = re.compile(r"\(PID (\d+)\)")
_MIGRATION_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
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
MERGED_ACTIONS = ("update", "close")
"""Plan actions that merge with a base: the key's snapshot payload."""
# Merge bases are read, not stored: a key's snapshot row changes only when that key's own
# action is recorded, so joining it when the plan is read gives what storing it gave, without
# copying hundreds of thousands of payloads per run (see docs/state.md).
_NEEDS_BASE = "p.action IN ('update', 'close') AND p.base_payload IS NULL"
_SNAPSHOT_JOIN = (
    f"LEFT JOIN snapshot s ON {_NEEDS_BASE} AND s.target = p.target"
    " AND s.external_id = p.external_id"
)
_MERGE_BASE = (
    "CASE WHEN p.action IN ('update', 'close') THEN coalesce(p.base_payload, s.payload) END"
    " AS base_payload"
)


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


class StateError(Exception):
    """The state file cannot be opened or migrated (CLI exit code 2)."""


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file."""

    version: int
    name: str
    path: Path


def migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every ``NNN_name.sql`` in ``directory``, by version; a repeated number is an error."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if match is None:
            raise StateError(f"{path}: migration files are named NNN_lower_case_name.sql")
        version = int(match.group(1))
        if version in found:
            raise StateError(f"{path}: migration {version} exists twice")
        found[version] = Migration(version, match.group(2), path)
    return [found[v] for v in sorted(found)]


def new_run_id(now: datetime | None = None) -> str:
    """A time-ordered, unique run id: ``20261122T061000.123456Z-1a2b3c``."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S.%fZ}-{secrets.token_hex(3)}"


class StateStore:
    """One DuckDB file holding what custsync sent, intends to send, and did.

    Use as a context manager. ``read_only`` opens an existing file without migrating it (for
    reports while nothing writes).
    """

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        if read_only and not self.path.exists():
            raise StateError(f"{self.path}: no state file here yet")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        _check_is_duckdb(self.path)
        try:
            self.con: duckdb.DuckDBPyConnection = duckdb.connect(
                str(self.path), read_only=read_only
            )
        except duckdb.Error as exc:
            raise StateError(_open_error(self.path, exc)) from exc
        self._run("SET TimeZone = 'UTC'")
        self._registered: list[str] = []
        try:
            self._check_is_custsync(read_only=read_only)
            self.schema_version: int = (
                self._current_version() if read_only else self.migrate(migrations())
            )
            if not read_only:
                self._fill_content_keys()
        except BaseException:
            self.con.close()  # or the file stays locked until the object is collected
            raise

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self.con.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Run a block in one transaction: all of it commits, or none of it."""
        self.con.begin()
        try:
            yield self.con
        except BaseException:
            self.con.rollback()
            raise
        else:
            self.con.commit()
        finally:
            # Frames registered for the block go only now: DuckDB refuses to unregister
            # inside an aborted transaction, which would hide the error that aborted it.
            for name in self._registered:
                self.con.unregister(name)
            self._registered.clear()

    # -- migrations ------------------------------------------------------------------------

    def _run(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> list[Any]:
        """Execute and fetch everything: DuckDB refuses new work on a connection while a
        result is unfinished, and a DML statement's result (its row count) counts as one."""
        return self.con.execute(sql, params).fetchall()

    def _frame(self, query: str, params: Mapping[str, Any] | None = None) -> pl.DataFrame:
        relation = self.con.sql(query, params=dict(params) if params else None)
        if relation is None:  # a statement, not a query
            raise TypeError(f"not a query: {query[:40]!r}")
        return relation.pl()

    def _check_is_custsync(self, *, read_only: bool) -> None:
        """Refuse a DuckDB file custsync did not create: reading it would fail on the first
        view, and migrating it would add custsync's tables to someone else's database."""
        tables = {name for (name,) in self._run("SELECT table_name FROM information_schema.tables")}
        if "schema_version" in tables or (not read_only and not tables):
            return  # custsync's, or a new (empty) file to set up
        raise StateError(
            f"{self.path}: a DuckDB file, but not a custsync state file (no schema_version"
            " table): point --state or CUSTSYNC_STATE at the state file"
        )

    def _current_version(self) -> int:
        exists = self._run(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
        )
        if not exists[0][0]:
            return 0
        return int(self._run("SELECT coalesce(max(version), 0) FROM schema_version")[0][0])

    def _fill_content_keys(self) -> None:
        """Give snapshot rows written before migration 004 their content key.

        Computed from the stored payload, in Python, once per row: DuckDB has no XXH3. A
        diff compares keys, so a row without one would be planned as changed.
        """
        if not self._run("SELECT EXISTS (FROM snapshot WHERE content_key IS NULL)")[0][0]:
            return  # asked first: fetching an empty frame costs 20 ms on a million rows
        missing = self._frame(
            "SELECT target, external_id, payload FROM snapshot WHERE content_key IS NULL"
        )
        computed = []
        for target, external_id, text in missing.iter_rows():
            try:
                computed.append(content_key(json.loads(text)))
            except (ValueError, TypeError) as exc:  # not JSON, or a field custsync never sends
                raise StateError(
                    f"{self.path}: the snapshot payload of {target} customer {external_id!r} is"
                    f" not one custsync wrote ({exc}); restore the file from a backup"
                ) from exc
        keys = pl.Series("content_key", computed, pl.UInt64)
        with self.transaction():
            self._insert(
                missing.select("target", "external_id").with_columns(keys),
                "UPDATE snapshot SET content_key = k.content_key FROM {batch} k"
                " WHERE snapshot.target = k.target AND snapshot.external_id = k.external_id",
                {},
            )

    def migrate(self, pending: Sequence[Migration]) -> int:
        """Apply the migrations newer than the file's version; return the version reached."""
        self._run(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
        )
        current = self._current_version()
        known = max((m.version for m in pending), default=0)
        if current > known:
            raise StateError(
                f"{self.path}: schema version {current} is newer than this custsync knows "
                f"({known}); upgrade custsync"
            )
        for migration in pending:
            if migration.version <= current:
                continue
            try:
                with self.transaction():
                    self._run(migration.path.read_text(encoding="utf-8"))
                    self._run(
                        "INSERT INTO schema_version VALUES (?, ?, now())",
                        [migration.version, migration.name],
                    )
            except duckdb.Error as exc:
                raise StateError(
                    f"{self.path}: migration {migration.path.name} failed ({exc})"
                ) from exc
            current = migration.version
        return current

    # -- runs ------------------------------------------------------------------------------

    def begin_run(
        self,
        *,
        flow: str,
        target: str,
        mode: str,
        dry_run: bool,
        extract_paths: Sequence[str],
        params: Mapping[str, Any],
    ) -> str:
        """Record a run as ``running`` and return its id. ``params`` must hold no secret."""
        run_id = new_run_id()
        self._run(
            "INSERT INTO runs (run_id, flow, target, mode, dry_run, extract_paths, params,"
            " started_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, now(), 'running')",
            [
                run_id,
                flow,
                target,
                mode,
                dry_run,
                [str(p) for p in extract_paths],
                json.dumps(params, default=str, sort_keys=True),
            ],
        )
        return run_id

    def finish_run(
        self, run_id: str, *, status: str, exit_code: int, summary: Mapping[str, Any]
    ) -> None:
        """Record how a run ended."""
        self._run(
            "UPDATE runs SET finished_at = now(), status = ?, exit_code = ?, summary = ?"
            " WHERE run_id = ?",
            [status, exit_code, json.dumps(summary, default=str, sort_keys=True), run_id],
        )

    def runs(self) -> pl.DataFrame:
        """Every run, newest first."""
        return self._frame("SELECT * FROM runs ORDER BY started_at DESC, run_id DESC")

    # -- snapshot and failures -------------------------------------------------------------

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

    # -- writes ----------------------------------------------------------------------------

    def _register(self, frame: pl.DataFrame) -> str:
        """Register ``frame`` for the current :meth:`transaction`; return its name."""
        name = f"__batch_{len(self._registered)}"
        self.con.register(name, frame.to_arrow())
        self._registered.append(name)
        return name

    def _insert(self, frame: pl.DataFrame, statement: str, params: Mapping[str, Any]) -> None:
        """Run ``statement`` (inside :meth:`transaction`), ``{batch}`` naming the frame."""
        self._run(statement.format(batch=self._register(frame)), dict(params))

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
        with self.transaction():
            self._insert(
                frame,
                "INSERT INTO rejects SELECT $run_id, $target, external_id, field, rule, message,"
                " value, source_row, now() FROM {batch}",
                {"run_id": run_id, "target": target},
            )
        return frame.height

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
                pl.when(pl.col("action").is_in(MERGED_ACTIONS))
                .then(pl.col("base_payload"))
                .alias("base_payload")
            )
        )
        if frame.height == 0:
            return 0
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
        return frame.height

    def plan(self, run_id: str) -> pl.DataFrame:
        """A run's stored plan: :data:`~transforms.diff.PLAN_SCHEMA` columns plus ``target``
        and ``planned_at``, by ``external_id``.

        ``base_payload`` of an update or close is the stored one, else the key's snapshot
        payload (unchanged until that key's own action is recorded).
        """
        columns = ", ".join(
            _MERGE_BASE if name == "base_payload" else f"p.{name}" for name in PLAN_SCHEMA.names()
        )
        # The snapshot's payloads are fetched by row id for the keys found by a join on keys
        # alone: joining on the keys with the payload column scanned every payload of the
        # target (0.9 s instead of 0.3 s for 500,000 bases among 10M keys). Sorting here
        # rather than in SQL spares DuckDB sorting the payloads (0.5 s for 700,000 rows).
        frame = self._frame(
            f"""
            WITH p AS MATERIALIZED (SELECT * FROM plan WHERE run_id = $run_id),
            found AS MATERIALIZED (
                SELECT s.rowid AS row FROM snapshot s SEMI JOIN p
                ON {_NEEDS_BASE} AND s.target = p.target AND s.external_id = p.external_id
            ),
            s AS (SELECT target, external_id, payload FROM snapshot
                  WHERE rowid IN (SELECT row FROM found))
            SELECT {columns}, p.target, p.planned_at FROM p
            LEFT JOIN s ON {_NEEDS_BASE} AND s.target = p.target
                AND s.external_id = p.external_id
            """,
            {"run_id": run_id},
        )
        return frame.sort("external_id", "action", maintain_order=True)

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

    def pending_journal(self, target: str) -> pl.DataFrame:
        """Intents still pending (a crashed run's batch in flight), with their plan rows.

        Columns: ``run_id, plan_id, opened_at`` and the plan row's ``external_id, action,
        status, remote_id, payload, content_hash, base_payload, reason, content_key``.
        """
        return self._frame(
            f"""
            SELECT j.run_id, j.plan_id, j.opened_at, p.external_id, p.action, p.status,
                   p.remote_id, p.payload, p.content_hash, {_MERGE_BASE}, p.reason,
                   p.content_key
            FROM journal j
            JOIN plan p ON p.run_id = j.run_id AND p.plan_id = j.plan_id
            {_SNAPSHOT_JOIN}
            WHERE j.target = $target AND j.state = 'pending'
            ORDER BY j.opened_at, p.external_id
            """,
            {"target": target},
        )

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

    def record_batch(
        self,
        run_id: str,
        target: str,
        *,
        calls: pl.DataFrame,
        outcomes: pl.DataFrame,
        snapshot_upserts: pl.DataFrame,
        snapshot_deletes: Sequence[str],
    ) -> int:
        """Record one executed batch in ONE transaction (all of it, or none of it).

        Inserts ``calls`` (:data:`~pipelines.state.frames.CALLS_SCHEMA`) and ``outcomes``
        (:data:`~pipelines.state.frames.OUTCOMES_SCHEMA`), upserts ``snapshot_upserts``
        (:data:`~pipelines.state.frames.SNAPSHOT_SCHEMA`; confirmed successes only) and
        deletes the ``snapshot_deletes`` keys, and closes the journal entries of the
        outcomes' plan ids (whichever run opened them). ``run_id`` and ``target`` columns are
        set from the arguments.

        A remote id belongs to at most one key: an upsert giving a key a remote id that
        another key holds (in the snapshot, or earlier in this batch) is refused. Its snapshot
        row is not written, its ``succeeded``/``adopted`` outcome is recorded as ``failed``
        (``REMOTE_ID_OWNED``) and the key is listed in ``remote_id_conflicts``, so that the next
        run looks for its customer before creating one. Returns the number of refused rows.
        """
        params = {"run_id": run_id, "target": target}
        calls = _conform(calls, CALLS_SCHEMA, params)
        outcomes = _conform(outcomes, OUTCOMES_SCHEMA, params)
        upserts = _conform(snapshot_upserts, SNAPSHOT_SCHEMA, {}).unique(
            "external_id", keep="last", maintain_order=True
        )
        deletes = pl.DataFrame(
            {"external_id": list(snapshot_deletes)}, schema={"external_id": pl.String}
        )
        closing = outcomes.select(pl.col("plan_id").drop_nulls().unique())
        with self.transaction():
            refused = self._owned_elsewhere(target, upserts, deletes)
            if refused.height:
                upserts = upserts.join(refused, on="external_id", how="anti")
                outcomes = _refuse_outcomes(outcomes, refused)
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
        return refused.height

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


def _refuse_outcomes(outcomes: pl.DataFrame, refused: pl.DataFrame) -> pl.DataFrame:
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


def _check_is_duckdb(path: Path) -> None:
    """Refuse an existing file that is not a DuckDB database, before DuckDB opens it (DuckDB
    opens a CSV file as an in-memory database: a sync would record nothing)."""
    offset, magic = _DUCKDB_MAGIC
    try:
        with path.open("rb") as file:
            head = file.read(offset + len(magic))
    except FileNotFoundError:
        return  # a new state file
    except OSError as exc:
        raise StateError(f"{path}: cannot read the state file ({exc.strerror})") from exc
    if head and head[offset:] != magic:
        raise StateError(
            f"{path}: not a custsync state file (not a DuckDB database; an extract?): point"
            " --state or CUSTSYNC_STATE at the state file"
        )


def _open_error(path: Path, exc: duckdb.Error) -> str:
    """One line saying why DuckDB could not open ``path``."""
    text = " ".join(str(exc).split())
    if "Conflicting lock" in text:
        holder = _LOCK_HOLDER.search(text)
        pid = f" (PID {holder.group(1)})" if holder else ""
        return (
            f"{path}: locked by another process{pid}, probably a sync still running: try again"
            " when it has finished"
        )
    return f"{path}: cannot open the state file ({text})"


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
