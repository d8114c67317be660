"""The plan a run executes, as stored before anything is sent, cut into batches.

The plan stage (:mod:`pipelines.planning`) builds it; the guards read its counts, each
execute-batch stage one of its batches (one Prefect task and one DuckDB transaction each),
and the run's summary its ``unchanged`` count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import polars as pl

from pipelines.batch import PlanRow
from transforms.twins import Twins


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


@dataclass(frozen=True)
class StoredPlan:
    """A run's stored plan rows (in plan order), their twins and counts, and the batch size."""

    rows: pl.DataFrame = field(default_factory=pl.DataFrame)
    twins: Twins = field(default_factory=Twins)
    """Planned creates a look-up cannot tell apart (:func:`transforms.twins.find_twins`)."""
    counts: PlanCounts = field(default_factory=PlanCounts)
    batch_size: int = 1

    @property
    def height(self) -> int:
        """The number of planned actions."""
        return self.rows.height

    @property
    def batch_count(self) -> int:
        """How many batches the plan is sent in."""
        return math.ceil(self.rows.height / self._size)

    def batch(self, batch_no: int) -> list[PlanRow]:
        """The plan rows of batch ``batch_no`` (none past the last batch)."""
        size = self._size
        return [PlanRow.from_mapping(r) for r in self.rows.slice(batch_no * size, size).to_dicts()]

    @property
    def _size(self) -> int:
        return max(self.batch_size, 1)
