"""The DuckDB state store: snapshot, plan, journal and the audit log, in one file.

Opening a store checks the file and applies pending migrations
(:mod:`pipelines.state.migrations`). Frames go in and out through Arrow in whole batches:
per-row INSERTs run at about 1,000 rows/s here, Arrow batches at hundreds of thousands. One
process writes at a time (DuckDB's rule for a file).

:class:`StateStore` is the one object callers hold. Each concept lives in a module of its own,
as a part of the store: :mod:`~pipelines.state.runs`, :mod:`~pipelines.state.snapshot`,
:mod:`~pipelines.state.plan`, :mod:`~pipelines.state.journal` (with
:mod:`~pipelines.state.ownership`), :mod:`~pipelines.state.privacy` (personal data), the
audit reads of :mod:`~pipelines.state.queries` and the dry-run plans applied later
(:mod:`~pipelines.state.applied`). The parts are base classes of the store rather than objects
it holds: they share one connection and one transaction (a batch's calls, outcomes, journal and
snapshot commit together), and callers keep calling ``store.write_plan(...)`` without the store
repeating every signature to delegate it.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from types import TracebackType

import duckdb

from pipelines.state.access import WAIT_S, LockedError, WriterLock, connect
from pipelines.state.applied import AppliedPlans
from pipelines.state.base import adapts_memory
from pipelines.state.journal import Journal
from pipelines.state.migrations import (
    MIGRATIONS_DIR,
    Migration,
    Migrations,
    StateError,
    check_is_duckdb,
    migrations,
    open_error,
)
from pipelines.state.plan import Plan
from pipelines.state.privacy import Privacy
from pipelines.state.queries import AuditQueries
from pipelines.state.runs import Runs, new_run_id
from pipelines.state.snapshot import DIFF_COLUMNS, SNAPSHOT_COLUMNS, Snapshot
from transforms.actions import MERGED_ACTIONS

log = logging.getLogger("custsync")
_SIZE = re.compile(r"([\d.]+)\s*([KMGT]?i?B|bytes)")
_UNITS = {"B": 0, "bytes": 0, "KiB": 1, "MiB": 2, "GiB": 3, "TiB": 4}

__all__ = [
    "DIFF_COLUMNS",
    "MERGED_ACTIONS",
    "MIGRATIONS_DIR",
    "SNAPSHOT_COLUMNS",
    "Migration",
    "StateError",
    "StateStore",
    "migrations",
    "new_run_id",
]


class StateStore(Migrations, Runs, Snapshot, Plan, Journal, Privacy, AuditQueries, AppliedPlans):
    """One DuckDB file holding what custsync sent, intends to send, and did.

    Use as a context manager. ``read_only`` opens an existing file without migrating it (for
    reports). A writable store holds the file's writer lock until it closes
    (:mod:`pipelines.state.access`); its DuckDB connection may be released between writes.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        read_only: bool = False,
        wait_s: float = WAIT_S,
        memory_limit: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.wait_s = wait_s  # for another process's hold on the file, at open and reopen
        # DuckDB's memory_limit on every connection this store opens (None: DuckDB's default,
        # 80 % of the machine). A run gives one: pipelines.run, Settings.state_memory_limit.
        self.memory_limit = memory_limit
        if read_only and not self.path.exists():
            raise StateError(f"{self.path}: no state file here yet")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        check_is_duckdb(self.path)
        self._writer = None if read_only else WriterLock(self.path)
        self._closed = False
        try:
            if self._writer is not None:
                self._writer.acquire()  # a second writer is refused now, not queued
            con = self._open()
        except LockedError as exc:
            raise StateError(str(exc)) from exc
        except BaseException:
            self._release_writer()
            raise
        super().__init__(con)
        try:
            self._check_is_custsync(read_only=read_only)
            self.schema_version: int = (
                self._current_version() if read_only else self.migrate(migrations())
            )
            if not read_only:
                self._fill_content_keys()
        except BaseException:
            self.close()  # or the file stays locked until the object is collected
            raise

    def _open(self) -> duckdb.DuckDBPyConnection:
        try:
            con = connect(self.path, read_only=self.read_only, wait_s=self.wait_s)
        except LockedError as exc:
            raise StateError(str(exc)) from exc
        except duckdb.Error as exc:
            raise StateError(open_error(self.path, exc)) from exc
        try:
            con.execute("SET TimeZone = 'UTC'").fetchall()
            if self.memory_limit is not None:
                con.execute(f"SET memory_limit = '{self.memory_limit}'").fetchall()
        except BaseException:
            con.close()
            raise
        return con

    def _reconnect(self) -> duckdb.DuckDBPyConnection:
        if self._closed:
            raise StateError(f"{self.path}: the state store is closed")
        return self._open()

    def release(self) -> None:
        """Close the DuckDB file until the next read or write (which opens it again, waiting
        for a reader that got in meanwhile), so that readers can open it between a run's
        writes. The writer lock stays: no other writer gets in. Never inside a transaction."""
        if self._con is not None:
            self._con.close()
            self._con = None

    def _more_memory(self, exc: duckdb.OutOfMemoryException) -> bool:
        """Double the memory limit after DuckDB ran out of it (up to DuckDB's own default,
        80 % of the machine, then no limit), closing the file first: what a failed statement
        pinned is freed. False when the store has no limit to raise."""
        if self.memory_limit is None or self._con is None:
            return False
        (shown,) = self._run("SELECT current_setting('memory_limit')")[0]
        found = _SIZE.match(str(shown))
        if found is None:
            return False
        now = float(found.group(1)) * 1024 ** _UNITS.get(found.group(2), 0)
        ceiling = 0.8 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        raised = None if 2 * now >= ceiling else f"{int(2 * now)}B"
        log.warning(
            "the state file's DuckDB needed more than its %s (%s): %s for the rest of the run",
            shown,
            str(exc).splitlines()[0],
            f"{2 * now / 2**20:.0f} MiB" if raised else "no limit",
        )
        self.release()
        self.memory_limit = raised
        return True

    @adapts_memory
    def checkpoint(self) -> None:
        """Write what is committed into the file's blocks now. DuckDB does it when the file
        is closed, compressing everything written since the last checkpoint at once: after a
        400,000-customer plan that took ~290 MB above the run's memory for 0.2 s. A stage that
        writes a large table a part at a time calls this after each part."""
        self._run("CHECKPOINT")

    def close(self) -> None:
        """Close the connection and give the writer lock back (idempotent)."""
        self._closed = True
        self.release()
        self._release_writer()

    def _release_writer(self) -> None:
        if self._writer is not None:
            self._writer.release()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
