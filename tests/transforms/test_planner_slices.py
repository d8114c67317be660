"""Issue 14: the planner holds a slice of the extract, never the extract, and planning in any
number of slices gives exactly what the reference model gives.

``CHUNK_ROWS`` is forced small (1, 2, 7 rows) so that hypothesis' extracts of up to ~20 rows
are cut into many slices: a repeated key's rows, a rejected key's several rows, a snapshot key
the extract dropped and a twin pair land in different slices. The comparison is with
:mod:`tests.transforms.reference` (the model the whole-extract planner is checked against),
and between the parts a sink receives and the plan returned whole.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.transforms import test_reference_model as ref
from transforms import planner
from transforms.planner import build_plan
from transforms.schema import EXTRACT_SCHEMA, MODES, Mode

SLICES = [1, 2, 7]


@pytest.mark.parametrize("target", ref.TARGETS)
@pytest.mark.parametrize("mode", MODES)
@ref.DEEP
@given(scen=ref.scenario(), chunk=st.sampled_from(SLICES))
def test_planning_in_slices_equals_the_reference_model(
    target: str, mode: Mode, scen: dict[str, Any], chunk: int
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(planner, "CHUNK_ROWS", chunk)
        ref.check(scen, target, mode)


def _plan(scen: dict[str, Any], target: str, mode: Mode, **sinks: Any) -> planner.PlanResult:
    _known, snapshot = ref._snapshot(scen, target)
    return build_plan(
        pl.DataFrame(scen["today"], schema=EXTRACT_SCHEMA).lazy(),
        snapshot,
        target=target,
        mode=mode,
        constants={"entity_id": ref.ENTITY},
        failures=ref._failures(scen["failures"]),
        **sinks,
    )


@pytest.mark.parametrize("target", ref.TARGETS)
@ref.DEEP
@given(scen=ref.scenario(), chunk=st.sampled_from(SLICES), mode=st.sampled_from(MODES))
def test_the_parts_a_sink_receives_are_the_whole_plan_and_each_is_bounded(
    target: str, mode: Mode, scen: dict[str, Any], chunk: int
) -> None:
    whole = _plan(scen, target, mode)  # CHUNK_ROWS (20,000): one slice
    plans: list[pl.DataFrame] = []
    rejects: list[pl.DataFrame] = []
    read: list[int] = []  # rows of the extract materialised at once
    diffed: list[int] = []  # rows planned at once
    normalise, plan_actions = planner.normalise, planner.plan_actions

    def counting_normalise(frame: pl.LazyFrame) -> pl.LazyFrame:
        out = normalise(frame)
        if planner._ROW in frame.collect_schema().names():  # a slice, not the key count
            read.append(out.collect().height)
        return out

    def counting_plan_actions(mapped: pl.DataFrame, snapshot: pl.DataFrame, **kw: Any) -> Any:
        diffed.append(mapped.height + snapshot.height)
        return plan_actions(mapped, snapshot, **kw)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(planner, "CHUNK_ROWS", chunk)
        patch.setattr(planner, "normalise", counting_normalise)
        patch.setattr(planner, "plan_actions", counting_plan_actions)
        sliced = _plan(scen, target, mode, on_plan=plans.append, on_rejects=rejects.append)
    assert sliced.plan.height == sliced.rejects.height == 0  # handed on, not kept
    got = pl.concat(plans).sort("external_id") if plans else whole.plan.clear()
    assert got.equals(whole.plan)
    got_rejects = (
        pl.concat(rejects).sort("source_row", "field", "rule") if rejects else whole.rejects.clear()
    )
    assert got_rejects.equals(whole.rejects)
    assert (sliced.unchanged, sliced.valid_rows, sliced.extract_rows) == (
        whole.unchanged,
        whole.valid_rows,
        whole.extract_rows,
    )
    assert sliced.counts() == whole.counts()
    assert sliced.rejected == whole.rejects.height
    # Bounded by the slice, not the extract: a part's plan rows come from at most ``chunk``
    # extract rows (and their snapshot rows), or ``chunk`` vanished keys; a slice of the
    # extract read is ``chunk`` rows, except the rows of rejected keys, read a slice of keys
    # at a time (every row of one key together).
    assert all(p.height <= chunk for p in plans)
    assert all(n <= 2 * chunk for n in diffed)
    rejected_rows = whole.extract_rows - whole.valid_rows
    assert all(n <= max(chunk, rejected_rows) for n in read)


def test_an_extract_is_read_a_slice_at_a_time() -> None:
    """50 valid rows in slices of 7: no more than 7 rows materialised at once, each once."""
    rows = [{"external_id": f"K{i:02}", "company_name": f"Firm {i}"} for i in range(50)]
    frame = pl.DataFrame(rows, schema=EXTRACT_SCHEMA).lazy()
    snapshot = pl.DataFrame(
        schema={"external_id": pl.String, "content_key": pl.UInt64, "status": pl.String}
    )
    read: list[int] = []
    normalise = planner.normalise

    def counting_normalise(lazy: pl.LazyFrame) -> pl.LazyFrame:
        out = normalise(lazy)
        if planner._ROW in lazy.collect_schema().names():
            read.append(out.collect().height)
        return out

    parts: list[pl.DataFrame] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(planner, "CHUNK_ROWS", 7)
        patch.setattr(planner, "normalise", counting_normalise)
        result = build_plan(
            frame,
            snapshot,
            target="verifone",
            mode="mirror",
            constants={"entity_id": "e"},
            on_plan=parts.append,
        )
    assert read == [7] * 7 + [1]
    assert [p.height for p in parts] == [7] * 7 + [1]
    assert result.counts() == {"create": 50, "unchanged": 0}


def test_a_repeated_key_is_found_when_its_rows_are_in_different_slices() -> None:
    rows = [
        {"external_id": "A", "company_name": "One"},
        {"external_id": "B", "company_name": "Two"},
        {"external_id": "C", "company_name": "Three"},
        {"external_id": "A", "company_name": "Four"},
    ]
    frame = pl.DataFrame(rows, schema=EXTRACT_SCHEMA).lazy()
    snapshot = pl.DataFrame(
        schema={"external_id": pl.String, "content_key": pl.UInt64, "status": pl.String}
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(planner, "CHUNK_ROWS", 1)
        result = build_plan(
            frame, snapshot, target="verifone", mode="mirror", constants={"entity_id": "e"}
        )
    unique = result.rejects.filter(pl.col("rule") == "unique")
    assert unique.select("external_id", "source_row").rows() == [("A", 1), ("A", 4)]
    assert sorted(result.plan["external_id"]) == ["B", "C"]
