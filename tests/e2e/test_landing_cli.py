"""The landing folder through the real CLI (no Prefect API: the local path), on the sandbox.

Two nights dropped: the newest is read, the older one moved unread; a rerun reads nothing;
a file dropped again is known by its SHA-256; a dry run and a guard stop move nothing read.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from connectors.sandbox.server import SandboxServer
from tests.e2e.conftest import DAY1, DAY2, total_calls
from tests.e2e.test_preflight import PROBE

pytestmark = pytest.mark.e2e


def _cli(
    sandbox: SandboxServer, state: Path, *args: str, **extra: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTSYNC_", "PREFECT_API"))}
    env.update(
        CUSTSYNC_STATE=str(state),
        CUSTSYNC_CONFIG=str(state.with_name("absent.toml")),
        CUSTSYNC_SUMUP_BASE_URL=sandbox.base_url,
        CUSTSYNC_SUMUP_API_KEY="sup_sk_sandbox",
        CUSTSYNC_LANDING_SETTLE_S="0.05",
        CUSTSYNC_MAX_REJECT_FRACTION="1",  # the sample's day 2 has 3 rejects of 42
        **extra,
    )
    return subprocess.run(
        [sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, timeout=300
    )


def _summary(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


def _inputs(state: Path, run_id: str) -> list[dict[str, Any]]:
    with duckdb.connect(str(state), read_only=True) as con:
        row = con.execute("SELECT inputs FROM runs WHERE run_id = ?", [run_id]).fetchone()
    assert row is not None
    return list(json.loads(row[0]))


@pytest.fixture
def folders(tmp_path: Path, sandbox: SandboxServer) -> tuple[Path, Path, str]:
    sandbox.admin.reset(config=True)
    incoming, processed = tmp_path / "incoming", tmp_path / "processed"
    incoming.mkdir()
    return incoming, processed, str(incoming / "customers-*.csv")


def test_two_nights_the_newest_is_read_the_older_moved_unread_and_a_rerun_reads_nothing(
    sandbox: SandboxServer, tmp_path: Path, folders: tuple[Path, Path, str]
) -> None:
    incoming, processed, glob = folders
    state = tmp_path / "state.duckdb"
    shutil.copy(DAY2, incoming / "customers-20261205.csv")  # the older night
    shutil.copy(DAY1, incoming / "customers-20261206.csv")  # the newest night
    (incoming / "customers-20261207.csv.part").write_text("external_id\n")  # still arriving

    done = _cli(sandbox, state, "sync", glob, "-t", "sumup", "--landing", "--json")

    assert done.returncode == 0, done.stderr
    summary = _summary(done)
    assert summary["create"]["succeeded"] == 40 and summary["rejected"] == 0  # DAY1's rows
    assert summary["landing"]["night"] == "20261206"
    assert summary["landing"]["superseded"] == [str(incoming / "customers-20261205.csv")]
    assert "prefect imported: False" in done.stderr
    # Both nights moved to processed/, the night still arriving left where it is.
    assert sorted(p.name for p in processed.iterdir()) == [
        "customers-20261205.csv",
        "customers-20261206.csv",
    ]
    assert [p.name for p in incoming.iterdir()] == ["customers-20261207.csv.part"]
    (read,) = _inputs(state, summary["run_id"])
    assert read == {
        "path": str(incoming / "customers-20261206.csv"),
        "bytes": DAY1.stat().st_size,
        "sha256": hashlib.sha256(DAY1.read_bytes()).hexdigest(),
        "rows": 40,
        "kind": "customers",
        "night": "20261206",
        "processed": str(processed / "customers-20261206.csv"),
    }

    calls = total_calls(sandbox)
    again = _cli(sandbox, state, "sync", glob, "-t", "sumup", "--landing", "--json")
    assert again.returncode == 0, again.stderr
    summary = _summary(again)
    assert summary["message"].startswith("nothing new in the landing folder")
    assert "still being written" in summary["message"]
    assert total_calls(sandbox) == calls and _inputs(state, summary["run_id"]) == []

    # The same night dropped again (the CRM re-sent it): known by its SHA-256, not read,
    # moved beside the first copy without overwriting it.
    shutil.copy(DAY1, incoming / "customers-20261206.csv")
    third = _cli(sandbox, state, "sync", glob, "-t", "sumup", "--landing")
    assert third.returncode == 0, third.stderr
    assert "nothing new in the landing folder" in third.stdout
    assert "already synced (same SHA-256)" in third.stderr
    line = "landing folder: night none · 1 already synced · 1 still being written · 1 moved"
    assert f"{line} to processed/\n" in third.stdout  # one line, however narrow the output
    assert total_calls(sandbox) == calls
    assert (processed / "customers-20261206.1.csv").read_bytes() == DAY1.read_bytes()
    assert (processed / "customers-20261206.csv").read_bytes() == DAY1.read_bytes()


def test_a_dry_run_moves_nothing_and_the_real_run_then_reads_the_same_files(
    sandbox: SandboxServer, tmp_path: Path, folders: tuple[Path, Path, str]
) -> None:
    incoming, _processed, glob = folders
    state = tmp_path / "state.duckdb"
    elsewhere = tmp_path / "archive"
    shutil.copy(DAY1, incoming / "customers-20261206-part1.csv")
    dry = _cli(sandbox, state, "sync", glob, "-t", "sumup", "--landing", "--dry-run", "--json")
    assert dry.returncode == 0 and _summary(dry)["create"]["planned"] == 40
    assert [p.name for p in incoming.iterdir()] == ["customers-20261206-part1.csv"]
    real = _cli(
        sandbox, state, "sync", glob, "-t", "sumup", "--landing", "--processed", str(elsewhere),
        "--json",
    )  # fmt: skip
    assert real.returncode == 0 and _summary(real)["create"]["succeeded"] == 40
    assert [p.name for p in elsewhere.iterdir()] == ["customers-20261206-part1.csv"]


def test_a_guard_stop_leaves_the_night_in_place_for_the_run_that_allows_it(
    sandbox: SandboxServer, tmp_path: Path, folders: tuple[Path, Path, str]
) -> None:
    incoming, processed, glob = folders
    state = tmp_path / "state.duckdb"
    shutil.copy(DAY1, incoming / "customers-20261205.csv")
    assert _cli(sandbox, state, "sync", glob, "-t", "sumup", "--landing").returncode == 0
    # The next night holds 5 customers of 40: a mirror would close 35 (over 10 %).
    head = "".join(DAY1.read_text().splitlines(keepends=True)[:6])
    (incoming / "customers-20261206.csv").write_text(head)
    mirror = ["sync", glob, "-t", "sumup", "--mode", "mirror", "--landing", "--json"]
    stopped = _cli(sandbox, state, *mirror)
    assert stopped.returncode == 3, stopped.stderr
    assert [p.name for p in incoming.iterdir()] == ["customers-20261206.csv"]
    allowed = _cli(sandbox, state, *mirror, "--allow-deletes")
    assert allowed.returncode == 0, allowed.stderr
    summary = _summary(allowed)
    assert summary["landing"]["read"] == [str(incoming / "customers-20261206.csv")]
    assert summary["delete"]["succeeded"] == 35, summary
    assert sorted(p.name for p in processed.iterdir()) == [
        "customers-20261205.csv",
        "customers-20261206.csv",
    ]


def test_instruments_files_of_every_new_night_are_read_with_the_customers_night(
    sandbox: SandboxServer, tmp_path: Path, folders: tuple[Path, Path, str]
) -> None:
    incoming, processed, glob = folders
    state = tmp_path / "state.duckdb"
    shutil.copy(DAY1, incoming / "customers-20261205.csv")
    assert _cli(sandbox, state, "sync", glob, "-t", "sumup", "--landing").returncode == 0
    shutil.copy(DAY1, incoming / "customers-20261206.csv")  # unchanged customers
    (incoming / "customers-20261206.csv").write_text(DAY1.read_text() + "\n")  # a new file
    (incoming / "instruments-20261205.csv").write_text("external_id,token\nCRM-00003,tok_a\n")
    (incoming / "instruments-20261206.csv").write_text("external_id,token\nCRM-00011,tok_b\n")
    instruments = str(incoming / "instruments-*.csv")
    args = ["sync", glob, "-t", "sumup", "--landing", "--instruments", instruments, "--json"]
    done = _cli(sandbox, state, *args)
    summary = _summary(done)
    # Deactivation lists add up: both nights are read (the sandbox knows neither token).
    assert summary["deactivate"]["planned"] == 2, done.stderr
    kinds = sorted((e["kind"], Path(e["path"]).name) for e in _inputs(state, summary["run_id"]))
    assert kinds == [
        ("customers", "customers-20261206.csv"),
        ("instruments", "instruments-20261205.csv"),
        ("instruments", "instruments-20261206.csv"),
    ]
    assert not list(incoming.iterdir()) and len(list(processed.iterdir())) == 4


def test_preflight_a_missing_landing_folder_is_exit_2_an_empty_one_is_nothing_new(
    sandbox: SandboxServer, tmp_path: Path, folders: tuple[Path, Path, str]
) -> None:
    _incoming, _processed, glob = folders
    state = tmp_path / "state.duckdb"
    missing = _cli(sandbox, state, "sync", str(tmp_path / "nope" / "c-*.csv"), "-t", "sumup",
                   "--landing")  # fmt: skip
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"error: extract: the landing folder {tmp_path / 'nope'} does not exist",
        "prefect imported: False",
    ]
    alone = _cli(sandbox, state, "sync", str(DAY1), "-t", "sumup", "--processed", "x")
    assert alone.returncode == 2 and "it needs --landing" in alone.stderr
    bad_instruments = ["--instruments", str(tmp_path / "gone" / "instruments.csv")]
    refused = _cli(sandbox, state, "sync", glob, "-t", "sumup", "--landing", *bad_instruments)
    assert refused.returncode == 2
    assert f"instruments extract: the landing folder {tmp_path / 'gone'}" in refused.stderr
    # A file named outright (no glob) that last night's run moved away is not an error.
    moved_away = ["--instruments", str(tmp_path / "incoming" / "instruments.csv")]
    empty = _cli(sandbox, state, "sync", glob, "-t", "sumup", "--landing", "--json", *moved_away)
    assert empty.returncode == 0, empty.stderr
    summary = _summary(empty)
    assert summary["message"] == f"nothing new in the landing folder (no file matches {glob})"
    assert summary["calls"] == 0 and summary["status"] == "done"
