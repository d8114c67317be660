"""A run releases the state file for readers while batches are sent, at most every
RELEASE_EVERY_S (issue 14: closing and reopening it cost as much as 300 calls a batch)."""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines import run as run_module
from pipelines.run import RELEASE_EVERY_S, Run


class _Store:
    def __init__(self) -> None:
        self.releases = 0

    def release(self) -> None:
        self.releases += 1


@given(st.lists(st.floats(min_value=0, max_value=5, allow_nan=False), max_size=40))
def test_released_at_the_first_batch_then_at_most_every_interval(gaps: list[float]) -> None:
    clock = [100.0]
    store = _Store()
    fake = SimpleNamespace(store=store, _released_at=-math.inf)
    released_at: list[float] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run_module.time, "monotonic", lambda: clock[0])
        for gap in [0.0, *gaps]:
            clock[0] += gap
            before = store.releases
            Run.release_for_readers(fake)  # type: ignore[arg-type]
            if store.releases > before:
                released_at.append(clock[0])
            # never more than the interval since readers last had their turn
            assert clock[0] - released_at[-1] < RELEASE_EVERY_S
    assert released_at[0] == 100.0  # the first batch always lets readers in
    assert all(b - a >= RELEASE_EVERY_S for a, b in itertools.pairwise(released_at))
