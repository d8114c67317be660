"""Who may use a state file when: one writer per file for a whole run, readers between its writes.

DuckDB locks a file for a process that opens it for writing, readers included ("Conflicting
lock is held"). A run therefore holds the DuckDB file only while it writes (a stage, a batch's
journal, a batch's record: :meth:`~pipelines.state.store.StateStore.release` closes it
between), and a reader that meets the lock waits for the gap (:func:`connect`). What keeps a
second *writer* out for the whole run is not DuckDB's lock but :class:`WriterLock`: an
``flock`` on the sidecar file ``<state>.lock``, taken when a store opens for writing and kept
until it closes, carrying the holder's PID for the message a refused writer prints.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from pathlib import Path
from typing import ClassVar

import duckdb

WAIT_S = 60.0
"""How long a reader (or a writer reopening between batches) waits for another process's hold
on the DuckDB file, by default (``CUSTSYNC_STATE_WAIT``)."""
_FIRST_PAUSE_S = 0.02
_LONGEST_PAUSE_S = 0.5
_LOCK_HOLDER = re.compile(r"\(PID (\d+)\)")


class LockedError(Exception):
    """The state file is held by another process (``pid`` when known)."""

    def __init__(self, path: Path, pid: int | None, waited_s: float = 0.0) -> None:
        self.path = path
        self.pid = pid
        holder = f" (PID {pid})" if pid else ""
        waited = f" for {waited_s:g} s" if waited_s else ""
        super().__init__(
            f"{path}: locked by another process{holder}{waited}, probably a sync still running:"
            " try again when it has finished"
        )


def connect(path: Path, *, read_only: bool, wait_s: float) -> duckdb.DuckDBPyConnection:
    """Open ``path``, retrying (with growing pauses, up to ``wait_s`` seconds) while another
    process holds it; :class:`LockedError` once the wait is over, other DuckDB errors as they
    come."""
    deadline = time.monotonic() + max(wait_s, 0.0)
    pause = _FIRST_PAUSE_S
    while True:
        try:
            return _attach(path, read_only=read_only)
        except duckdb.Error as exc:
            text = " ".join(str(exc).split())
            if "Conflicting lock" not in text:
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                holder = _LOCK_HOLDER.search(text)
                raise LockedError(path, int(holder.group(1)) if holder else None, wait_s) from exc
        time.sleep(min(pause, left))
        pause = min(pause * 2, _LONGEST_PAUSE_S)


ROW_GROUP_ROWS = 16_384
"""Rows per DuckDB row group in a state file (DuckDB's default is 122,880).

A run commits a batch at a time and closes the file every few seconds, so each table grows by
small row groups that DuckDB's checkpoint merges ("vacuum"). Merging into a default-sized group
recompressed up to 122,880 rows of each table at once, and at the boundaries the rows of every
table a batch writes at the same moment: a spike of ~300 MB over a 225 MB run at 400,000
customers (one close, 0.2 s), and the biggest share of a migration's peak memory. At this size
the spike stays under ~20 MB and the file is no bigger (measured: 5 tables of 500,000 rows
appended 2,000 at a time, 163 MB peak instead of 265 MB, 124 MB of file instead of 131 MB).
DuckDB does not store the setting in the file: it holds for as long as a connection that gave
it has the file open, so every connection custsync makes gives it (:func:`connect`)."""


def _attach(path: Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the state file attached as ``state`` and in use: the way a
    row group size is given (``duckdb.connect(path)`` has no such option). What DuckDB spills
    goes beside the state file (``<state>.tmp``), as with a file opened directly, not into the
    working directory (an in-memory database's default)."""
    con = duckdb.connect()
    try:
        options = f"ROW_GROUP_SIZE {ROW_GROUP_ROWS}" + (", READ_ONLY" if read_only else "")
        con.execute(f"SET temp_directory = {_quote(str(path) + '.tmp')}")
        con.execute(f"ATTACH {_quote(str(path))} AS state ({options})")
        con.execute("USE state")
    except BaseException:
        con.close()
        raise
    return con


def _quote(text: str) -> str:
    """``text`` as an SQL string literal (ATTACH and SET take no parameters)."""
    return "'" + text.replace("'", "''") + "'"


def sidecar(path: Path) -> Path:
    """The writer lock file of state file ``path``."""
    return path.with_name(path.name + ".lock")


class WriterLock:
    """The one-writer-per-file lock of a state file, for as long as a writable store is open.

    Per process, re-entrant: a second writable store of the same file in the same process (a
    test, a helper reading through the writer's store) shares the lock; ``flock`` would refuse
    it, since each ``open`` is a lock of its own.
    """

    _held: ClassVar[dict[Path, tuple[int, int]]] = {}
    """Resolved path → (descriptor, holders in this process)."""

    def __init__(self, path: Path) -> None:
        self.path = sidecar(path).resolve()
        self._acquired = False

    @property
    def held(self) -> bool:
        """Whether this lock holds the file (acquired, not yet released)."""
        return self._acquired

    def acquire(self) -> None:
        """Take the lock now, or raise :class:`LockedError` naming the holder's PID."""
        held = self._held.get(self.path)
        if held is not None:
            self._held[self.path] = (held[0], held[1] + 1)
            self._acquired = True
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise LockedError(self.path.with_name(self.path.name[: -len(".lock")]), pid) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._held[self.path] = (fd, 1)
        self._acquired = True

    def release(self) -> None:
        """Give the lock back (idempotent); the last holder in the process unlocks the file."""
        if not self._acquired:
            return
        self._acquired = False
        fd, count = self._held[self.path]
        if count > 1:
            self._held[self.path] = (fd, count - 1)
            return
        del self._held[self.path]
        os.ftruncate(fd, 0)  # no stale PID for the next refused writer to name
        os.close(fd)  # closing the descriptor drops the flock


def check_no_writer(path: Path) -> None:
    """Raise :class:`LockedError` if another process writes ``path`` now (a preflight check;
    it holds the lock for an instant, so a writer starting at that very instant is refused)."""
    lock = WriterLock(path)
    lock.acquire()
    lock.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
