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
            return duckdb.connect(str(path), read_only=read_only)
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
