"""The plan benchmark compares like with like: its stock diff finds what custsync plans.

A ratio to a baseline that diffs something else (a wrong join, a hash that differs for equal
rows read from CSV) would say nothing, so these tests pin the baseline to the differences the
generator planted, and to custsync's own plan on the same files. Timings are never asserted.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).with_name("plan_throughput.py")
ROWS = 1_000


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("plan_throughput", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load_script()


def _key(i: int) -> str:
    return f"CRM-{i:09d}"


def _planted() -> dict[str, set[str]]:
    """The keys the generator changes, adds and drops, worked out independently of it."""
    buckets = {i: (i * 7919) % 100 for i in range(ROWS)}
    return {
        "changed": {_key(i) for i, bucket in buckets.items() if bucket < 5},
        "new": {_key(i) for i in range(ROWS, ROWS + ROWS // 100)},
        "gone": {_key(i) for i, bucket in buckets.items() if bucket == 99},
    }


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("plan-bench")
    bench.generate(ROWS, directory, "verifone", csv=True)
    return directory


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_stock_diff_finds_exactly_the_planted_differences(workdir: Path, kind: str) -> None:
    diff = bench.stock_diff(workdir / f"today.{kind}", workdir / bench.STOCK_SNAPSHOT).collect(
        engine="streaming"
    )
    found = {
        action: set(diff.filter(diff["action"] == action)["external_id"])
        for action in ("changed", "new", "gone")
    }
    assert found == _planted()
    assert diff.height == sum(len(keys) for keys in found.values())  # no null or extra action


def test_custsync_plans_what_the_stock_diff_finds(workdir: Path) -> None:
    shutil.copyfile(workdir / bench.PRISTINE_STATE, workdir / bench.STATE)
    ours = bench.measure(workdir / "today.parquet", workdir / bench.STATE, "verifone")
    stock = bench.measure_stock(workdir / "today.parquet", workdir / bench.STOCK_SNAPSHOT)
    planted = {action: len(keys) for action, keys in _planted().items()}
    assert stock["actions"] == planted
    assert bench._same_diff(ours["actions"], stock["actions"])
    assert ours["rejects"] == 0


def test_same_diff_tells_a_mismatch() -> None:
    stock = {"new": 10, "changed": 50, "gone": 10}
    assert bench._same_diff({"create": 10, "update": 50, "delete": 10, "unchanged": 5}, stock)
    assert not bench._same_diff({"create": 10, "update": 49, "delete": 10}, stock)
    assert not bench._same_diff({"create": 10, "update": 50, "delete": 10, "close": 1}, stock)


def test_last_line_reports_the_ratios_of_the_medians(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--rows", "500", "--repeat", "1", "--workdir", str(tmp_path)],
        check=True,
        capture_output=True,
        text=True,
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    for kind in ("parquet", "csv"):
        plan_s, stock_s = figures[f"{kind}_plan_s"], figures[f"{kind}_stock_s"]
        assert plan_s > 0 and stock_s > 0
        assert figures[f"{kind}_plan_vs_stock"] == round(plan_s / stock_s, 2)
        cpu_ratio = figures[f"{kind}_cpu_s"] / figures[f"{kind}_stock_cpu_s"]
        assert figures[f"{kind}_cpu_vs_stock"] == round(cpu_ratio, 2)
        assert figures[f"{kind}_same_diff"] is True
        assert figures[f"{kind}_stock_peak_rss_mb"] > 0
    assert set(figures["budgets_met"]) == {"parquet_ratio", "csv_ratio", "parquet_rss"}
    assert len(figures["load_avg_before"]) == len(figures["load_avg_after"]) == 3


def test_bad_arguments_are_a_usage_error(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--rows", "10", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert "--rows must be at least 100" in out.stderr
    assert "Traceback" not in out.stderr
