"""The streaming planner gives what the step-by-step functions give."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.transforms.conftest import ENTITY, extract, person
from transforms import planner
from transforms.diff import plan_actions
from transforms.mapping import map_rows
from transforms.normalise import normalise
from transforms.planner import build_plan
from transforms.schema import EXTRACT_SCHEMA, Mode
from transforms.validate import validate

DATA = Path(__file__).resolve().parents[2] / "data"


def _csv(name: str) -> pl.LazyFrame:
    frame = pl.read_csv(DATA / name, infer_schema=False)
    return frame.select(pl.col(c) for c in EXTRACT_SCHEMA.names()).lazy()


def _snapshot(frame: pl.LazyFrame, target: str) -> pl.DataFrame:
    valid = validate(normalise(frame), target).valid
    mapped = map_rows(valid, target, constants={"entity_id": ENTITY})
    return mapped.with_columns(pl.coalesce("remote_id", pl.format("uuid-{}", "external_id")))


def _step_by_step(
    frame: pl.LazyFrame, snapshot: pl.DataFrame, target: str, mode: Mode, **kw: object
) -> tuple[pl.DataFrame, pl.DataFrame]:
    forgotten = kw.pop("forgotten", None)
    validated = validate(normalise(frame), target, forgotten=forgotten)  # type: ignore[arg-type]
    mapped = map_rows(validated.valid, target, constants={"entity_id": ENTITY})
    plan = plan_actions(
        mapped,
        snapshot,
        target=target,
        mode=mode,
        rejected=validated.rejects,
        **kw,  # type: ignore[arg-type]
    )
    return plan, validated.rejects


@pytest.mark.parametrize("target", ["verifone", "sumup"])
@pytest.mark.parametrize("mode", ["mirror", "upsert", "update-only", "create-only"])
def test_sample_day_two_plans_the_same_both_ways(target: str, mode: Mode) -> None:
    snapshot = _snapshot(_csv("customers.csv"), target)
    day2 = _csv("customers_day2.csv")
    expected_plan, expected_rejects = _step_by_step(day2, snapshot, target, mode)
    result = build_plan(
        day2, snapshot.drop("payload"), target=target, mode=mode, constants={"entity_id": ENTITY}
    )
    assert result.rejects.equals(expected_rejects)
    assert result.plan.drop("base_payload").equals(
        expected_plan.filter(pl.col("action") != "unchanged").drop("base_payload")
    )
    assert result.unchanged == expected_plan.filter(pl.col("action") == "unchanged").height
    assert result.extract_rows == 42
    if mode == "mirror":
        counts = result.counts()
        expected = {"update": 6, "create": 3, "close": 2, "delete": 2}
        assert {k: counts.get(k) for k in expected} == expected
        rejected = set(result.rejects["external_id"])
        assert not rejected & set(result.plan.filter(pl.col("action") == "delete")["external_id"])


def test_remote_ids_and_merge_bases_are_left_to_the_state_store() -> None:
    """Given the snapshot's remote ids and payloads, the plan is the one planned on the diff's
    columns alone: the state store fills both in (tests/pipelines/test_state.py)."""
    snapshot = _snapshot(_csv("customers.csv"), "verifone")
    day2 = _csv("customers_day2.csv")
    full = build_plan(
        day2, snapshot, target="verifone", mode="mirror", constants={"entity_id": ENTITY}
    )
    keys = snapshot.select("external_id", "content_key", "status", "content_hash")
    alone = build_plan(
        day2, keys, target="verifone", mode="mirror", constants={"entity_id": ENTITY}
    )
    assert full.plan.equals(alone.plan)
    updates = full.plan.filter(pl.col("action") == "update")
    assert updates.height and updates["remote_id"].null_count() == updates.height
    assert full.plan["base_payload"].null_count() == full.plan.height


ROW = st.fixed_dictionaries(
    {
        "external_id": st.sampled_from(["a", "b", "c", "d", " a", None, ""]),
        # Backslash (Verifone forbids it, SumUp takes it), control characters (rejected), the
        # content text's separator U+001F, and a decomposed "ë" (NFC makes it "Zoë").
        "first_name": st.sampled_from(
            [
                "Ada",
                "Zoë",
                "Zoe\u0308",
                "X" * 23,
                "Back\\slash",
                "Bell\x07",
                "a\x1fb",
                "Tab\tx",
                None,
            ]
        ),
        "email": st.sampled_from(["a@example.com", "bad", None]),
        "status": st.sampled_from(["active", "closed", "CLOSED", "odd", None]),
        "billing_country_code": st.sampled_from(["GB", "gb", "XX", None]),
    }
)


@pytest.mark.parametrize("target", ["verifone", "sumup"])
@settings(max_examples=25, deadline=None)
@given(st.lists(ROW, max_size=8), st.lists(ROW, max_size=8))
def test_random_extracts_plan_the_same_both_ways(
    target: str, yesterday: list[dict[str, str | None]], today: list[dict[str, str | None]]
) -> None:
    snapshot = _snapshot(extract(person(**r) for r in yesterday), target)  # type: ignore[misc]
    frame = extract(
        {**person(r["external_id"]), **{k: v for k, v in r.items() if k != "external_id"}}
        for r in today
    )
    failures = pl.DataFrame(
        {"external_id": ["b"], "action": ["update"], "failed_runs": [1]},
        schema={"external_id": pl.String, "action": pl.String, "failed_runs": pl.Int32},
    )
    expected_plan, expected_rejects = _step_by_step(
        frame, snapshot, target, "mirror", failures=failures
    )
    result = build_plan(
        frame,
        snapshot,
        target=target,
        mode="mirror",
        constants={"entity_id": ENTITY},
        failures=failures,
    )
    assert result.rejects.equals(expected_rejects)
    assert result.plan.equals(expected_plan.filter(pl.col("action") != "unchanged"))


def test_an_unchanged_row_is_unchanged_the_next_day_whatever_it_holds() -> None:
    # Backslashes and the content text's separator (escaped there), a tab and a line break
    # inside the value (the control characters a value may hold) and a decomposed "ë": the key
    # the pass computes must be the one map_rows stored.
    frame = extract(
        [
            person("A", first_name="O\\Brien", last_name="Back\\slash"),
            person("B", first_name="Zoe\u0308", last_name="a\tb\nc"),
        ]
    )
    snapshot = _snapshot(frame, "sumup")
    result = build_plan(
        frame, snapshot, target="sumup", mode="mirror", constants={"entity_id": ENTITY}
    )
    assert result.plan.height == 0
    assert result.unchanged == 2


@pytest.mark.parametrize("chunk", [1, 2, 5])
@pytest.mark.parametrize("target", ["verifone", "sumup"])
def test_payloads_built_a_slice_at_a_time_plan_the_same(
    target: str, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14: a migration's payloads are built ``CHUNK_ROWS`` changed rows at a time; the
    plan and rejects are those of the step-by-step reference whatever the slice."""
    monkeypatch.setattr(planner, "CHUNK_ROWS", chunk)
    snapshot = _snapshot(_csv("customers.csv"), target)
    day2 = _csv("customers_day2.csv")
    expected_plan, expected_rejects = _step_by_step(day2, snapshot, target, "mirror")
    result = build_plan(
        day2,
        snapshot.drop("payload"),
        target=target,
        mode="mirror",
        constants={"entity_id": ENTITY},
    )
    assert result.rejects.equals(expected_rejects)
    assert result.plan.drop("base_payload").equals(
        expected_plan.filter(pl.col("action") != "unchanged").drop("base_payload")
    )
    first = build_plan(
        _csv("customers.csv"),
        snapshot.clear(),
        target=target,
        mode="mirror",
        constants={"entity_id": ENTITY},
    )  # a first run: every row is a create, in many slices
    assert first.plan.height == first.valid_rows > chunk
