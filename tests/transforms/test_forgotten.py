"""Rule ``forgotten``: a key erased on request is rejected wherever an extract lists it, with no
value of it kept, and the streaming planner agrees with the step-by-step functions."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.transforms.conftest import ENTITY
from tests.transforms.test_planner import _csv, _snapshot, _step_by_step
from transforms.planner import build_plan
from transforms.schema import Mode
from transforms.validate import FORGOTTEN

DAY2_KEYS = sorted(
    _csv("customers_day2.csv").select("external_id").collect().to_series().drop_nulls().unique()
)


@pytest.mark.parametrize("target", ["verifone", "sumup"])
@settings(max_examples=25, deadline=None)
@given(
    forgotten=st.lists(st.sampled_from(DAY2_KEYS), unique=True, max_size=8),
    ghosts=st.lists(st.text(min_size=1, max_size=8), max_size=2),
    mode=st.sampled_from(["mirror", "upsert"]),
)
def test_forgotten_keys_are_rejected_and_never_planned(
    target: str, forgotten: list[str], ghosts: list[str], mode: Mode
) -> None:
    snapshot = _snapshot(_csv("customers.csv"), target)
    # A forgotten key has no snapshot row: its erase removed it.
    snapshot = snapshot.filter(~pl.col("external_id").is_in(forgotten))
    keys = pl.Series("external_id", [*forgotten, *ghosts], pl.String)
    day2 = _csv("customers_day2.csv")
    plan, rejects = _step_by_step(day2, snapshot, target, mode, forgotten=keys)
    result = build_plan(
        day2,
        snapshot.drop("payload"),
        target=target,
        mode=mode,
        constants={"entity_id": ENTITY},
        forgotten=keys,
    )
    assert result.rejects.equals(rejects)
    assert result.plan.drop("base_payload").equals(
        plan.filter(pl.col("action") != "unchanged").drop("base_payload")
    )
    mine = result.rejects.filter(pl.col("external_id").is_in(forgotten))
    listed = set(day2.select("external_id").collect().to_series().drop_nulls())
    assert set(mine.filter(pl.col("rule") == FORGOTTEN)["external_id"]) == set(forgotten) & listed
    assert mine["value"].null_count() == mine.height, "no value of a forgotten key is kept"
    assert not set(result.plan["external_id"]) & set(forgotten)
