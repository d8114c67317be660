"""Preflight: a run its inputs make impossible is refused before Prefect is even imported.

Each case runs the real CLI in a fresh interpreter (not the forking runner, whose parent has
Prefect loaded) and checks: exit code 2, one line on stderr naming the problem, and that the
process never imported ``prefect``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from tests.e2e.conftest import DAY1

pytestmark = pytest.mark.e2e

# Runs the CLI like the console script, then reports whether Prefect was ever imported.
PROBE = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('prefect imported: %s' % ('prefect' in sys.modules),"
    " file=sys.stderr))\n"
    "from pipelines.cli import main\n"
    "main(sys.argv[1:])\n"
)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTSYNC_", "PREFECT_API"))}
    env.update(
        CUSTSYNC_STATE=str(tmp_path / "state.duckdb"),
        CUSTSYNC_CONFIG=str(tmp_path / "absent.toml"),
        CUSTSYNC_CRASH_DIR=str(tmp_path / "crashes"),
        **extra,
    )
    return env


def _bad_mapping(tmp_path: Path) -> list[str]:
    mapping = tmp_path / "mapping.toml"
    mapping.write_text("[columns\nid = 'external_id'\n")
    return [str(DAY1), "--target", "sumup", "--mapping", str(mapping)]


def _no_key_column(tmp_path: Path) -> list[str]:
    extract = tmp_path / "extract.csv"
    extract.write_text("id,first_name\nA,Ann\n")
    return [str(extract), "--target", "sumup"]


def _no_credentials(tmp_path: Path) -> list[str]:
    return [str(DAY1), "--target", "sumup"]


def _locked_state(tmp_path: Path) -> list[str]:
    return [str(DAY1), "--target", "sumup", "--dry-run"]


CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "bad mapping": (_bad_mapping, "cannot read the column mapping"),
    "no key column": (_no_key_column, "the required column is missing from the header"),
    "no credentials": (_no_credentials, "no SumUp credentials"),
    "locked state file": (_locked_state, "locked by another process"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_run_its_inputs_rule_out_stops_before_prefect(tmp_path: Path, case: str) -> None:
    make, expected = CASES[case]
    args = make(tmp_path)
    env = _env(tmp_path)
    if case != "no credentials":
        env["CUSTSYNC_SUMUP_API_KEY"] = "sup_sk_sandbox"
    holder = None
    if case == "locked state file":
        # Another process writes the state file, as a running sync does (its writer lock).
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys, time; from pipelines.state.store import StateStore;"
                " s = StateStore(sys.argv[1]); print('held', flush=True); time.sleep(60)",
                env["CUSTSYNC_STATE"],
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    try:
        done = subprocess.run(
            [sys.executable, "-c", PROBE, "sync", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        if holder is not None:
            holder.kill()
            holder.wait()
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert lines[-1] == "prefect imported: False", done.stderr
    assert len(lines) == 2 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert "Traceback" not in done.stderr


def test_a_dry_run_needs_no_credentials_and_a_good_run_passes_preflight(tmp_path: Path) -> None:
    from pipelines.commands.preflight import preflight

    env = _env(tmp_path)
    options = {"target": "sumup", "extract": (str(DAY1),), "dry_run": True, "state": None}
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith(("CUSTSYNC_", "PREFECT_API"))]:
            mp.delenv(key)
        for key, value in env.items():
            if key.startswith("CUSTSYNC_"):
                mp.setenv(key, value)
        preflight(options, flow="sync")  # no SystemExit
        with duckdb.connect(env["CUSTSYNC_STATE"]) as con:
            con.execute("CREATE TABLE sales AS SELECT 1 AS id")
        with pytest.raises(SystemExit) as stopped:
            preflight(options, flow="sync")
        assert stopped.value.code == 2


def test_with_json_the_refusal_is_also_the_one_json_object(tmp_path: Path) -> None:
    import json

    env = _env(tmp_path, CUSTSYNC_SUMUP_API_KEY="sup_sk_sandbox")
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "sync", *_no_key_column(tmp_path), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["exit_code"] == 2 and summary["run_id"] is None and summary["calls"] == 0
    assert "the required column is missing" in summary["message"]
    assert "prefect imported: False" in done.stderr
