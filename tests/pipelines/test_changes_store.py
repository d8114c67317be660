"""The ``changes`` table (migration 007): written with the batch, read through the views."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.batch import BatchResult
from pipelines.ledger import Ledger
from pipelines.state import migrations
from pipelines.state.frames import CHANGES_SCHEMA, ChangeLog, value_text
from pipelines.state.store import StateStore
from transforms.diff import PLAN_SCHEMA
from transforms.merge import FieldChange

T0 = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)
HISTORY_002 = [
    "external_id", "occurred_at", "run_id", "flow", "target", "action", "result", "remote_id",
    "changed_fields", "drift_fields", "http_status", "error_code", "message",
]  # fmt: skip
"""The columns of v_customer_history before 007: saved queries select them."""


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    with StateStore(tmp_path / "state.duckdb") as opened:
        yield opened  # type: ignore[misc]


def _run(store: StateStore) -> str:
    return store.begin_run(
        flow="sync", target="sumup", mode="mirror", dry_run=False, extract_paths=[], params={}
    )


def _outcome(key: str, action: str) -> dict[str, object]:
    return {
        "plan_id": f"p-{key}",
        "external_id": key,
        "action": action,
        "result": "succeeded",
        "remote_id": f"r-{key}",
        "changed_fields": [],
        "drift_fields": [],
        "at": T0,
    }


def test_values_are_text_strings_as_they_are_others_as_json() -> None:
    assert [value_text(v) for v in ("Zoë", None, 3, 2.5, True, ["a", 1], "")] == [
        "Zoë", None, "3", "2.5", "true", '["a",1]', "",
    ]  # fmt: skip


def test_a_change_log_becomes_one_frame_of_the_changes_schema() -> None:
    log = ChangeLog()
    assert log.frame().height == 0
    log.add(plan_id="p-A", external_id="A", remote_id="r-A", action="update", changes=(), at=T0)
    assert len(log) == 0  # a record without changes adds no row
    log.add(
        plan_id="p-A",
        external_id="A",
        remote_id="r-A",
        action="update",
        changes=(FieldChange("a.b", "x", 1, "drift"), FieldChange("c", None, None, "remote_kept")),
        at=T0,
    )
    log.add(
        plan_id="p-B",
        external_id="B",
        remote_id=None,
        action="create",
        changes=(FieldChange("c", None, "y", "source"),),
        at=T0,
    )
    frame = log.frame()
    assert frame.schema == pl.Schema(
        {k: v for k, v in CHANGES_SCHEMA.items() if k not in ("run_id", "target")}
    )
    assert frame.select("external_id", "field", "before", "after", "why").rows() == [
        ("A", "a.b", "x", "1", "drift"),
        ("A", "c", None, None, "remote_kept"),
        ("B", "c", None, "y", "source"),
    ]


def test_a_batch_records_its_changes_and_its_plan_rows_keep_their_bases(
    store: StateStore,
) -> None:
    seed = _run(store)
    Ledger(store, seed, "sumup").record(
        BatchResult(
            upserts=[
                {
                    "external_id": key,
                    "remote_id": f"r-{key}",
                    "content_hash": f"h-{key}",
                    "payload": f'{{"v":"{key}0"}}',
                    "status": "active",
                    "content_key": 1,
                }
                for key in ("U", "D")
            ]
        )
    )
    run_id = _run(store)
    plan = pl.DataFrame(
        [
            {"plan_id": "p-U", "external_id": "U", "action": "update", "payload": '{"v":"U1"}'},
            {"plan_id": "p-D", "external_id": "D", "action": "delete", "payload": None},
        ],
        schema=PLAN_SCHEMA,
    )
    store.write_plan(run_id, "sumup", plan)
    stored = "SELECT external_id, base_payload FROM plan WHERE run_id = ? ORDER BY 1"
    # not copied when written (003: a million-row plan), but the delete's is read too
    assert store.con.execute(stored, [run_id]).fetchall() == [("D", None), ("U", None)]
    assert store.plan(run_id)["base_payload"].to_list() == ['{"v":"D0"}', '{"v":"U0"}']

    result = BatchResult(
        outcomes=[_outcome("U", "update"), _outcome("D", "delete")],  # type: ignore[list-item]
        upserts=[
            {
                "external_id": "U",
                "remote_id": "r-U",
                "content_hash": "h-U1",
                "payload": '{"v":"U1"}',
                "status": "active",
                "content_key": 2,
            }
        ],
        deletes=["D"],
    )
    for key, action, change in (
        ("U", "update", FieldChange("v", "U0-portal", "U1", "drift")),
        ("D", "delete", FieldChange("v", "D0", None, "source")),
    ):
        result.changes.add(
            plan_id=f"p-{key}",
            external_id=key,
            remote_id=f"r-{key}",
            action=action,
            changes=[change],
            at=T0,
        )
    Ledger(store, run_id, "sumup").record(result)
    # recorded: the bases the actions ran against, though the snapshot has moved since
    assert store.con.execute(stored, [run_id]).fetchall() == [
        ("D", '{"v":"D0"}'),
        ("U", '{"v":"U0"}'),
    ]
    assert store.snapshot("sumup")["payload"].to_list() == ['{"v":"U1"}']
    rows = store.query(
        "SELECT run_id, target, plan_id, external_id, remote_id, action, field, before, after,"
        " why, occurred_at, flow, mode FROM v_changes ORDER BY external_id"
    )
    assert rows.rows() == [
        (run_id, "sumup", "p-D", "D", "r-D", "delete", "v", "D0", None, "source", T0, "sync",
         "mirror"),
        (run_id, "sumup", "p-U", "U", "r-U", "update", "v", "U0-portal", "U1", "drift", T0,
         "sync", "mirror"),
    ]  # fmt: skip
    history = store.query(
        "SELECT kind, action, result, field, before, after, why FROM v_customer_history"
        " WHERE external_id = 'U' ORDER BY kind DESC"
    )
    assert history.rows() == [
        ("outcome", "update", "succeeded", None, None, None, None),
        ("change", "update", "changed", "v", "U0-portal", "U1", "drift"),
    ]


def test_rows_never_executed_keep_their_bases_when_the_run_finishes(store: StateStore) -> None:
    seed = _run(store)
    Ledger(store, seed, "sumup").record(
        BatchResult(
            upserts=[
                {
                    "external_id": key,
                    "remote_id": f"r-{key}",
                    "content_hash": f"h-{key}",
                    "payload": f'{{"v":"{key}0"}}',
                    "status": "active",
                    "content_key": 1,
                }
                for key in ("U", "D", "C")
            ]
        )
    )
    dry = _run(store)
    plan = pl.DataFrame(
        [
            {"plan_id": "p-U", "external_id": "U", "action": "update", "payload": '{"v":"U1"}'},
            {"plan_id": "p-D", "external_id": "D", "action": "delete"},
            {"plan_id": "p-C", "external_id": "C", "action": "close", "base_payload": "given"},
            {"plan_id": "p-N", "external_id": "N", "action": "create", "payload": '{"v":"N"}'},
        ],
        schema=PLAN_SCHEMA,
    )
    store.write_plan(dry, "sumup", plan)
    store.keep_bases(dry, "sumup")
    stored = "SELECT external_id, base_payload FROM plan WHERE run_id = ? ORDER BY 1"
    expected = [("C", "given"), ("D", '{"v":"D0"}'), ("N", None), ("U", '{"v":"U0"}')]
    assert store.con.execute(stored, [dry]).fetchall() == expected
    store.keep_bases(seed, "sumup")  # another run's rows are not touched
    assert store.con.execute(stored, [dry]).fetchall() == expected


def test_changes_are_all_or_nothing_with_the_batch(store: StateStore) -> None:
    run_id = _run(store)
    result = BatchResult(outcomes=[_outcome("A", "create")])  # type: ignore[list-item]
    result.changes.add(
        plan_id="p-A",
        external_id="A",
        remote_id="r-A",
        action="create",
        changes=[FieldChange("v", None, "x", "because")],  # type: ignore[arg-type]
        at=T0,
    )
    with pytest.raises(duckdb.ConstraintException):
        Ledger(store, run_id, "sumup").record(result)
    counts = store.con.execute(
        "SELECT (SELECT count(*) FROM outcomes), (SELECT count(*) FROM changes)"
    ).fetchall()
    assert counts == [(0, 0)]


def _file_at_006(path: Path) -> None:
    """A state file as custsync left it before 007: a run with provenance, an outcome."""
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,"
            " applied_at TIMESTAMPTZ NOT NULL)"
        )
        for migration in migrations()[:6]:
            con.execute(migration.path.read_text(encoding="utf-8"))
            con.execute(
                "INSERT INTO schema_version VALUES (?, ?, now())",
                [migration.version, migration.name],
            )
        con.execute(
            "INSERT INTO runs (run_id, flow, target, mode, dry_run, extract_paths, started_at,"
            " status, os_user) VALUES ('r0', 'sync', 'sumup', 'mirror', false, [], ?, 'done',"
            " 'ops')",
            [T0],
        )
        con.execute(
            "INSERT INTO outcomes VALUES ('r0', 'sumup', 'p-A', 'A', 'update', 'succeeded',"
            " 'r-A', 200, NULL, NULL, NULL, ['email'], [], ?)",
            [T0],
        )


def test_a_file_at_version_6_reads_read_only_then_opens_with_an_empty_changes_table(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.duckdb"
    _file_at_006(path)
    with StateStore(path, read_only=True) as old:
        assert old.schema_version == 6
        assert old.changes().height == 0  # no table yet: nothing changed, no error
        assert old.query("SELECT * FROM v_customer_history").columns == HISTORY_002
    with StateStore(path) as store:
        assert store.schema_version == migrations()[-1].version >= 7
        assert store.query("SELECT count(*) AS n FROM changes")["n"].item() == 0
        assert store.query("SELECT count(*) AS n FROM v_changes")["n"].item() == 0
        history = store.query("SELECT * FROM v_customer_history")
        assert history.columns[: len(HISTORY_002)] == HISTORY_002
        assert history.select(*HISTORY_002[:7], "kind").rows() == [
            ("A", T0, "r0", "sync", "sumup", "update", "succeeded", "outcome")
        ]
        assert store.changes().height == 0
