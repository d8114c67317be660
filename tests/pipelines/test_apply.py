"""Plan, then apply: the snapshot fingerprint, the refusal rules and a migration's adoption
decisions (issue 10, deliverable 7)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.adopting import Found, decide
from pipelines.apply import Inputs, why_refused
from pipelines.state.applied import PlannedRun
from pipelines.state.store import StateStore

# -- the snapshot fingerprint -----------------------------------------------------------------

_ROW = st.fixed_dictionaries(
    {
        "content_hash": st.text("0123456789abcdef", min_size=1, max_size=4),
        "remote_id": st.none() | st.text("xyz", min_size=1, max_size=3),
        "status": st.sampled_from(["active", "closed"]),
    }
)
_SNAPSHOT = st.dictionaries(st.text("ABCDE", min_size=1, max_size=3), _ROW, max_size=12)


@pytest.fixture(scope="module")
def store() -> Iterator[StateStore]:
    with tempfile.TemporaryDirectory() as folder, StateStore(Path(folder) / "s.duckdb") as opened:
        yield opened


def _load(store: StateStore, rows: dict[str, dict[str, Any]], target: str = "sumup") -> str:
    """Replace ``target``'s snapshot with ``rows``; its fingerprint."""
    store.con.execute("DELETE FROM snapshot WHERE target = ?", [target])
    for key, row in rows.items():
        store.con.execute(
            "INSERT INTO snapshot (target, external_id, remote_id, content_hash, payload, status,"
            " synced_at, run_id) VALUES (?, ?, ?, ?, '{}', ?, now(), 'r')",
            [target, key, row["remote_id"], row["content_hash"], row["status"]],
        )
    return store.snapshot_fingerprint(target)


_MUTATIONS = ("content_hash", "remote_id", "status", "key", "delete", "add")


@settings(max_examples=60, deadline=None)
@given(rows=_SNAPSHOT, mutation=st.sampled_from(_MUTATIONS), pick=st.integers(0, 100))
def test_any_change_to_a_snapshot_row_changes_its_fingerprint(
    store: StateStore, rows: dict[str, dict[str, Any]], mutation: str, pick: int
) -> None:
    before = _load(store, rows)
    changed = {k: dict(v) for k, v in rows.items()}
    if mutation == "add" or not rows:
        changed["NEW-KEY"] = {"content_hash": "0", "remote_id": None, "status": "active"}
    else:
        key = sorted(rows)[pick % len(rows)]
        row = changed[key]
        if mutation == "delete":
            del changed[key]
        elif mutation == "key":
            changed[key + "-moved"] = changed.pop(key)
        elif mutation == "status":
            row["status"] = "closed" if row["status"] == "active" else "active"
        elif mutation == "remote_id":
            row["remote_id"] = None if row["remote_id"] else "new-remote"
        else:
            row["content_hash"] += "f"
    assert _load(store, changed) != before


@settings(max_examples=30, deadline=None)
@given(rows=_SNAPSHOT, other=_SNAPSHOT)
def test_a_fingerprint_ignores_row_order_and_other_targets(
    store: StateStore, rows: dict[str, dict[str, Any]], other: dict[str, dict[str, Any]]
) -> None:
    before = _load(store, rows)
    _load(store, other, target="verifone")
    assert _load(store, dict(reversed(list(rows.items())))) == before


# -- the refusal rules ------------------------------------------------------------------------

FACTS = (
    {"path": "a.csv", "bytes": 3, "sha256": "aa"},
    {"path": "b.csv", "bytes": 3, "sha256": "bb"},
)
PLANNED = PlannedRun(
    run_id="DRY",
    flow="migrate",
    target="verifone",
    mode="upsert",
    dry_run=True,
    status="planned",
    extract_paths=("*.csv",),
    params={},
    inputs=FACTS,
    snapshot_fingerprint="3:00ff",
    message=None,
    unchanged=0,
)


def _refusal(planned: PlannedRun = PLANNED, **now: Any) -> str | None:
    return why_refused(
        planned,
        applied=now.get("applied", []),
        inputs=now.get("inputs", Inputs(FACTS)),
        fingerprint=now.get("fingerprint", "3:00ff"),
        redacted=now.get("redacted", False),
        forgotten=now.get("forgotten", ()),
    )


def test_an_unchanged_dry_run_plan_may_be_applied() -> None:
    assert _refusal() is None
    assert _refusal(inputs=Inputs(tuple(reversed(FACTS)))) is None, "file order is no change"


@pytest.mark.parametrize(
    ("planned", "now", "expected"),
    [
        (replace(PLANNED, dry_run=False), {}, "not a dry run"),
        (replace(PLANNED, status="stopped", message="the plan deletes 9 of 10"), {},
         "ended stopped: the plan deletes 9 of 10"),
        (PLANNED, {"applied": [("APPLY-1", "done")]}, "already applied by run APPLY-1"),
        (PLANNED, {"inputs": Inputs((), "no file matches '*.csv'")}, "no file matches"),
        (PLANNED, {"inputs": Inputs(FACTS[:1])}, "b.csv is no longer read"),
        (PLANNED, {"inputs": Inputs((*FACTS, {"path": "c.csv", "sha256": "cc"}))},
         "c.csv was not read"),
        (PLANNED, {"inputs": Inputs(({**FACTS[0], "sha256": "ab"}, FACTS[1]))},
         "a.csv changed since dry run DRY"),
        (PLANNED, {"fingerprint": "4:00ff"}, "verifone snapshot changed since dry run DRY"),
        (replace(PLANNED, snapshot_fingerprint=None), {}, "older custsync"),
        (PLANNED, {"redacted": True}, "redacted by retention"),
        (PLANNED, {"forgotten": ["CRM-7"]}, "CRM-7 of dry run DRY's plan were forgotten"),
        (PLANNED, {"forgotten": ["CRM-7", "CRM-8"]}, "CRM-7 and 1 more"),
    ],
)  # fmt: skip
def test_apply_refuses_with_the_reason(
    planned: PlannedRun, now: dict[str, Any], expected: str
) -> None:
    refusal = _refusal(planned, **now)
    assert refusal is not None and expected in refusal


@settings(max_examples=80, deadline=None)
@given(
    applied=st.booleans(),
    changed_file=st.sampled_from([None, 0, 1]),
    snapshot_moved=st.booleans(),
    status=st.sampled_from(["planned", "planned", "stopped", "crashed"]),
)
def test_apply_goes_ahead_only_when_nothing_changed(
    applied: bool, changed_file: int | None, snapshot_moved: bool, status: str
) -> None:
    facts = [dict(f) for f in FACTS]
    if changed_file is not None:
        facts[changed_file]["sha256"] = "changed"
    refusal = _refusal(
        replace(PLANNED, status=status),
        applied=[("A", "done")] if applied else [],
        inputs=Inputs(tuple(facts)),
        fingerprint="3:0100" if snapshot_moved else "3:00ff",
    )
    clean = not applied and changed_file is None and not snapshot_moved and status == "planned"
    assert (refusal is None) == clean


# -- a migration's adoption decisions ---------------------------------------------------------

_IDS = st.sampled_from(["r1", "r2", "r3", "r4"])
_FOUND = st.lists(
    st.tuples(st.sampled_from(["A", "B", "C", "D", "E"]), st.lists(_IDS, max_size=3)),
    unique_by=lambda t: t[0],
)


@settings(max_examples=150, deadline=None)
@given(found=_FOUND, owned=st.dictionaries(_IDS, st.sampled_from(["OLD-1", "OLD-2"])))
def test_adoption_never_guesses_and_never_takes_another_keys_customer(
    found: list[tuple[str, list[str]]], owned: dict[str, str]
) -> None:
    items = [Found(key, "email_address", tuple(ids)) for key, ids in found]
    decisions = {d.external_id: d for d in decide(items, owned)}
    adopted = [d.remote_id for d in decisions.values() if d.remote_id is not None]
    assert len(adopted) == len(set(adopted)), "a remote id belongs to one key"
    assert not set(adopted) & set(owned), "another key's customer is never adopted"
    free = {key: {i for i in ids if i not in owned} for key, ids in found}
    for key, ids in free.items():
        wanted_by_others = any(ids & other for k, other in free.items() if k != key)
        if not ids:
            assert key not in decisions, "nothing found: it stays a create"
        elif len(ids) > 1 or (len(ids) == 1 and wanted_by_others):
            assert decisions[key].remote_id is None
            assert decisions[key].reason.startswith("ambiguous")
        else:
            assert decisions[key].remote_id == next(iter(ids))


def test_a_failed_look_up_is_neither_created_nor_adopted() -> None:
    (decision,) = decide([Found("A", "", error="400: bad search")], {})
    assert decision.remote_id is None and decision.reason == "look-up failed: 400: bad search"


def test_decisions_frame_is_what_the_plan_rows_become() -> None:
    # decide() is ordered by key, whatever order the look-ups finished in
    items = [Found("B", "email_address", ("r2",)), Found("A", "customer_id", ("r1",))]
    assert pl.DataFrame(decide(items, {}))["external_id"].to_list() == ["A", "B"]


def test_the_store_sees_a_plan_redacted_by_retention_or_forgotten_keys(store: StateStore) -> None:
    store.con.execute(
        "INSERT INTO runs (run_id, flow, target, mode, dry_run, extract_paths, started_at,"
        " status) VALUES ('DRY-R', 'sync', 'sumup', 'upsert', true, ['a.csv'],"
        " TIMESTAMPTZ '2026-01-10 00:00Z', 'planned')"
    )
    store.con.execute(
        "INSERT INTO plan (run_id, target, plan_id, external_id, action, status, planned_at)"
        " VALUES ('DRY-R', 'sumup', 'p1', 'K1', 'create', 'planned',"
        " TIMESTAMPTZ '2026-01-10 00:00Z')"
    )
    assert not store.plan_redacted("DRY-R") and store.plan_forgotten("DRY-R") == []
    # a retention pass whose limit is before the dry run leaves its plan alone
    store.con.execute(
        "INSERT INTO redactions (run_id, reason, target, table_name, column_name, rows,"
        " older_than, redacted_at) VALUES ('X', 'retention', NULL, 'plan', 'payload', 1,"
        " TIMESTAMPTZ '2026-01-09 00:00Z', now())"
    )
    assert not store.plan_redacted("DRY-R")
    store.con.execute(
        "INSERT INTO redactions (run_id, reason, target, table_name, column_name, rows,"
        " older_than, redacted_at) VALUES ('Y', 'retention', NULL, 'plan', 'payload', 1,"
        " TIMESTAMPTZ '2026-01-11 00:00Z', now())"
    )
    assert store.plan_redacted("DRY-R")
    store.con.execute(
        "INSERT INTO suppressed (target, external_id, requested_at, requested_run_id)"
        " VALUES ('sumup', 'K1', now(), 'F')"
    )
    assert store.plan_forgotten("DRY-R") == ["K1"]
