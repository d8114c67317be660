"""The plan a run executes, as stored before anything is sent, cut into batches.

The plan stage (:mod:`pipelines.planning`) builds it; the guards read its counts, each
execute-batch stage one of its batches (one Prefect task and one DuckDB transaction each),
and the run's summary its ``unchanged`` count.

A run holds only where each batch starts (one key per batch), not the plan: each batch's rows
are read from the state file when the batch is sent (issue 14: a migration of millions of
customers held its whole plan, payloads and merge bases, for the whole run).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from pipelines.batch import PlanRow
from transforms.twins import Twins

BatchKey = tuple[str, str, str]
"""``(external_id, action, plan_id)``: a plan row's place in plan order (unique in a run)."""
ORDER = ("external_id", "action", "plan_id")
"""The columns of plan order."""
WINDOW_ROWS = 4_000
"""About how many plan rows a run reads at once: a query per 500-row batch cost a migration
~40 ms a batch, each reading the whole run's plan table (issue 14)."""
PlanReader = Callable[[BatchKey, "BatchKey | None"], pl.DataFrame]
"""The plan rows from a key (included) to another (excluded; ``None``: to the end), in order."""


@dataclass(frozen=True)
class PlanCounts:
    """What the plan stage counted: what the guards and the summary read."""

    extract_rows: int = 0
    """Rows read from the extract."""
    valid_rows: int = 0
    """Extract rows that passed validation."""
    unchanged: int = 0
    """Valid rows with nothing to send."""
    deletes: int = 0
    """Planned deletes."""
    snapshot_active: int = 0
    """Active customers in the target's snapshot before the run."""


def _nothing(_start: BatchKey, _end: BatchKey | None) -> pl.DataFrame:
    return pl.DataFrame()


@dataclass(frozen=True)
class StoredPlan:
    """A run's stored plan: how many rows, where each batch starts, how to read a batch's rows,
    their twins and counts."""

    height: int = 0
    """The number of planned actions."""
    starts: tuple[BatchKey, ...] = ()
    """The key of each batch's first row, in plan order."""
    read: PlanReader = _nothing
    twins: Twins = field(default_factory=Twins)
    """Planned creates a look-up cannot tell apart (:func:`transforms.twins.find_twins`)."""
    counts: PlanCounts = field(default_factory=PlanCounts)
    batch_size: int = 1
    window: int = 1
    """Batches read at once (one query for several short batches; the last read is kept)."""
    _read: dict[int, pl.DataFrame] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_frame(
        cls,
        rows: pl.DataFrame,
        *,
        batch_size: int,
        twins: Twins | None = None,
        counts: PlanCounts | None = None,
    ) -> StoredPlan:
        """A plan held in memory (``rows`` has at least the :data:`ORDER` columns)."""
        size = max(batch_size, 1)
        ordered = rows.sort(*ORDER) if rows.height else rows
        keys: list[BatchKey] = list(ordered.select(ORDER).iter_rows()) if rows.height else []
        where = {key: i for i, key in enumerate(keys)}

        def read(start: BatchKey, end: BatchKey | None) -> pl.DataFrame:
            lo = where[start]
            hi = where[end] if end is not None else ordered.height
            return ordered.slice(lo, hi - lo)

        return cls(
            height=ordered.height,
            starts=tuple(keys[::size]),
            read=read,
            twins=twins or Twins(),
            counts=counts or PlanCounts(),
            batch_size=size,
        )

    @property
    def batch_count(self) -> int:
        """How many batches the plan is sent in."""
        return len(self.starts)

    def batch(self, batch_no: int) -> list[PlanRow]:
        """The plan rows of batch ``batch_no`` (none past the last batch)."""
        if not 0 <= batch_no < len(self.starts):
            return []
        window = max(self.window, 1)
        first = batch_no - batch_no % window
        frame = self._read.get(first)
        if frame is None:
            last = first + window
            end = self.starts[last] if last < len(self.starts) else None
            frame = self.read(self.starts[first], end)
            self._read.clear()  # one window held at a time
            self._read[first] = frame
        size = max(self.batch_size, 1)
        rows = frame.slice((batch_no - first) * size, size)
        return [PlanRow.from_mapping(r) for r in rows.iter_rows(named=True)]
