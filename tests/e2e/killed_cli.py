"""The real ``custsync`` CLI, killed right after the provider answered an erase.

``python tests/e2e/killed_cli.py ARGS...`` runs ``pipelines.cli.main(ARGS)`` after patching, in
this process only, the ledger: the first batch holding an ``erase`` outcome ends the process
with ``os._exit(137)`` (what a ``kill -9`` leaves) before anything of it is recorded. The
provider has erased the customer; the state file still says the erase is pending.
No product code knows about it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

KILLED = 137


def _plant() -> None:
    from pipelines.ledger import Ledger

    original = Ledger.record

    def record(self: Ledger, result: Any) -> int:
        if any(o["action"] == "erase" for o in result.outcomes):
            os._exit(KILLED)
        return original(self, result)

    Ledger.record = record  # type: ignore[method-assign]


if __name__ == "__main__":
    _plant()
    from pipelines.cli import main

    args = sys.argv[1:]
    sys.argv = ["custsync", *args]
    main(args)
