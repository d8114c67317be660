"""The personal-data registry and the store's redaction: complete, exact, and limited to what
it is asked to redact."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.state.frames import empty_calls, outcomes_frame, snapshot_frame
from pipelines.state.redaction import (
    NOT_PERSONAL,
    PERSONAL_COLUMNS,
    REDACTED,
    redact_json,
)
from pipelines.state.store import StateStore
from transforms.diff import PLAN_SCHEMA

REPO = Path(__file__).resolve().parents[2]

# JSON text, keys and values, with what JSON must escape: quotes, backslashes, controls, and
# any other Unicode character.
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
LEAF = st.one_of(
    TEXT,
    st.integers(-(10**12), 10**12),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
)
PAYLOAD = st.recursive(
    st.dictionaries(TEXT, LEAF, max_size=5),
    lambda inner: st.one_of(
        st.dictionaries(TEXT, st.one_of(LEAF, inner), max_size=4), st.lists(inner, max_size=3)
    ),
    max_leaves=12,
)


def _shape(value: Any) -> Any:
    """``value`` with every non-null scalar replaced by the redaction mark."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return None if value is None else REDACTED


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path / "state.duckdb")


def _columns(store: StateStore) -> set[tuple[str, str]]:
    rows = store.con.execute(
        "SELECT c.table_name, c.column_name FROM information_schema.columns c"
        " JOIN information_schema.tables t USING (table_schema, table_name)"
        " WHERE t.table_type = 'BASE TABLE' AND c.table_schema = 'main'"
    ).fetchall()
    return {(t, c) for t, c in rows}


def test_every_column_of_the_state_file_is_classified_once(store: StateStore) -> None:
    personal = {(c.table, c.column) for c in PERSONAL_COLUMNS}
    assert not personal & set(NOT_PERSONAL), "a column is classified twice"
    assert _columns(store) == personal | set(NOT_PERSONAL), (
        "classify each new column in pipelines/state/redaction.py (and docs/state.md)"
    )


def test_docs_list_every_personal_column_with_how_it_is_redacted() -> None:
    text = (REPO / "docs" / "state.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `(\w+)\.(\w+)` \| (json|mark|null) \|", text, re.MULTILINE))
    assert rows == {(c.table, c.column, c.how) for c in PERSONAL_COLUMNS}


@settings(max_examples=200, deadline=None)
@given(payload=PAYLOAD)
def test_a_redacted_payload_keeps_its_shape_and_no_value(payload: Any) -> None:
    redacted = redact_json(orjson.dumps(payload).decode())
    assert orjson.loads(redacted) == _shape(payload)
    assert redact_json(redacted) == redacted, "redacting again changes nothing"


@given(text=TEXT.filter(lambda t: not _is_json(t)))
def test_text_that_is_not_json_is_redacted_whole(text: str) -> None:
    assert redact_json(text) == f'"{REDACTED}"'


def _is_json(text: str) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


def _plan_row(key: str, payload: dict[str, Any], action: str = "create") -> dict[str, Any]:
    return {
        "plan_id": f"p-{key}",
        "external_id": key,
        "action": action,
        "status": "active",
        "remote_id": f"r-{key}",
        "payload": orjson.dumps(payload).decode(),
        "content_hash": f"h-{key}",
        "base_payload": None,
        "reason": None,
        "content_key": 7,
    }


def _plan(store: StateStore, target: str, rows: list[dict[str, Any]]) -> str:
    run_id = store.begin_run(
        flow="sync", target=target, mode="upsert", dry_run=False, extract_paths=[], params={}
    )
    store.write_plan(run_id, target, pl.DataFrame(rows, schema=PLAN_SCHEMA))
    return run_id


def test_forgetting_redacts_only_that_key_at_that_target(store: StateStore) -> None:
    mine = {"billing": {"city": "Ölstadt"}, "email_address": "a@b.example"}
    _plan(store, "verifone", [_plan_row("K1", mine), _plan_row("K2", {"title": "Dr"})])
    _plan(store, "sumup", [_plan_row("K1", {"personal_details": {"first_name": "Åsa"}})])
    run_id = store.begin_run(
        flow="forget", target="verifone", mode="erase", dry_run=False, extract_paths=[], params={}
    )
    assert store.redact_forgotten(run_id, "verifone", ["K1"]) == 3  # payload, hash, key
    rows = dict(
        store.con.execute(
            "SELECT target || '/' || external_id, payload FROM plan ORDER BY 1"
        ).fetchall()
    )
    assert orjson.loads(rows["verifone/K1"]) == _shape(mine)
    assert rows["verifone/K2"] == '{"title":"Dr"}'
    assert "Åsa" in rows["sumup/K1"]
    assert store.con.execute(
        "SELECT content_hash, content_key, plan_id FROM plan WHERE external_id = 'K1'"
        " AND target = 'verifone'"
    ).fetchall() == [(None, None, "p-K1")]
    logged = store.con.execute(
        "SELECT table_name, column_name, rows FROM redactions WHERE rows > 0 ORDER BY 1, 2"
    ).fetchall()
    assert logged == [
        ("plan", "content_hash", 1),
        ("plan", "content_key", 1),
        ("plan", "payload", 1),
    ]


def test_retention_spares_young_rows_and_actions_still_in_flight(store: StateStore) -> None:
    run_id = _plan(
        store,
        "verifone",
        [_plan_row("OLD", {"title": "Dr"}), _plan_row("PENDING", {"title": "Prof"})],
    )
    store.open_journal(run_id, "verifone", ["p-PENDING"])
    rejects = pl.DataFrame(
        {
            "external_id": ["OLD"],
            "field": ["email"],
            "rule": ["email"],
            "message": ["x"],
            "value": ["a@***"],
        }
    )
    store.write_rejects(run_id, "verifone", rejects)
    now = datetime.now(UTC)
    assert store.apply_retention(run_id, now - timedelta(days=1)) == 0
    assert store.apply_retention(run_id, now + timedelta(seconds=5)) == 2
    payloads = dict(store.con.execute("SELECT external_id, payload FROM plan").fetchall())
    assert payloads == {"OLD": '{"title":"[redacted]"}', "PENDING": '{"title":"Prof"}'}
    assert store.con.execute("SELECT value FROM rejects").fetchall() == [(REDACTED,)]
    assert store.apply_retention(run_id, now + timedelta(seconds=5)) == 0, "done once"


def test_retention_reads_a_spared_row_again_once_its_action_is_recorded(
    store: StateStore,
) -> None:
    run_id = _plan(store, "verifone", [_plan_row("PENDING", {"title": "Prof"})])
    store.open_journal(run_id, "verifone", ["p-PENDING"])
    limit = datetime.now(UTC) + timedelta(seconds=5)
    assert store.apply_retention(run_id, limit) == 0, "in flight: crash recovery needs it"
    store.con.execute("UPDATE journal SET state = 'done', closed_at = now()")
    # The next pass's limit is later, the row older than the previous limit: read again only
    # because its intent was closed since that pass.
    assert store.apply_retention(run_id, limit + timedelta(seconds=1)) == 1
    assert store.con.execute("SELECT payload FROM plan").fetchall() == [('{"title":"[redacted]"}',)]


def test_a_key_never_erases_a_remote_id_another_key_owns(store: StateStore) -> None:
    run_id = _plan(store, "verifone", [_plan_row("LOST", {"title": "Dr"})])
    outcome = {
        "plan_id": "p-LOST", "external_id": "LOST", "action": "create", "result": "succeeded",
        "remote_id": "shared", "changed_fields": [], "drift_fields": [],
        "at": datetime.now(UTC),
    }  # fmt: skip
    keeper = {
        "external_id": "KEEPER", "remote_id": "shared", "content_hash": "h", "payload": "{}",
        "status": "active", "content_key": 1,
    }  # fmt: skip
    store.record_batch(
        run_id, "verifone", calls=empty_calls(), outcomes=outcomes_frame([outcome]),
        snapshot_upserts=snapshot_frame([keeper]), snapshot_deletes=[],
    )  # fmt: skip
    known = store.known_keys("verifone", ["LOST", "KEEPER", "NEVER"])
    assert known.rows() == [("KEEPER", "shared"), ("LOST", None)]
