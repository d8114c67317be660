"""The real ``custsync`` CLI with a bug planted: a polars-style Rust panic.

``python tests/e2e/panicking_cli.py plan|execute ARGS...`` runs ``pipelines.cli.main(ARGS)``
after patching, in this process only, either the planner (``plan``: it panics with a message
quoting the extract's first row, as polars errors quote data) or the executor (``execute``: the
second batch panics after the first one was recorded). No product code knows about it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from polars.exceptions import PanicException  # pyo3_runtime.PanicException: a BaseException

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def _plant_in_planner() -> None:
    import transforms.planner

    def build_plan(frame: Any, *args: Any, **kwargs: Any) -> Any:
        first_row = frame.head(1).collect().row(0, named=True)  # a local full of customer data
        raise PanicException(f"called `Option::unwrap()` on a `None` value at {first_row}")

    transforms.planner.build_plan = build_plan  # pipelines.planning imports it after this


def _plant_in_executor() -> None:
    from pipelines.executor import BatchExecutor

    original = BatchExecutor.run
    batches = 0

    async def run(self: BatchExecutor, rows: Any) -> Any:
        nonlocal batches
        batches += 1
        if batches == 2:
            raise PanicException(f"index out of bounds at {rows[0]}")
        return await original(self, rows)

    BatchExecutor.run = run  # type: ignore[method-assign]


if __name__ == "__main__":
    where, args = sys.argv[1], sys.argv[2:]
    {"plan": _plant_in_planner, "execute": _plant_in_executor}[where]()
    from pipelines.cli import main

    sys.argv = ["custsync", *args]
    main(args)
