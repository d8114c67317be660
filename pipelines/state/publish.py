"""The Parquet audit: a state file's audit rows, published as immutable files others can read.

A fleet keeps one DuckDB file per tenant and target, and DuckDB lets no reader in while a
writer holds a file. So a tenant's run also *publishes* its audit rows, as it commits them, to
files no writer ever holds again (docs/fleet.md, "State any worker can reach")::

    <audit_dir>/tenant=<id>/target=<target>/<table>/<run_id>-<seq>.parquet

- ``calls``, ``outcomes`` and ``changes``: after each batch is committed to the DuckDB file
  (:func:`batch_committed`, called by ``StateStore.record_batch``), that batch's rows, as
  committed (an outcome the store refused is published as the failure it recorded);
- ``runs``: the run's row whenever it or its counts change (:func:`run_changed`: its start
  and provenance, its rejects and plan stored, its end), with the ``planned`` and
  ``rejected`` counts its ``v_runs`` row reads from ``plan`` and ``rejects`` (tables not
  published) and ``audit_seq``; the highest ``audit_seq`` of a run is its current row.

Each file is written under a temporary name (``*.parquet.tmp``) and renamed: a reader's glob
(``*.parquet``) sees a whole file or none. The DuckDB file stays the source of truth; a
publication that fails (a full disk) is logged and the run goes on.

**No personal data, no secrets.** A published table holds its state-file columns except those
the redaction registry (:data:`~pipelines.state.redaction.PERSONAL_COLUMNS`) lists: today
``outcomes.message``, ``changes.before`` and ``changes.after``. What is published is what
forgetting and retention leave in the state file (keys, ids, actions, results, times, field
names), so neither has to touch a published file; a column the registry gains later is
withheld from then on, without a change here. The ``runs`` row holds no secret (its
``settings`` say ``set``/``unset``).

A run publishes only when a :class:`Publisher` is registered for its state file
(:func:`publishing`): the fleet's child run registers one; a plain ``custsync sync`` does not.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from pipelines.state.redaction import PERSONAL_COLUMNS

if TYPE_CHECKING:
    from pipelines.state.base import StateBase

log = logging.getLogger("custsync")

TABLES = ("runs", "calls", "outcomes", "changes")
"""The state file's tables the audit publishes."""
SEQ = "audit_seq"
"""The ``runs`` files' column ordering a run's publications (its highest is current)."""
TMP = ".tmp"


def withheld(table: str) -> frozenset[str]:
    """Columns of ``table`` never published: those the redaction registry lists."""
    return frozenset(c.column for c in PERSONAL_COLUMNS if c.table == table)


def partition(audit_dir: Path, tenant: str, target: str, table: str) -> Path:
    """The folder of one tenant and target's files of ``table``."""
    return audit_dir / f"tenant={tenant}" / f"target={target}" / table


def write_atomic(frame: pl.DataFrame, path: Path) -> None:
    """Write ``frame`` to ``path`` as Parquet under a temporary name, then rename it: a
    reader sees the whole file or none. An existing ``path`` is never overwritten."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + TMP)
    frame.write_parquet(tmp, statistics=True)
    if path.exists():  # published files are immutable
        tmp.unlink()
        raise FileExistsError(path)
    tmp.replace(path)


@dataclass
class Publisher:
    """Publishes one tenant and target's audit rows under ``audit_dir``."""

    audit_dir: Path
    tenant: str
    target: str
    _seq: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def path(self, table: str, run_id: str, seq: int) -> Path:
        """Where publication ``seq`` of ``run_id``'s ``table`` rows goes."""
        folder = partition(self.audit_dir, self.tenant, self.target, table)
        return folder / f"{run_id}-{seq:06d}.parquet"

    def _next(self, run_id: str) -> int:
        with self._lock:
            if run_id not in self._seq:  # another process may have published this run before
                self._seq[run_id] = self._published(run_id)
            seq = self._seq[run_id] + 1
            self._seq[run_id] = seq
            return seq

    def _published(self, run_id: str) -> int:
        """The highest ``seq`` already on disk for ``run_id``, in any table (0: none)."""
        seqs = [
            int(p.name.removesuffix(".parquet").rsplit("-", 1)[1])
            for table in TABLES
            for p in partition(self.audit_dir, self.tenant, self.target, table).glob(
                f"{run_id}-*.parquet"
            )
        ]
        return max(seqs, default=0)

    def run(self, store: StateBase, run_id: str) -> Path | None:
        """Publish ``run_id``'s ``runs`` row as it stands in ``store`` (with its plan and
        rejects counts); ``None`` when the store has no such run."""
        hidden = withheld("runs")
        except_ = f" EXCLUDE ({', '.join(sorted(hidden))})" if hidden else ""
        row = store._frame(
            f"""
            SELECT r.*{except_},
                   (SELECT count(*) FROM plan p WHERE p.run_id = r.run_id) AS planned,
                   (SELECT count(DISTINCT coalesce(external_id, '')) FROM rejects j
                    WHERE j.run_id = r.run_id) AS rejected
            FROM runs r WHERE r.run_id = ?
            """,
            [run_id],
        )
        if row.height == 0:
            return None
        seq = self._next(run_id)
        path = self.path("runs", run_id, seq)
        write_atomic(row.with_columns(pl.lit(seq, pl.Int64).alias(SEQ)), path)
        return path

    def batch(
        self,
        store: StateBase,
        run_id: str,
        *,
        calls: pl.DataFrame,
        outcomes: pl.DataFrame,
        changes: pl.DataFrame,
    ) -> list[Path]:
        """Publish one committed batch's rows (the frames ``record_batch`` inserted)."""
        tables = {
            "calls": calls,
            "outcomes": outcomes.rename({"at": "occurred_at"}, strict=False),
            "changes": changes,
        }
        written: list[Path] = []
        if any(frame.height for frame in tables.values()):
            seq = self._next(run_id)
            for table, frame in tables.items():
                if frame.height:
                    path = self.path(table, run_id, seq)
                    write_atomic(frame.drop(withheld(table), strict=False), path)
                    written.append(path)
        return written


_PUBLISHERS: dict[Path, Publisher] = {}
"""State file (absolute) → its publisher, while a run that publishes holds it."""


def _key(path: Path | str) -> Path:
    return Path(path).resolve()


@contextmanager
def publishing(state_file: Path | str, publisher: Publisher) -> Iterator[Publisher]:
    """Publish the audit rows of runs on ``state_file`` while the block runs."""
    key = _key(state_file)
    _PUBLISHERS[key] = publisher
    try:
        yield publisher
    finally:
        if _PUBLISHERS.get(key) is publisher:
            del _PUBLISHERS[key]


def _publisher(store: StateBase) -> Publisher | None:
    path = getattr(store, "path", None)
    return None if path is None or not _PUBLISHERS else _PUBLISHERS.get(_key(path))


def run_changed(store: StateBase, run_id: str) -> None:
    """The store changed ``run_id``'s row: publish it, when a publisher is registered."""
    publisher = _publisher(store)
    if publisher is not None:
        try:
            publisher.run(store, run_id)
        except OSError as exc:
            log.warning("audit: run %s not published (%s); the state file has it", run_id, exc)


def batch_committed(
    store: StateBase,
    run_id: str,
    *,
    calls: pl.DataFrame,
    outcomes: pl.DataFrame,
    changes: pl.DataFrame,
) -> None:
    """A batch was committed: publish its rows, when a publisher is registered."""
    publisher = _publisher(store)
    if publisher is not None:
        try:
            publisher.batch(store, run_id, calls=calls, outcomes=outcomes, changes=changes)
        except OSError as exc:
            log.warning(
                "audit: a batch of %s not published (%s); the state file has it", run_id, exc
            )
