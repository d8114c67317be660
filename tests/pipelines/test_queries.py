"""The read side behind the store: run counts and summaries, audit reads, example queries."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from pipelines.audit import audit_markdown
from pipelines.state import StateStore, calls_frame, outcomes_frame, snapshot_frame
from pipelines.state.queries import EXAMPLE_QUERIES, AuditQueries
from pipelines.summary import build_summary, failed_records
from transforms.actions import SUMMARY_ACTIONS
from transforms.diff import PLAN_SCHEMA

T0 = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)


def _plan_row(key: str, action: str) -> dict[str, Any]:
    return {
        "plan_id": f"p-{key}-{action}",
        "external_id": key,
        "action": action,
        "status": "active",
        "remote_id": f"r-{key}",
        "payload": "{}",
        "content_hash": f"h-{key}",
        "base_payload": None,
        "reason": "test",
    }


def _outcome(key: str, action: str, result: str, **extra: Any) -> dict[str, Any]:
    return {
        "plan_id": f"p-{key}-{action}",
        "external_id": key,
        "action": action,
        "result": result,
        "remote_id": f"r-{key}",
        "changed_fields": [],
        "drift_fields": [],
        "at": T0,
        **extra,
    }


def _call(attempt: int, status: int | None) -> dict[str, Any]:
    return {
        "operation": "createCustomer",
        "method": "POST",
        "path_template": "/v0.1/customers",
        "status": status,
        "attempt": attempt,
        "latency_ms": 1.0,
        "started_at": T0 + timedelta(milliseconds=attempt),
    }


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[tuple[StateStore, str]]:
    """A finished sumup run: 4 planned rows, 4 outcomes, 3 calls, rejects of 2 keys."""
    with StateStore(tmp_path / "state.duckdb") as store:
        run_id = store.begin_run(
            flow="sync",
            target="sumup",
            mode="mirror",
            dry_run=False,
            extract_paths=["x.csv"],
            params={},
        )
        plan = pl.DataFrame(
            [
                _plan_row("A", "create"),
                _plan_row("B", "create"),
                _plan_row("C", "update"),
                _plan_row("D", "deactivate"),
            ],
            schema=PLAN_SCHEMA,
        )
        store.write_plan(run_id, "sumup", plan)
        rejects = pl.DataFrame(
            {
                "external_id": ["E", "E", None],
                "field": ["email", "phone", "external_id"],
                "rule": ["format", "format", "required"],
                "message": ["bad", "bad", "missing"],
                "value": ["x", "y", None],
            }
        )
        store.write_rejects(run_id, "sumup", rejects)
        store.record_batch(
            run_id,
            "sumup",
            calls=calls_frame([_call(1, 201), _call(1, 429), _call(2, 201)]),
            outcomes=outcomes_frame(
                [
                    _outcome("A", "create", "succeeded"),
                    _outcome("B", "create", "adopted", drift_fields=["personal_details.email"]),
                    _outcome("C", "update", "failed", error_code="SERVER_ERROR", message="503"),
                    _outcome("D", "deactivate", "succeeded"),
                ]
            ),
            snapshot_upserts=snapshot_frame([]),
            snapshot_deletes=[],
            changes=pl.DataFrame(
                {
                    "plan_id": ["p-B-create"],
                    "external_id": ["B"],
                    "remote_id": ["r-B"],
                    "action": ["create"],
                    "field": ["personal_details.email"],
                    "before": ["b@old.example"],
                    "after": ["b@new.example"],
                    "why": ["source"],
                    "occurred_at": [T0],
                }
            ),
        )
        summary = build_summary(store.con, run_id, unchanged=7)
        store.finish_run(run_id, status="done", exit_code=1, summary=summary)
        yield store, run_id


def test_run_counts_are_what_the_run_recorded(recorded: tuple[StateStore, str]) -> None:
    store, run_id = recorded
    counts = store.run_counts(run_id)
    assert counts.planned == {"create": 2, "update": 1, "deactivate": 1}
    got = {(o.action, o.result): (o.count, o.drifted) for o in counts.outcomes}
    assert got == {
        ("create", "succeeded"): (1, 0),
        ("create", "adopted"): (1, 1),
        ("update", "failed"): (1, 0),
        ("deactivate", "succeeded"): (1, 0),
    }
    assert (counts.calls, counts.retries, counts.http_429, counts.rejected) == (3, 1, 1, 2)
    empty = store.run_counts("no-such-run")
    assert (empty.planned, empty.outcomes, empty.calls, empty.rejected) == ({}, (), 0, 0)


def test_the_summary_counts_every_summary_action_in_order(
    recorded: tuple[StateStore, str],
) -> None:
    store, run_id = recorded
    summary = build_summary(store.con, run_id, unchanged=7, execute_s=2.0)
    assert tuple(summary)[: len(SUMMARY_ACTIONS)] == SUMMARY_ACTIONS
    assert summary["create"] == {"planned": 2, "succeeded": 2, "failed": 0}
    assert summary["update"] == {"planned": 1, "succeeded": 0, "failed": 1}
    assert summary["deactivate"] == {"planned": 1, "succeeded": 1, "failed": 0}
    assert summary["unchanged"] == {"planned": 7, "succeeded": 0, "failed": 0}
    assert {k: summary[k] for k in ("created", "adopted", "ambiguous", "drift")} == {
        "created": 1,
        "adopted": 1,
        "ambiguous": 0,
        "drift": 1,
    }
    assert (summary["calls"], summary["retries"], summary["http_429"]) == (3, 1, 1)
    assert summary["rejected"] == 2 and summary["rate_per_s"] == 1.5
    assert failed_records(summary) == 3


def test_the_read_side_works_on_any_connection_to_the_file(
    recorded: tuple[StateStore, str],
) -> None:
    store, run_id = recorded
    expected = store.run_counts(run_id)
    store.close()
    with duckdb.connect(str(store.path), read_only=True) as con:
        assert AuditQueries(con).run_counts(run_id) == expected


def test_succeeded_plan_ids_are_those_of_one_target_and_action(
    recorded: tuple[StateStore, str],
) -> None:
    store, _ = recorded
    assert store.succeeded_plan_ids("sumup", "deactivate") == {"p-D-deactivate"}
    assert store.succeeded_plan_ids("sumup", "create") == {"p-A-create"}  # adopted is not
    assert store.succeeded_plan_ids("verifone", "deactivate") == set()


def test_the_audit_reads_show_the_run(recorded: tuple[StateStore, str]) -> None:
    store, run_id = recorded
    assert store.recent_runs(5)["run_id"].to_list() == [run_id]
    summary = store.run_summary(run_id)
    assert summary is not None and summary["exit_code"] == 1
    assert store.run_summary("no-such-run") is None
    planned = store.run_plan(run_id)
    assert planned["external_id"].to_list() == ["A", "B", "C", "D"]
    failures = store.run_failures(run_id)
    assert set(failures["external_id"].drop_nulls()) == {"C", "E"}
    assert store.drift()["external_id"].to_list() == ["B"]
    assert set(store.latency()["operation"]) == {"createCustomer"}
    markdown = audit_markdown(store, 5)
    for heading in ("## Recent runs", f"## Failures of the latest run ({run_id})", "## Drift"):
        assert heading in markdown


def test_the_example_queries_run_on_a_state_file(recorded: tuple[StateStore, str]) -> None:
    store, _ = recorded
    # the fixture's run went to SumUp; the demo's question is about Verifone
    runs, history, changes = (
        store.query(sql.replace("'verifone'", "'sumup'"), ["B"] if "?" in sql else [])
        for _, sql in EXAMPLE_QUERIES
    )
    assert runs.height == 1 and runs["planned"].item() == 4
    assert history.select("action", "result").rows() == [("create", "adopted")]
    assert changes.select("action", "field", "before", "after", "flow").rows() == [
        ("create", "personal_details.email", "b@old.example", "b@new.example", "sync")
    ]


def test_the_failure_sample_lists_rejects_and_failures_with_masked_values(tmp_path: Path) -> None:
    from pipelines.summary import failures_markdown

    with StateStore(tmp_path / "s.duckdb") as store:
        run_id = store.begin_run(
            flow="sync", target="sumup", mode="upsert", dry_run=False, extract_paths=[], params={}
        )
        rejects = pl.DataFrame(
            {
                "external_id": ["K2", "K1", None],
                "field": ["email", "phone", "external_id"],
                "rule": ["email", "pattern", "required"],
                "message": ["not an e-mail | address", "bad", "no key"],
                "value": ["a***@x", "+4***", None],
                "source_row": [2, 1, 3],
            }
        )
        store.write_rejects(run_id, "sumup", rejects)
        sample, total = store.failure_sample(run_id, limit=2)
        empty, none = store.failure_sample("no-such-run")
    assert total == 3 and sample.height == 2 and none == 0 and empty.height == 0
    assert sample["external_id"].to_list() == [None, "K1"]
    lines = failures_markdown(sample, total, run_id)
    assert lines[1] == "#### Failed and rejected records (2 of 3)"
    assert "| K1 | rejected | phone | pattern | bad | +4*** |" in lines
    assert lines[-1] == f"All of them: `custsync report --run {run_id}`"
    assert failures_markdown(empty, 0, run_id) == []
