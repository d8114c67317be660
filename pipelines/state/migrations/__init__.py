"""Numbered SQL migrations of the state file (``NNN_name.sql``, in this directory) and their
runner, with the checks made when a state file is opened.

Migrations are applied in order, each in its own transaction together with its
``schema_version`` row. A file written by a newer custsync is refused rather than misread; a
file that is not custsync's (not DuckDB, or DuckDB without ``schema_version``) is refused
before anything is written to it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from pipelines.state.base import StateBase
from transforms.mapping import content_key

MIGRATIONS_DIR = Path(__file__).parent
"""The SQL files: this package's directory."""
_DUCKDB_MAGIC = (8, b"DUCK")
"""Offset and bytes of a DuckDB file's magic number."""
_LOCK_HOLDER = re.compile(r"\(PID (\d+)\)")
_MIGRATION_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


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


def check_is_duckdb(path: Path) -> None:
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


def open_error(path: Path, exc: duckdb.Error) -> str:
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


class Migrations(StateBase):
    """The schema version of the open file, and bringing it up to date."""

    path: Path
    """The state file (set by :class:`~pipelines.state.store.StateStore`; in messages)."""

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
