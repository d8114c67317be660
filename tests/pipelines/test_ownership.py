"""The state store keeps a remote id to one key: record_batch refuses a second, migration 005
settles files that already share one."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from pipelines.state import StateStore
from pipelines.state.frames import calls_frame, outcomes_frame, snapshot_frame
from pipelines.state.store import migrations
from transforms.mapping import content_hash

T0 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
PAYLOAD = {"entity_id": "e", "company_name": "Twin Handel GmbH"}


def _begin(store: StateStore) -> str:
    return store.begin_run(
        flow="sync", target="verifone", mode="mirror", dry_run=False, extract_paths=[], params={}
    )


def _upsert(key: str, remote_id: str) -> dict[str, Any]:
    return {
        "external_id": key,
        "remote_id": remote_id,
        "content_hash": content_hash(PAYLOAD),
        "content_key": 1,
        "payload": json.dumps(PAYLOAD),
        "status": "active",
    }


def _outcome(key: str, remote_id: str, result: str = "succeeded") -> dict[str, Any]:
    return {
        "plan_id": f"p-{key}",
        "external_id": key,
        "action": "create",
        "result": result,
        "remote_id": remote_id,
        "changed_fields": [],
        "drift_fields": [],
        "at": T0,
    }


def _record(
    store: StateStore,
    pairs: list[tuple[str, str]],
    deletes: list[str] | None = None,
    result: str = "succeeded",
) -> int:
    return store.record_batch(
        _begin(store),
        "verifone",
        calls=calls_frame([]),
        outcomes=outcomes_frame([_outcome(k, r, result) for k, r in pairs]),
        snapshot_upserts=snapshot_frame([_upsert(k, r) for k, r in pairs]),
        snapshot_deletes=deletes or [],
    )


def _owners(store: StateStore) -> dict[str, str]:
    return dict(store.snapshot("verifone").select("external_id", "remote_id").rows())


def _outcomes(store: StateStore) -> list[tuple[Any, ...]]:
    return store.con.execute(
        "SELECT external_id, result, error_code FROM outcomes ORDER BY occurred_at, external_id"
    ).fetchall()


def test_a_second_key_for_a_remote_id_is_refused_and_fails(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.duckdb") as store:
        assert _record(store, [("A-1", "r1")]) == 0
        assert _record(store, [("A-2", "r1")], result="adopted") == 1
        assert _owners(store) == {"A-1": "r1"}
        assert _outcomes(store)[-1] == ("A-2", "failed", "REMOTE_ID_OWNED")
        message = store.con.execute(
            "SELECT message FROM outcomes WHERE external_id = 'A-2'"
        ).fetchone()
        assert message is not None and "belongs to A-1" in message[0]
        conflict = store.con.execute(
            "SELECT external_id, remote_id, kept_by, source FROM remote_id_conflicts"
        ).fetchall()
        assert conflict == [("A-2", "r1", "A-1", "refused")]
        # the refused key is looked up before it is created again
        assert store.unresolved_conflicts("verifone") == {"A-2"}
        assert store.remote_owners("verifone", ["r1", "nope"]) == {"r1": "A-1"}


def test_two_keys_taking_one_remote_id_in_one_batch_keep_only_the_first(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.duckdb") as store:
        assert _record(store, [("A-1", "r1"), ("A-2", "r1"), ("B", "r2")]) == 1
        assert _owners(store) == {"A-1": "r1", "B": "r2"}
        assert [r for r in _outcomes(store) if r[1] == "failed"] == [
            ("A-2", "failed", "REMOTE_ID_OWNED")
        ]


def test_a_key_keeps_its_own_remote_id_and_a_deleted_key_frees_it(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.duckdb") as store:
        _record(store, [("A-1", "r1")])
        assert _record(store, [("A-1", "r1")]) == 0  # an update of its own row
        # a key deleted in the same batch no longer holds the id
        assert _record(store, [("A-2", "r1")], deletes=["A-1"]) == 0
        assert _owners(store) == {"A-2": "r1"}
        assert store.unresolved_conflicts("verifone") == set()


def _version_4_file(path: Path, rows: list[tuple[str, str, datetime]]) -> None:
    """A file as custsync left it before 005, its snapshot sharing remote ids."""
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,"
            " applied_at TIMESTAMPTZ NOT NULL)"
        )
        for migration in migrations()[:4]:
            con.execute(migration.path.read_text(encoding="utf-8"))
            con.execute(
                "INSERT INTO schema_version VALUES (?, ?, now())",
                [migration.version, migration.name],
            )
        for key, remote_id, synced in rows:
            con.execute(
                "INSERT INTO snapshot VALUES ('verifone', ?, ?, ?, ?, 'active', ?, 'r0', 7)",
                [key, remote_id, content_hash(PAYLOAD), json.dumps(PAYLOAD), synced],
            )
        # X-B created r-x (the create answered), X adopted it after an unknown outcome
        con.execute(
            "INSERT INTO outcomes VALUES ('r0', 'verifone', 'p1', 'X-B', 'create', 'succeeded',"
            " 'r-x', 200, NULL, NULL, NULL, [], [], ?), ('r0', 'verifone', 'p2', 'X', 'create',"
            " 'adopted', 'r-x', NULL, NULL, NULL, NULL, [], [], ?)",
            [T0, T0],
        )


def test_migration_5_opens_a_file_with_shared_remote_ids_and_keeps_one_owner(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.duckdb"
    later = datetime(2026, 12, 2, tzinfo=UTC)
    _version_4_file(
        path,
        [
            ("X", "r-x", T0),
            ("X-B", "r-x", T0),
            ("Y-B", "r-y", later),  # no outcomes: the earliest synced keeps it
            ("Y", "r-y", T0),
            ("Y-C", "r-y", T0),  # same time as Y: the lower key keeps it
            ("Z", "r-z", T0),
        ],
    )
    with StateStore(path) as store:
        assert store.schema_version == migrations()[-1].version >= 5
        assert _owners(store) == {"X-B": "r-x", "Y": "r-y", "Z": "r-z"}
        moved = store.con.execute(
            "SELECT external_id, remote_id, kept_by, source, payload IS NOT NULL"
            " FROM remote_id_conflicts ORDER BY external_id"
        ).fetchall()
        assert moved == [
            ("X", "r-x", "X-B", "migration 005", True),
            ("Y-B", "r-y", "Y", "migration 005", True),
            ("Y-C", "r-y", "Y", "migration 005", True),
        ]
        assert store.unresolved_conflicts("verifone") == {"X", "Y-B", "Y-C"}
        # once a moved key has a customer of its own again, it is settled
        _record(store, [("X", "r-x2")])
        assert store.unresolved_conflicts("verifone") == {"Y-B", "Y-C"}
    with StateStore(path) as again:  # reopening changes nothing
        assert again.con.execute("SELECT count(*) FROM remote_id_conflicts").fetchone() == (3,)


def test_snapshot_frame_rows_without_remote_id_are_never_refused(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.duckdb") as store:
        rows = [_upsert("A", "r1"), {**_upsert("B", "r1"), "remote_id": None}]
        refused = store.record_batch(
            _begin(store),
            "verifone",
            calls=calls_frame([]),
            outcomes=outcomes_frame([]),
            snapshot_upserts=snapshot_frame(rows),
            snapshot_deletes=[],
        )
        assert refused == 0
