"""End-to-end: a run the provider refused (401/403) or that stopped otherwise leaves a state
file that works: refused actions are closed, never reconciled, and every call made is logged.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pytest

from connectors.sandbox.server import SandboxServer
from tests.e2e.conftest import DAY1, route_counts, state_file, sync, total_calls
from tests.e2e.expect import assert_in_step
from tests.e2e.gen import write_extract

pytestmark = pytest.mark.e2e

SEARCH = "GET /v2/customer"
CREATE = "POST /v2/customer"


def _one(sql: str, params: list[Any] | None = None) -> Any:
    with duckdb.connect(state_file(), read_only=True) as con:
        row = con.execute(sql, params or []).fetchone()
    assert row is not None
    return row[0]


def _logged_calls(run_id: str) -> int:
    return int(_one("SELECT count(*) FROM calls WHERE run_id = ?", [run_id]))


def _pending() -> int:
    return int(_one("SELECT count(*) FROM journal WHERE state = 'pending'"))


def _counted_sync(sandbox: SandboxServer, **params: Any) -> tuple[dict[str, Any], int]:
    """Run a sync; return its summary and the calls the sandbox answered meanwhile."""
    before = total_calls(sandbox)
    summary = sync(**params)
    return summary, total_calls(sandbox) - before


def test_wrong_entity_is_refused_then_a_fixed_setting_creates_each_customer_once(
    env: dict[str, str], sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A token scoped to sandbox-entity, pointed at another entity: every create gets 403.
    monkeypatch.setenv("CUSTSYNC_VERIFONE_TOKEN", "sandbox-scoped-token")
    monkeypatch.setenv("CUSTSYNC_VERIFONE_ENTITY_ID", "wrong-entity")
    refused = sync(extract=[str(DAY1)], target="verifone", concurrency=4, rate_limit=0)
    assert refused["exit_code"] == 4, refused
    assert sandbox.admin.state()["verifone"]["customers"] == []
    assert _pending() == 0, "a create answered 403 was certainly not made: never pending"
    n403 = _one(
        "SELECT count(*) FROM outcomes WHERE run_id = ? AND result = 'failed'"
        " AND http_status = 403 AND error_class = 'AuthError'",
        [refused["run_id"]],
    )
    assert n403 >= 1

    monkeypatch.setenv("CUSTSYNC_VERIFONE_ENTITY_ID", "sandbox-entity")
    before = route_counts(sandbox)
    fixed = sync(extract=[str(DAY1)], target="verifone", concurrency=4, rate_limit=0)
    after = route_counts(sandbox)
    assert fixed["exit_code"] == 0, fixed
    assert after.get(SEARCH, 0) - before.get(SEARCH, 0) == 0, "no reconciliation search"
    assert_in_step(sandbox, state_file(), "verifone", DAY1)  # each once, under sandbox-entity


def _dead_url() -> str:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_a_pending_create_sent_to_another_entity_is_replanned_not_fatal(
    env: dict[str, str], sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Unreachable provider: the creates' outcome is unknown, so they stay pending, with the
    # entity id of the time.
    monkeypatch.setenv("CUSTSYNC_VERIFONE_BASE_URL", _dead_url())
    monkeypatch.setenv("CUSTSYNC_VERIFONE_ENTITY_ID", "old-entity")
    lost = sync(extract=[str(DAY1)], target="verifone")
    assert lost["exit_code"] == 2, lost
    in_doubt = _pending()
    assert in_doubt > 0

    monkeypatch.setenv("CUSTSYNC_VERIFONE_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("CUSTSYNC_VERIFONE_ENTITY_ID", "sandbox-entity")
    fixed = sync(extract=[str(DAY1)], target="verifone")
    assert fixed["exit_code"] == 0, fixed
    assert _pending() == 0
    superseded = _one(
        "SELECT count(*) FROM outcomes WHERE run_id = ? AND result = 'skipped'"
        " AND error_code = 'ENTITY_CHANGED'",
        [fixed["run_id"]],
    )
    assert superseded == in_doubt
    assert_in_step(sandbox, state_file(), "verifone", DAY1)
    again = sync(extract=[str(DAY1)], target="verifone")
    assert again["exit_code"] == 0 and again["calls"] == 0, again


@contextmanager
def _revoked_after(sandbox: SandboxServer, calls: int) -> Iterator[threading.Event]:
    """Revoke the Verifone token once the sandbox has answered ``calls`` calls."""
    done = threading.Event()
    revoked = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if total_calls(sandbox) >= calls:
                sandbox.admin.configure(verifone_token="revoked-mid-run")
                revoked.set()
                return
            time.sleep(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield revoked
    finally:
        done.set()
        thread.join(timeout=10)


CONCURRENCY = [1, 4, 16]


@pytest.mark.parametrize("concurrency", CONCURRENCY)
def test_every_call_is_logged_when_the_credentials_are_refused(
    concurrency: int, env: dict[str, str], sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUSTSYNC_VERIFONE_TOKEN", "not-the-token")
    summary, answered = _counted_sync(
        sandbox, extract=[str(DAY1)], target="verifone", concurrency=concurrency, rate_limit=0
    )
    assert summary["exit_code"] == 4, summary
    assert _logged_calls(summary["run_id"]) == answered == summary["calls"]
    assert _pending() == 0


@pytest.mark.parametrize("concurrency", CONCURRENCY)
def test_every_call_is_logged_when_the_key_is_revoked_mid_run(
    concurrency: int, env: dict[str, str], sandbox: SandboxServer, tmp_path: Path
) -> None:
    extract = write_extract(tmp_path / "many.csv", 400)
    sandbox.admin.configure(latency_ms=3)
    params = {"extract": [str(extract)], "target": "verifone", "rate_limit": 0}
    with _revoked_after(sandbox, 60) as revoked:
        summary, answered = _counted_sync(
            sandbox, **params, concurrency=concurrency, batch_size=100
        )
    assert revoked.is_set()
    assert summary["exit_code"] == 4, summary
    assert _logged_calls(summary["run_id"]) == answered
    made = len(sandbox.admin.state()["verifone"]["customers"])
    assert 0 < made < 400

    # The refused creates are closed: the next run creates the rest, searching for none.
    sandbox.admin.configure(verifone_token="sandbox-token", latency_ms=0)
    before = route_counts(sandbox)
    again, answered = _counted_sync(sandbox, **params, concurrency=concurrency)
    after = route_counts(sandbox)
    assert again["exit_code"] == 0, again
    assert _logged_calls(again["run_id"]) == answered
    assert after.get(SEARCH, 0) - before.get(SEARCH, 0) == 0
    assert after.get(CREATE, 0) - before.get(CREATE, 0) == 400 - made
    assert_in_step(sandbox, state_file(), "verifone", extract)


@pytest.mark.parametrize("concurrency", CONCURRENCY)
def test_every_call_is_logged_when_the_breaker_stops_the_run(
    concurrency: int, env: dict[str, str], sandbox: SandboxServer
) -> None:
    # Every call is answered by a dropped connection: the breaker stops the run.
    sandbox.admin.configure(fault_rate=1.0, fault_kinds=["reset"])
    try:
        summary, answered = _counted_sync(
            sandbox, extract=[str(DAY1)], target="verifone", concurrency=concurrency, rate_limit=0
        )
    finally:
        sandbox.admin.configure(fault_rate=0.0)
    assert summary["exit_code"] == 2, summary
    assert _logged_calls(summary["run_id"]) == answered


@pytest.mark.parametrize("concurrency", CONCURRENCY)
def test_every_call_is_logged_when_a_guard_stops_the_run(
    concurrency: int,
    env: dict[str, str],
    sandbox: SandboxServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Leave creates pending (unreachable provider), then run on an empty extract: the
    # reconciliation searches go out, then the guard stops the run.
    monkeypatch.setenv("CUSTSYNC_VERIFONE_BASE_URL", _dead_url())
    sync(extract=[str(DAY1)], target="verifone")
    monkeypatch.setenv("CUSTSYNC_VERIFONE_BASE_URL", sandbox.base_url)
    empty = tmp_path / "empty.csv"
    empty.write_text(DAY1.read_text().splitlines()[0] + "\n")
    summary, answered = _counted_sync(
        sandbox, extract=[str(empty)], target="verifone", concurrency=concurrency, rate_limit=0
    )
    assert summary["exit_code"] == 3, summary
    assert answered > 0, "the reconciliation searched"
    assert _logged_calls(summary["run_id"]) == answered
