"""The guards: a pure function of the plan's counts and what the caller allowed."""

from __future__ import annotations

import pytest

from pipelines.exit_codes import ExitCode
from pipelines.guards import check_guards
from pipelines.run import RunSpec
from pipelines.settings import Settings
from pipelines.stored_plan import PlanCounts

SETTINGS = Settings(max_delete_fraction=0.10)


def _spec(**allowed: bool) -> RunSpec:
    return RunSpec(flow="sync", extract=("x.csv",), target="sumup", mode="mirror", **allowed)


def test_a_plan_within_the_limits_passes() -> None:
    counts = PlanCounts(valid_rows=100, unchanged=90, deletes=10, snapshot_active=100)
    assert check_guards(counts, _spec(), SETTINGS) is None  # 10 of 100 is not more than 10 %


def test_an_extract_without_valid_rows_stops_the_run_unless_allowed() -> None:
    empty = PlanCounts(valid_rows=0, snapshot_active=5)
    stop = check_guards(empty, _spec(), SETTINGS)
    assert stop is not None and stop.exit_code == ExitCode.GUARD == 3
    assert "no valid rows" in stop.message and "--allow-empty" in stop.message
    assert check_guards(empty, _spec(allow_empty=True), SETTINGS) is None


@pytest.mark.parametrize(
    ("deletes", "active", "stops"),
    [(11, 100, True), (10, 100, False), (1, 0, True), (0, 0, False), (1, 10, False)],
)
def test_deletes_beyond_the_fraction_of_the_snapshot_stop_the_run(
    deletes: int, active: int, stops: bool
) -> None:
    counts = PlanCounts(valid_rows=1, deletes=deletes, snapshot_active=active)
    stop = check_guards(counts, _spec(), SETTINGS)
    assert (stop is not None) == stops
    if stop is not None:
        assert stop.exit_code == ExitCode.GUARD
        assert f"deletes {deletes} of {active} customers, more than 10%" in stop.message
    assert check_guards(counts, _spec(allow_deletes=True), SETTINGS) is None


def test_the_fraction_comes_from_the_settings() -> None:
    counts = PlanCounts(valid_rows=1, deletes=30, snapshot_active=100)
    assert check_guards(counts, _spec(), SETTINGS) is not None
    assert check_guards(counts, _spec(), Settings(max_delete_fraction=0.5)) is None


def test_an_empty_extract_is_the_reason_given_first() -> None:
    counts = PlanCounts(valid_rows=0, deletes=50, snapshot_active=50)
    stop = check_guards(counts, _spec(), SETTINGS)
    assert stop is not None and "no valid rows" in stop.message


@pytest.mark.parametrize(
    ("rows", "valid", "fraction", "stops"),
    [
        (100, 95, 0.05, False),
        (100, 94, 0.05, True),
        (42, 39, 0.05, True),
        (42, 39, 0.1, False),
        (84, 3, 0.05, True),
        (0, 0, 0.05, False),
        (10, 10, 0.0, False),
        (10, 9, 0.0, True),
    ],
)
def test_an_extract_mostly_rejected_stops_the_run(
    rows: int, valid: int, fraction: float, stops: bool
) -> None:
    counts = PlanCounts(extract_rows=rows, valid_rows=valid, snapshot_active=50)
    spec = RunSpec(flow="sync", extract=("x.csv",), target="sumup", allow_empty=True)
    stop = check_guards(counts, spec, Settings(max_reject_fraction=fraction))
    assert (stop is not None) == stops
    if stop is not None:
        assert stop.exit_code == ExitCode.GUARD
        assert f"{rows - valid} of {rows} extract rows were rejected" in stop.message
        assert "--max-reject-fraction" in stop.message


def test_the_reject_guard_is_on_by_default() -> None:
    assert Settings().max_reject_fraction == 0.05
    counts = PlanCounts(extract_rows=84, valid_rows=2)  # two nights' files: every key twice
    stop = check_guards(counts, _spec(), Settings())
    assert stop is not None and stop.exit_code == ExitCode.GUARD
