"""A CLI process that imported Prefect skips the interpreter's teardown (pipelines/cli.py):
its exit code and its whole output are kept; a caller's main(...) in-process is not ended."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import DAY1

pytestmark = pytest.mark.e2e

# Prefect is imported first, as every `sync` under a Prefect API does.
PROGRAM = "import sys, prefect\nfrom pipelines.cli import main\nmain(sys.argv[1:])\n"


def _run(code: str, *args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTSYNC_", "PREFECT_API"))}
    env.update(
        CUSTSYNC_STATE=str(tmp_path / "state.duckdb"),
        CUSTSYNC_CONFIG=str(tmp_path / "absent.toml"),
        CUSTSYNC_SUMUP_API_KEY="sup_sk_sandbox",
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=300
    )


def test_the_exit_code_and_every_line_of_output_survive_the_fast_exit(tmp_path: Path) -> None:
    planned = _run(PROGRAM, "sync", str(DAY1), "-t", "sumup", "--dry-run", tmp_path=tmp_path)
    assert planned.returncode == 0, planned.stderr
    # A report of many runs: far more than one pipe buffer, every byte of it flushed.
    for _ in range(3):
        _run(PROGRAM, "sync", str(DAY1), "-t", "sumup", "--dry-run", tmp_path=tmp_path)
    report = _run(PROGRAM, "report", "--format", "json", tmp_path=tmp_path)
    assert report.returncode == 0, report.stderr
    assert len(json.loads(report.stdout)) == 4
    refused = _run(PROGRAM, "sync", str(tmp_path / "nope.csv"), "-t", "sumup", tmp_path=tmp_path)
    assert refused.returncode == 2 and "nope.csv" in refused.stderr


def test_main_called_with_a_list_of_its_own_returns_to_its_caller(tmp_path: Path) -> None:
    code = (
        "import sys, prefect\n"
        "from pipelines.cli import main\n"
        "try:\n"
        "    main(['report', '--last', '1'])\n"
        "except SystemExit as exc:\n"
        "    print('caller goes on after exit', exc.code)\n"
        "sys.exit(5)\n"
    )
    done = _run(code, "--unrelated", tmp_path=tmp_path)
    assert "caller goes on after exit 2" in done.stdout  # no state file yet: exit 2
    assert done.returncode == 5  # the caller's own exit, not the command's
