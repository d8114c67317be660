"""One writer per state file for a whole run, readers between its writes (state.access)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from pipelines.state.access import LockedError, WriterLock, check_no_writer, connect, sidecar
from pipelines.state.store import StateError, StateStore

HOLD = """
import sys, time
from pipelines.state.store import StateStore
store = StateStore(sys.argv[1])
print('held', flush=True)
if sys.argv[2] == 'release':
    store.release()  # between two writes of a run: the writer lock stays
    print('released', flush=True)
sys.stdin.readline()  # until the test says so
if sys.argv[2] == 'release':
    store.begin_run(flow='sync', target='sumup', mode='upsert', dry_run=True,
                    extract_paths=[], params={})  # opens the file again, waiting for readers
print('wrote', flush=True)
"""


@contextmanager
def holder(path: Path, how: str) -> Iterator[subprocess.Popen[str]]:
    """Another process with a writable store of ``path``: holding the DuckDB file ("hold"), or
    having released it between writes ("release")."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), how],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "held"
        if how == "release":
            assert proc.stdout.readline().strip() == "released"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _new_state(path: Path) -> Path:
    StateStore(path).close()
    return path


def test_a_second_writer_is_refused_at_once_naming_the_holder(tmp_path: Path) -> None:
    path = _new_state(tmp_path / "state.duckdb")
    with holder(path, "release") as proc:
        started = time.monotonic()
        with pytest.raises(StateError, match=rf"locked by another process \(PID {proc.pid}\)"):
            StateStore(path, wait_s=30)
        assert time.monotonic() - started < 20  # refused, not queued for the wait
        with pytest.raises(LockedError) as refused:
            check_no_writer(path)
        assert refused.value.pid == proc.pid
    StateStore(path).close()  # the holder's end frees it
    check_no_writer(path)


def test_a_reader_gets_in_while_the_writer_is_between_writes(tmp_path: Path) -> None:
    path = _new_state(tmp_path / "state.duckdb")
    with holder(path, "release") as proc:
        with StateStore(path, read_only=True, wait_s=0) as reader:
            assert reader.recent_runs(5).height == 0
            # The writer wants the file back: it waits for this reader, then writes.
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
            time.sleep(0.3)
            assert proc.poll() is None
        assert proc.stdout.readline().strip() == "wrote"
    with StateStore(path, read_only=True) as reader:
        assert reader.recent_runs(5).height == 1


def test_a_reader_waits_for_a_hold_up_to_its_wait(tmp_path: Path) -> None:
    path = _new_state(tmp_path / "state.duckdb")
    with holder(path, "hold") as proc:
        with pytest.raises(StateError, match=rf"\(PID {proc.pid}\) for 0.2 s"):
            StateStore(path, read_only=True, wait_s=0.2)
        with pytest.raises(LockedError):
            connect(path, read_only=True, wait_s=0)
        # the holder writes, then exits: a reader waiting meanwhile gets in
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
        connect(path, read_only=True, wait_s=30).close()
        assert proc.wait(timeout=30) == 0


def test_the_writer_lock_is_reentrant_in_a_process_and_freed_by_the_last_holder(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.duckdb"
    first, second = WriterLock(path), WriterLock(path)
    first.acquire()
    second.acquire()
    assert first.held and second.held
    first.release()
    first.release()  # idempotent: the count drops once
    assert not first.held and second.held
    assert sidecar(path).read_text().strip().isdigit()  # the holder's PID, for the refused
    second.release()
    assert sidecar(path).read_text() == ""


def test_a_released_store_reopens_on_use_and_a_closed_one_does_not(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.duckdb")
    store.release()
    run_id = store.begin_run(
        flow="sync", target="sumup", mode="upsert", dry_run=True, extract_paths=[], params={}
    )
    store.release()
    assert store.recent_runs(5)["run_id"].to_list() == [run_id]
    store.close()
    with pytest.raises(StateError, match="closed"):
        store.recent_runs(5)
    with duckdb.connect(str(tmp_path / "state.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM runs").fetchall() == [(1,)]
