"""The DuckDB state store: migrations, runs, plan, journal, batches, failures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.extract import read_extract
from pipelines.state import (
    CALLS_SCHEMA,
    OUTCOMES_SCHEMA,
    StateError,
    StateStore,
    calls_frame,
    empty_calls,
    empty_outcomes,
    migrations,
    outcomes_frame,
    snapshot_frame,
)
from pipelines.state.store import DIFF_COLUMNS
from transforms.diff import PLAN_SCHEMA, plan_actions
from transforms.mapping import content_hash, content_key, map_rows
from transforms.normalise import normalise
from transforms.planner import build_plan
from transforms.validate import validate

T0 = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    with StateStore(tmp_path / "state" / "custsync.duckdb") as opened:
        yield opened  # type: ignore[misc]


def _run(store: StateStore, target: str = "sumup") -> str:
    return store.begin_run(
        flow="sync",
        target=target,
        mode="mirror",
        dry_run=False,
        extract_paths=["data/customers.csv"],
        params={"batch_size": 500},
    )


def _plan(*rows: tuple[str, str, str | None]) -> pl.DataFrame:
    """Plan rows: (external_id, action, payload)."""
    return pl.DataFrame(
        [
            {
                "plan_id": f"p-{key}-{action}",
                "external_id": key,
                "action": action,
                "status": "active",
                "remote_id": f"r-{key}",
                "payload": payload,
                "content_hash": f"h-{payload}",
                "base_payload": None,
                "reason": "test",
            }
            for key, action, payload in rows
        ],
        schema=PLAN_SCHEMA,
    )


def _outcome(plan_id: str, key: str, result: str, at: datetime, action: str = "update") -> dict:
    return {
        "plan_id": plan_id,
        "external_id": key,
        "action": action,
        "result": result,
        "http_status": 200 if result == "succeeded" else 503,
        "error_code": None if result == "succeeded" else "SERVER_ERROR",
        "message": None if result == "succeeded" else "unavailable",
        "changed_fields": ["personal_details.email"],
        "drift_fields": [],
        "at": at,
    }


def _record(
    store: StateStore,
    run_id: str,
    outcomes: list[dict],
    upserts: list[dict] | None = None,
    deletes: list[str] | None = None,
    target: str = "sumup",
) -> None:
    store.record_batch(
        run_id,
        target,
        calls=empty_calls(),
        outcomes=outcomes_frame(outcomes),
        snapshot_upserts=snapshot_frame(upserts or []),
        snapshot_deletes=deletes or [],
    )


# -- migrations -------------------------------------------------------------------------------


def test_a_new_file_gets_every_migration(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b.duckdb"
    with StateStore(path) as store:
        latest = migrations()[-1].version
        assert store.schema_version == latest
        tables = {
            r[0] for r in store.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        }
        assert {"runs", "snapshot", "plan", "journal", "calls", "outcomes", "rejects"} <= tables
        applied = store.con.execute("SELECT version FROM schema_version ORDER BY 1").fetchall()
        assert [v for (v,) in applied] == [m.version for m in migrations()]
    with StateStore(path) as again:  # reopening migrates nothing twice
        assert again.schema_version == latest
    with StateStore(path, read_only=True) as reader:
        assert reader.schema_version == latest


def test_migrations_apply_in_order_each_in_its_own_transaction(
    store: StateStore, tmp_path: Path
) -> None:
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "901_add_notes.sql").write_text("CREATE TABLE notes (n VARCHAR);")
    (folder / "902_broken.sql").write_text("CREATE TABLE half (x INT);\nSELECT * FROM missing;")
    with pytest.raises(StateError, match=r"902_broken\.sql failed"):
        store.migrate([*migrations(), *migrations(folder)])
    tables = {r[0] for r in store.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert "notes" in tables and "half" not in tables
    assert store.con.execute("SELECT max(version) FROM schema_version").fetchone() == (901,)


def test_badly_named_or_repeated_migrations_are_refused(tmp_path: Path) -> None:
    (tmp_path / "1_short.sql").write_text("")
    with pytest.raises(StateError, match="NNN_lower_case_name"):
        migrations(tmp_path)
    (tmp_path / "1_short.sql").unlink()
    (tmp_path / "003_a.sql").write_text("")
    (tmp_path / "003_b.sql").write_text("")
    with pytest.raises(StateError, match="exists twice"):
        migrations(tmp_path)


def test_a_file_from_a_newer_custsync_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with StateStore(path) as store:
        store.con.execute("INSERT INTO schema_version VALUES (999, 'future', now())")
    with pytest.raises(StateError, match="newer than this custsync knows"):
        StateStore(path)


def test_read_only_needs_an_existing_file(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="no state file"):
        StateStore(tmp_path / "absent.duckdb", read_only=True)


# -- runs and rejects -------------------------------------------------------------------------


def test_runs_are_recorded_from_start_to_finish(store: StateStore) -> None:
    run_id = _run(store)
    assert store.runs().row(0, named=True)["status"] == "running"
    store.finish_run(run_id, status="succeeded", exit_code=1, summary={"create": {"planned": 3}})
    row = store.runs().row(0, named=True)
    assert (row["run_id"], row["status"], row["exit_code"]) == (run_id, "succeeded", 1)
    assert json.loads(row["summary"]) == {"create": {"planned": 3}}
    assert json.loads(row["params"]) == {"batch_size": 500}
    assert row["extract_paths"] == ["data/customers.csv"]
    assert row["finished_at"] >= row["started_at"]
    assert _run(store) > run_id  # time-ordered ids


def test_rejects_are_stored_with_or_without_source_rows(store: StateStore) -> None:
    run_id = _run(store)
    rejects = pl.DataFrame(
        {
            "external_id": ["A", None],
            "field": ["email", "external_id"],
            "rule": ["email", "required"],
            "message": ["not an e-mail address", "external_id is empty"],
            "value": ["bad***", None],
        }
    )
    assert store.write_rejects(run_id, "sumup", rejects) == 2
    assert store.write_rejects(run_id, "sumup", rejects.with_columns(source_row=pl.lit(7))) == 2
    stored = store.con.execute("SELECT count(*), count(source_row) FROM rejects").fetchone()
    assert stored == (4, 2)
    assert store.write_rejects(run_id, "sumup", rejects.head(0)) == 0


# -- plan and journal -------------------------------------------------------------------------


def test_write_plan_skips_unchanged_and_fills_merge_bases(store: StateStore) -> None:
    seed = _run(store)
    _record(
        store,
        seed,
        [],
        upserts=[
            {
                "external_id": "B",
                "remote_id": "r-B",
                "content_hash": "h0",
                "payload": '{"v":"old"}',
                "status": "active",
            }
        ],
    )
    run_id = _run(store)
    plan = _plan(
        ("A", "create", '{"v":"a"}'), ("B", "update", '{"v":"b"}'), ("C", "unchanged", None)
    )
    assert store.write_plan(run_id, "sumup", plan) == 2
    stored = store.plan(run_id)
    assert stored["external_id"].to_list() == ["A", "B"]
    assert stored.filter(pl.col("external_id") == "B")["base_payload"].item() == '{"v":"old"}'
    assert stored.filter(pl.col("external_id") == "A")["base_payload"].item() is None
    assert set(PLAN_SCHEMA.names()) <= set(stored.columns)


def test_merge_bases_are_read_from_the_snapshot_not_copied(store: StateStore) -> None:
    seed = _run(store)
    base = {"remote_id": None, "content_hash": "h0", "status": "active"}
    _record(
        store,
        seed,
        [],
        upserts=[
            {**base, "external_id": "B", "remote_id": "r-B", "payload": '{"v":"old"}'},
            {**base, "external_id": "D", "remote_id": "r-D", "payload": '{"v":"d0"}'},
            {**base, "external_id": "E", "remote_id": "r-E", "payload": '{"v":"e0"}'},
        ],
    )
    run_id = _run(store)
    plan = _plan(
        ("B", "update", '{"v":"b"}'),
        ("D", "close", None),
        ("E", "update", '{"v":"e"}'),
        ("F", "create", '{"v":"f"}'),
    ).with_columns(
        # remote ids unknown to the diff (hashes only) are filled from the snapshot
        remote_id=pl.lit(None, pl.String),
        # a base the caller supplies is kept; one on a create is dropped
        base_payload=pl.when(pl.col("external_id") == "E")
        .then(pl.lit('{"v":"given"}'))
        .when(pl.col("external_id") == "F")
        .then(pl.lit('{"v":"stray"}')),
    )
    assert store.write_plan(run_id, "sumup", plan) == 4
    stored_bases = dict(
        store.con.execute(
            "SELECT external_id, base_payload FROM plan WHERE run_id = ?", [run_id]
        ).fetchall()
    )
    assert stored_bases == {"B": None, "D": None, "E": '{"v":"given"}', "F": None}
    read = store.plan(run_id)
    assert read["external_id"].to_list() == ["B", "D", "E", "F"]
    assert read["base_payload"].to_list() == ['{"v":"old"}', '{"v":"d0"}', '{"v":"given"}', None]
    assert read["remote_id"].to_list() == ["r-B", "r-D", "r-E", None]
    assert read.schema["base_payload"] == pl.String
    store.open_journal(run_id, "sumup", read["plan_id"].to_list())
    pending = store.pending_journal("sumup").sort("external_id")
    assert pending["base_payload"].to_list() == read["base_payload"].to_list()


def test_migration_3_keeps_the_plan_rows_and_stores_bulk_columns_uncompressed(
    tmp_path: Path,
) -> None:
    """A file at version 2, with a stored merge base, as custsync left it before 003."""
    path = tmp_path / "s.duckdb"
    with duckdb.connect(str(path)) as con:
        for migration in migrations()[:2]:
            con.execute(migration.path.read_text(encoding="utf-8"))
        con.execute(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,"
            " applied_at TIMESTAMPTZ NOT NULL)"
        )
        con.execute("INSERT INTO schema_version VALUES (1, 'initial', now()), (2, 'views', now())")
        con.execute(
            "INSERT INTO plan VALUES ('r0', 'sumup', 'p', 'A', 'update', 'active', 'r-A', '{}',"
            " 'h', '{\"v\":1}', 'test', now())"
        )
    with StateStore(path) as store:
        assert store.schema_version == migrations()[-1].version
        assert store.plan("r0")["base_payload"].to_list() == ['{"v":1}']
        ddl = store.con.execute(
            "SELECT sql FROM duckdb_tables() WHERE table_name = 'plan'"
        ).fetchall()[0][0]
        assert ddl.count("USING COMPRESSION Uncompressed") == 3
        assert store.con.execute("SELECT count(*) FROM v_runs").fetchall() == [(0,)]


def test_migration_4_gives_every_snapshot_row_its_content_key(tmp_path: Path) -> None:
    """A file at version 3 with synced customers: opening it computes their content keys
    from the stored payloads, the ones a fresh diff computes from the same extract rows."""
    path = tmp_path / "s.duckdb"
    payloads = {
        "A": {"customer_id": "c-a"},
        "B": {"customer_id": "c-b", "personal_details": {"first_name": "Zoë"}},
    }
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,"
            " applied_at TIMESTAMPTZ NOT NULL)"
        )
        for migration in migrations()[:3]:
            con.execute(migration.path.read_text(encoding="utf-8"))
            con.execute(
                "INSERT INTO schema_version VALUES (?, ?, now())",
                [migration.version, migration.name],
            )
        for key, payload in payloads.items():
            con.execute(
                "INSERT INTO snapshot VALUES ('sumup', ?, ?, ?, ?, 'active', now(), 'r0')",
                [key, f"r-{key}", content_hash(payload), json.dumps(payload)],
            )
    with StateStore(path) as store:
        assert store.schema_version >= 4  # 4 applied (later ones too)
        keys = dict(store.snapshot("sumup").select("external_id", "content_key").rows())
    assert keys == {key: content_key(payload) for key, payload in payloads.items()}
    assert None not in keys.values()


def test_a_snapshot_payload_custsync_did_not_write_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    StateStore(path).close()
    with duckdb.connect(str(path)) as con:
        con.execute(
            "INSERT INTO snapshot VALUES ('sumup', 'A', 'r', 'h', 'not json', 'active', now(),"
            " 'r0', NULL)"
        )
    with pytest.raises(StateError, match="customer 'A' is not one custsync wrote"):
        StateStore(path)


def test_the_journal_survives_a_crash_and_closes_with_the_outcomes(
    store: StateStore, tmp_path: Path
) -> None:
    crashed = _run(store)
    store.write_plan(crashed, "sumup", _plan(("A", "create", "{}"), ("B", "create", "{}")))
    store.open_journal(crashed, "sumup", ["p-A-create", "p-B-create"])
    # "crash": reopen the file without recording anything
    store.close()
    with StateStore(store.path) as reopened:
        pending = reopened.pending_journal("sumup")
        assert pending.select("run_id", "plan_id", "external_id", "action").rows() == [
            (crashed, "p-A-create", "A", "create"),
            (crashed, "p-B-create", "B", "create"),
        ]
        assert reopened.pending_journal("verifone").height == 0
        next_run = _run(reopened)
        _record(reopened, next_run, [_outcome("p-A-create", "A", "adopted", T0, "create")])
        assert reopened.pending_journal("sumup")["plan_id"].to_list() == ["p-B-create"]
        closed = reopened.con.execute(
            "SELECT closed_run_id FROM journal WHERE plan_id = 'p-A-create'"
        ).fetchone()
        assert closed == (next_run,)


# -- batches ----------------------------------------------------------------------------------


def test_record_batch_writes_calls_outcomes_and_snapshot_together(store: StateStore) -> None:
    run_id = _run(store)
    calls = calls_frame(
        [
            {
                "plan_id": "p-A-create",
                "operation": "CreateCustomer",
                "method": "POST",
                "path_template": "/v0.1/customers",
                "status": 201,
                "attempt": 1,
                "latency_ms": 12.5,
                "started_at": T0,
                "request_id": "req-1",
            }
        ]
    )
    upsert = {
        "external_id": "A",
        "remote_id": "r-A",
        "content_hash": "h1",
        "payload": "{}",
        "status": "active",
    }
    store.record_batch(
        run_id,
        "sumup",
        calls=calls,
        outcomes=outcomes_frame([_outcome("p-A-create", "A", "succeeded", T0, "create")]),
        snapshot_upserts=snapshot_frame([upsert, {**upsert, "content_hash": "h2"}]),
        snapshot_deletes=[],
    )
    snap = store.snapshot("sumup")
    assert snap.select("external_id", "content_hash", "run_id").rows() == [("A", "h2", run_id)]
    call = store.con.execute("SELECT run_id, target, status, latency_ms FROM calls").fetchone()
    assert call == (run_id, "sumup", 201, 12.5)
    outcome = store.con.execute(
        "SELECT result, changed_fields, occurred_at FROM outcomes"
    ).fetchone()
    assert outcome[0] == "succeeded" and outcome[1] == ["personal_details.email"]
    assert outcome[2] == T0
    # an update replaces, a delete removes
    later = _run(store)
    _record(store, later, [], upserts=[{**upsert, "status": "closed"}])
    assert store.snapshot("sumup")["status"].to_list() == ["closed"]
    _record(store, later, [], deletes=["A"])
    assert store.snapshot("sumup").height == 0


def test_record_batch_is_all_or_nothing(store: StateStore) -> None:
    run_id = _run(store)
    upsert = {
        "external_id": "A",
        "remote_id": "r",
        "content_hash": "h",
        "payload": "{}",
        "status": "active",
    }
    bad = _outcome("p-A", "A", "exploded", T0)  # violates the result CHECK
    with pytest.raises(duckdb.ConstraintException):
        store.record_batch(
            run_id,
            "sumup",
            calls=empty_calls(),
            outcomes=outcomes_frame([_outcome("p-B", "B", "succeeded", T0), bad]),
            snapshot_upserts=snapshot_frame([upsert]),
            snapshot_deletes=[],
        )
    assert store.snapshot("sumup").height == 0
    assert store.con.execute("SELECT count(*) FROM outcomes").fetchone() == (0,)
    # the connection is usable afterwards
    _record(store, run_id, [_outcome("p-B", "B", "succeeded", T0)])
    assert store.con.execute("SELECT count(*) FROM outcomes").fetchone() == (1,)


def test_record_batch_takes_frames_built_from_empty_lists(store: StateStore) -> None:
    run_id = _run(store)
    store.record_batch(
        run_id,
        "sumup",
        calls=pl.DataFrame([]),
        outcomes=pl.DataFrame([]),
        snapshot_upserts=pl.DataFrame([]),
        snapshot_deletes=[],
    )
    assert empty_outcomes().schema == OUTCOMES_SCHEMA and empty_calls().schema == CALLS_SCHEMA


# -- snapshot and failures --------------------------------------------------------------------


def test_snapshot_columns_can_be_picked(store: StateStore) -> None:
    run_id = _run(store)
    upsert = {
        "external_id": "A",
        "remote_id": "r",
        "content_hash": "h",
        "payload": "{}",
        "status": "active",
    }
    _record(store, run_id, [], upserts=[upsert])
    assert store.snapshot("sumup", columns=DIFF_COLUMNS).columns == list(DIFF_COLUMNS)
    assert "payload" not in store.snapshot("sumup", payloads=False).columns
    with pytest.raises(ValueError, match="not snapshot columns"):
        store.snapshot("sumup", columns=["password"])


def test_failures_count_failed_runs_since_the_last_success(store: StateStore) -> None:
    store.write_plan("r0", "sumup", _plan(("A", "update", "a2")))
    runs = [_run(store) for _ in range(4)]
    _record(store, runs[0], [_outcome("p-A-update", "A", "succeeded", T0)])
    _record(store, runs[1], [_outcome("p-A-update", "A", "failed", T0 + timedelta(hours=1))])
    _record(store, runs[2], [_outcome("p-A-update", "A", "ambiguous", T0 + timedelta(hours=2))])
    _record(store, runs[3], [_outcome("p-A-update", "A", "skipped", T0 + timedelta(hours=3))])
    _record(store, runs[3], [_outcome("p-B-update", "B", "failed", T0 + timedelta(hours=3))])
    failures = store.failures("sumup")
    assert failures.select("external_id", "action", "failed_runs").rows() == [
        ("A", "update", 2),
        ("B", "update", 1),
    ]
    assert failures["last_error"].to_list() == ["SERVER_ERROR: unavailable"] * 2
    assert failures.filter(pl.col("external_id") == "A")["content_hash"].item() == "h-a2"
    assert store.failures("verifone").height == 0
    recovered = _run(store)
    _record(store, recovered, [_outcome("p-A-update", "A", "succeeded", T0 + timedelta(hours=4))])
    assert store.failures("sumup")["external_id"].to_list() == ["B"]


def test_refused_credentials_neither_count_as_failures_nor_quarantine(store: StateStore) -> None:
    refused = {"http_status": 401, "error_class": "AuthError", "error_code": "UNAUTHORIZED"}
    store.write_plan("r0", "sumup", _plan(("A", "update", "a2")))
    for hour in range(6):  # more runs with a revoked key than quarantine_after
        at = T0 + timedelta(hours=hour)
        _record(store, _run(store), [{**_outcome("p-A-update", "A", "failed", at), **refused}])
    assert store.failures("sumup").height == 0
    _record(store, _run(store), [_outcome("p-A-update", "A", "failed", T0 + timedelta(hours=7))])
    assert store.failures("sumup").select("external_id", "failed_runs").rows() == [("A", 1)]


def test_a_plan_built_from_hashes_alone_is_stored_complete(store: StateStore) -> None:
    """build_plan on DIFF_COLUMNS + write_plan store what the step-by-step functions plan
    on the full snapshot, with the remote ids and merge bases the snapshot table holds: the
    store is the one place that fills them in."""
    entity = "entity-1"
    day1 = read_extract([DATA / "customers.csv"]).frame
    seed = map_rows(
        validate(normalise(day1), "verifone").valid, "verifone", constants={"entity_id": entity}
    )
    seed = seed.with_columns(pl.format("uuid-{}", "external_id").alias("remote_id"))
    _record(store, _run(store, "verifone"), [], upserts=seed.to_dicts(), target="verifone")
    day2 = read_extract([DATA / "customers_day2.csv"]).frame
    run_id = _run(store, "verifone")
    result = build_plan(
        day2,
        store.snapshot("verifone", columns=DIFF_COLUMNS),
        target="verifone",
        mode="mirror",
        constants={"entity_id": entity},
    )
    assert store.write_plan(run_id, "verifone", result.plan) == 13
    validated = validate(normalise(day2), "verifone")
    expected = plan_actions(
        map_rows(validated.valid, "verifone", constants={"entity_id": entity}),
        store.snapshot("verifone"),
        target="verifone",
        mode="mirror",
        rejected=validated.rejects,
        include_unchanged=False,
    )
    snap = store.snapshot("verifone").select(
        "external_id", pl.col("remote_id").alias("s_remote"), pl.col("payload").alias("s_base")
    )
    complete = (
        expected.join(snap, on="external_id", how="left", maintain_order="left")
        .with_columns(
            pl.coalesce("remote_id", "s_remote").alias("remote_id"),
            # a delete's base: the last payload synced (what its changes record)
            pl.when(pl.col("action").is_in(["update", "close", "delete"]))
            .then(pl.col("s_base"))
            .alias("base_payload"),
        )
        .select(PLAN_SCHEMA.names())
    )
    stored = store.plan(run_id).select(PLAN_SCHEMA.names())
    assert stored.equals(complete)
    assert stored.filter(pl.col("action") == "update")["base_payload"].null_count() == 0
