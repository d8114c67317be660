from __future__ import annotations

import hashlib
import json
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.actions import ACTIONS, DIFF_ACTIONS, SUMMARY_ACTIONS
from transforms.diff import PLAN_SCHEMA, plan_actions, plan_id
from transforms.schema import MODES, Mode

TARGET = "sumup"


def _payload(content: str) -> str:
    return json.dumps({"v": content}, separators=(",", ":"))


def _hash(content: str) -> str:
    return hashlib.md5(_payload(content).encode()).hexdigest()


def _key(content: str) -> int:
    return int(_hash(content)[:15], 16)


def mapped(rows: dict[str, tuple[str, str]]) -> pl.DataFrame:
    """Source rows: key -> (content, status)."""
    return pl.DataFrame(
        [
            {
                "external_id": k,
                "status": s,
                "remote_id": f"r-{k}",
                "payload": _payload(c),
                "content_hash": _hash(c),
                "content_key": _key(c),
            }
            for k, (c, s) in rows.items()
        ],
        schema={
            **dict.fromkeys(
                ["external_id", "status", "remote_id", "payload", "content_hash"], pl.String
            ),
            "content_key": pl.UInt64,
        },
    )


def snapshot(rows: dict[str, tuple[str, str]]) -> pl.DataFrame:
    return mapped(rows).select(
        "external_id", "remote_id", "content_hash", "content_key", "payload", "status"
    )


def plan(
    source: dict[str, tuple[str, str]],
    snap: dict[str, tuple[str, str]],
    mode: Mode = "mirror",
    **kwargs: Any,
) -> dict[str, tuple[str, str]]:
    frame = plan_actions(mapped(source), snapshot(snap), target=TARGET, mode=mode, **kwargs)
    assert frame.schema == PLAN_SCHEMA
    return {r["external_id"]: (r["action"], r["reason"]) for r in frame.iter_rows(named=True)}


SNAP = {
    "same": ("a", "active"),
    "changed": ("a", "active"),
    "closing": ("a", "active"),
    "closed": ("a", "closed"),
    "reopen": ("a", "closed"),
    "gone": ("a", "active"),
}
SOURCE = {
    "same": ("a", "active"),
    "changed": ("b", "active"),
    "closing": ("a", "closed"),
    "closed": ("b", "closed"),
    "reopen": ("a", "active"),
    "new": ("a", "active"),
    "new-closed": ("a", "closed"),
}


def test_mirror_mode_plans_every_kind_of_action() -> None:
    assert plan(SOURCE, SNAP) == {
        "same": ("unchanged", "same content"),
        "changed": ("update", "changed"),
        "closing": ("close", "status closed"),
        "closed": ("unchanged", "closed"),
        "reopen": ("update", "reopened"),
        "gone": ("delete", "missing from extract"),
        "new": ("create", "new"),
        "new-closed": ("skip", "closed, never synced"),
    }


def test_upsert_never_deletes() -> None:
    planned = plan(SOURCE, SNAP, "upsert")
    assert "gone" not in planned
    assert planned["new"] == ("create", "new")


def test_update_only_never_creates() -> None:
    planned = plan(SOURCE, SNAP, "update-only")
    assert planned["new"] == ("skip", "update-only mode")
    assert planned["changed"] == ("update", "changed")
    assert planned["closing"] == ("close", "status closed")
    assert "gone" not in planned


def test_create_only_never_updates() -> None:
    planned = plan(SOURCE, SNAP, "create-only")
    assert planned["new"] == ("create", "new")
    for key in ("changed", "closing", "reopen"):
        assert planned[key] == ("skip", "create-only mode")


def test_rejected_keys_are_never_deleted() -> None:
    planned = plan({}, {"broken": ("a", "active")}, rejected=pl.Series(["broken"]))
    assert planned == {}
    rejects = pl.DataFrame({"external_id": ["broken"]})
    assert plan({}, {"broken": ("a", "active")}, rejected=rejects) == {}


def _failures(*rows: tuple[str, str, int, str | None]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "external_id": pl.String,
            "action": pl.String,
            "failed_runs": pl.Int32,
            "content_hash": pl.String,
        },
        orient="row",
    )


def test_the_diff_plans_exactly_the_diff_actions() -> None:
    """The one list of actions is the diff's: every mode together plans each of them, and
    nothing else; ``deactivate`` comes from an instruments extract, ``skip`` is not summed."""
    stuck = _failures(("changed", "update", 5, _hash("b")))
    planned = {
        action
        for mode in MODES
        for failures in (None, stuck)
        for action, _ in plan(SOURCE, SNAP, mode, failures=failures).values()
    }
    assert planned == set(DIFF_ACTIONS) == set(ACTIONS) - {"deactivate", "adopt"}
    assert SUMMARY_ACTIONS == (
        "create", "adopt", "update", "delete", "close", "deactivate", "unchanged"
    )  # fmt: skip


def test_failed_keys_are_retried_even_when_unchanged() -> None:
    failures = _failures(("same", "update", 1, None), ("changed", "update", 2, None))
    planned = plan(SOURCE, SNAP, failures=failures)
    assert planned["same"] == ("update", "retry")
    assert planned["changed"] == ("update", "retry")
    assert plan({"n": ("a", "active")}, {}, failures=_failures(("n", "create", 1, None))) == {
        "n": ("create", "retry")
    }


def test_quarantine_after_n_failed_runs_until_the_content_changes() -> None:
    stuck = _failures(("changed", "update", 5, _hash("b")))
    assert plan(SOURCE, SNAP, failures=stuck)["changed"] == (
        "skip",
        "quarantined after 5 failed runs",
    )
    assert plan(SOURCE, SNAP, failures=stuck, quarantine_after=6)["changed"] == ("update", "retry")
    fixed = _failures(("changed", "update", 5, _hash("old")))
    assert plan(SOURCE, SNAP, failures=fixed)["changed"] == ("update", "retry")


def test_plan_ids_are_deterministic_and_documented() -> None:
    first = plan_actions(mapped(SOURCE), snapshot(SNAP), target=TARGET, mode="mirror")
    again = plan_actions(mapped(SOURCE), snapshot(SNAP), target=TARGET, mode="mirror")
    assert first.equals(again)
    row = first.filter(pl.col("external_id") == "changed").row(0, named=True)
    expected = hashlib.sha256(f"{TARGET}|changed|update|{_hash('b')}".encode()).hexdigest()[:32]
    assert row["plan_id"] == expected == plan_id(TARGET, "changed", "update", _hash("b"))
    deleted = first.filter(pl.col("action") == "delete").row(0, named=True)
    assert deleted["content_hash"] == _hash("a") and deleted["payload"] is None


def test_payloads_only_where_something_is_sent() -> None:
    frame = plan_actions(mapped(SOURCE), snapshot(SNAP), target=TARGET, mode="mirror")
    rows = {r["external_id"]: r for r in frame.iter_rows(named=True)}
    assert rows["changed"]["payload"] == _payload("b")
    assert rows["same"]["payload"] is None
    assert rows["gone"]["status"] == "active" and rows["gone"]["payload"] is None
    unchanged = plan_actions(
        mapped(SOURCE), snapshot(SNAP), target=TARGET, mode="mirror", include_unchanged=False
    )
    assert set(unchanged["action"]) == {"update", "close", "delete", "create", "skip"}


def test_remote_ids_and_merge_bases_are_left_to_the_state_store() -> None:
    """Given a snapshot that has them, the diff still takes neither: the store fills the remote
    ids when the plan is written and joins the merge bases when it is read (one place, tested
    in tests/pipelines/test_state.py)."""
    snap = snapshot(SNAP).with_columns(pl.format("snap-{}", "external_id").alias("remote_id"))
    frame = plan_actions(mapped(SOURCE), snap, target=TARGET, mode="mirror")
    rows = {r["external_id"]: r for r in frame.iter_rows(named=True)}
    assert rows["changed"]["remote_id"] == "r-changed"  # the extract's (SumUp: derived)
    assert rows["gone"]["remote_id"] is None  # in the snapshot only
    assert frame["base_payload"].null_count() == frame.height


STATES = st.tuples(st.sampled_from("abc"), st.sampled_from(["active", "closed"]))
TABLES = st.dictionaries(st.sampled_from([f"k{i}" for i in range(12)]), STATES, max_size=12)


@settings(max_examples=80, deadline=None)
@given(TABLES, TABLES)
def test_applying_the_plan_to_the_snapshot_reproduces_the_source(
    source: dict[str, tuple[str, str]], snap: dict[str, tuple[str, str]]
) -> None:
    frame = plan_actions(mapped(source), snapshot(snap), target=TARGET, mode="mirror")
    state = {k: (_hash(c), s) for k, (c, s) in snap.items()}
    for row in frame.iter_rows(named=True):
        key, action = row["external_id"], row["action"]
        if action in ("create", "update", "close"):
            state[key] = (row["content_hash"], row["status"])
        elif action == "delete":
            del state[key]
    expected = {}
    for key, (content, status) in source.items():
        if status == "closed" and key not in snap:
            continue  # never created just to be closed
        if status == "closed" and snap.get(key, ("", ""))[1] == "closed":
            expected[key] = state[key]  # closed on both sides: left alone
            continue
        expected[key] = (_hash(content), status)
    assert state == expected
    assert frame["plan_id"].n_unique() == frame.height
