"""The cross-tenant audit answers while a tenant's run holds its state file: it waits for the
writer's release (a sync releases its file while each batch is sent) and names a file still
held after its wait, answering the others."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from pipelines.audit_view import V_RUNS_COLUMNS, audit_runs, published_files
from pipelines.fleet_audit import fleet_audit
from pipelines.state.frames import CHANGES_SCHEMA, RESULTS, calls_frame, outcomes_frame
from pipelines.state.publish import TABLES, Publisher, publishing, withheld
from pipelines.state.redaction import PERSONAL_COLUMNS
from pipelines.state.store import StateStore
from pipelines.tenants import TenantsFile, parse_tenants
from transforms.diff import PLAN_SCHEMA

TENANTS = "\n".join(
    f'[[tenants]]\nid = "{t}"\nextract = "x.csv"\n[tenants.sumup]\napi_key = "KEY_{t.upper()}"\n'
    for t in ("acme", "bolt", "cargo")
)

# Holds the file for writing (a run's writer) for argv[2] seconds, saying when it holds it.
HOLDER = (
    "import sys, time, duckdb\n"
    "con = duckdb.connect(sys.argv[1])\n"
    "print('held', flush=True)\n"
    "time.sleep(float(sys.argv[2]))\n"
    "con.close()\n"
)


def _fleet(tmp_path: Path) -> TenantsFile:
    tenants = parse_tenants(TENANTS, tmp_path / "tenants.toml")
    for index, (tenant, target) in enumerate(tenants.runs()):
        if tenant.id == "cargo":
            continue  # never ran: no state file yet
        path = tenants.state_file(tenant.id, target)
        path.parent.mkdir(parents=True, exist_ok=True)
        with StateStore(path) as store:
            store.con.execute(
                "INSERT INTO runs (run_id, flow, target, mode, dry_run, extract_paths,"
                " started_at, status, exit_code) VALUES (?, 'sync', ?, 'upsert', false,"
                " ['x.csv'], now(), 'done', 0)",
                [f"run-{index}", target],
            )
    return tenants


def _hold(path: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_every_tenant_that_ran_is_answered_and_one_that_never_ran_is_named(
    tmp_path: Path,
) -> None:
    audit = fleet_audit(_fleet(tmp_path))
    assert audit.runs["tenant"].to_list() == ["acme", "bolt"]
    assert set(audit.runs["run_id"]) == {"run-0", "run-1"}
    assert audit.skipped == ("cargo/sumup",)


def test_a_file_being_written_is_waited_for_and_then_answered(tmp_path: Path) -> None:
    tenants = _fleet(tmp_path)
    holder = _hold(tenants.state_file("bolt", "sumup"), 1.5)
    try:
        # bolt's file is held when the audit starts: answered only if the audit waits
        audit = fleet_audit(tenants, wait_s=30)
    finally:
        holder.wait(timeout=30)
    assert audit.runs["tenant"].to_list() == ["acme", "bolt"]
    assert audit.skipped == ("cargo/sumup",)


@pytest.mark.parametrize("wait_s", [0.0, 0.3])
def test_a_file_held_past_the_wait_is_named_and_the_others_answered(
    tmp_path: Path, wait_s: float
) -> None:
    tenants = _fleet(tmp_path)
    holder = _hold(tenants.state_file("acme", "sumup"), 20)
    try:
        audit = fleet_audit(tenants, wait_s=wait_s)
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert audit.runs["tenant"].to_list() == ["bolt"]
    assert audit.skipped == ("acme/sumup", "cargo/sumup")


# -- the published Parquet audit ----------------------------------------------------------------

PERSONAL = "jan.schmidt@example.com"
"""A personal value the generated runs put where the state file may hold one."""

outcome_specs = st.tuples(
    st.sampled_from(RESULTS),
    st.sampled_from(["create", "update", "close", "delete"]),
    st.sampled_from([200, 201, 404, 429, 500, None]),
    st.integers(1, 3),
    st.booleans(),  # drift
    st.integers(0, 2),  # changed fields
)
run_specs = st.tuples(
    st.lists(st.lists(outcome_specs, max_size=6), max_size=4),  # batches
    st.integers(0, 5),  # plan rows
    st.integers(0, 3),  # rejected keys
    st.booleans(),  # finished (else still running, or crashed)
)


def _frames(batch: list[Any], run_no: int, batch_no: int) -> dict[str, pl.DataFrame]:
    at = datetime(2026, 12, 6, 2, tzinfo=UTC) + timedelta(minutes=run_no, seconds=batch_no)
    keys = [f"C{run_no}-{batch_no}-{i}" for i in range(len(batch))]
    calls = calls_frame(
        {
            "plan_id": f"p-{k}",
            "operation": "op",
            "method": "POST",
            "path_template": "/v0.1/customers",
            "status": status,
            "error_code": None if status in (200, 201) else "E",
            "attempt": attempt,
            "latency_ms": 1.5,
            "started_at": at,
            "request_id": f"r-{k}",
        }
        for k, (_, _, status, attempt, _, _) in zip(keys, batch, strict=True)
    )
    outcomes = outcomes_frame(
        {
            "plan_id": f"p-{k}",
            "external_id": k,
            "action": action,
            "result": result,
            "remote_id": f"rid-{k}",
            "http_status": status,
            "message": f"provider said: {PERSONAL} is invalid",
            "changed_fields": ["email_address"] * changed,
            "drift_fields": ["phone_number"] if drift else [],
            "at": at,
        }
        for k, (result, action, status, _, drift, changed) in zip(keys, batch, strict=True)
    )
    rows = [(k, i) for k, spec in zip(keys, batch, strict=True) for i in range(spec[5])]
    changes = pl.DataFrame(
        {
            "plan_id": [f"p-{k}" for k, _ in rows],
            "external_id": [k for k, _ in rows],
            "remote_id": [f"rid-{k}" for k, _ in rows],
            "action": ["update"] * len(rows),
            "field": [f"field_{i}" for _, i in rows],
            "before": [PERSONAL] * len(rows),
            "after": [PERSONAL.upper()] * len(rows),
            "why": ["source"] * len(rows),
            "occurred_at": [at] * len(rows),
        },
        schema={n: t for n, t in CHANGES_SCHEMA.items() if n not in ("run_id", "target")},
    )
    return {"calls": calls, "outcomes": outcomes, "changes": changes}


def _write_runs(store: StateStore, runs: list[Any]) -> None:
    """The generated runs, recorded as a run records them (plan, rejects, batches, end)."""
    for run_no, (batches, planned, rejected, finished) in enumerate(runs):
        run_id = store.begin_run(
            flow="sync", target="sumup", mode="upsert", dry_run=False, extract_paths=["x.csv"],
            params={},
        )  # fmt: skip
        store.record_provenance(run_id, {"host": "worker-1"})
        rejects = pl.DataFrame(
            {
                "external_id": [f"R{i}" for i in range(rejected)],
                "field": "email",
                "rule": "format",
                "message": "bad",
                "value": PERSONAL,
            }
        )
        store.write_rejects(run_id, "sumup", rejects)
        plan = pl.DataFrame(
            {
                "plan_id": [f"plan-{run_no}-{i}" for i in range(planned)],
                "external_id": [f"K{i}" for i in range(planned)],
                "action": "create",
                "payload": f'{{"email": "{PERSONAL}"}}',
                "content_hash": "h",
            }
        ).with_columns(
            pl.lit(None, t).alias(n)
            for n, t in PLAN_SCHEMA.items()
            if n not in ("plan_id", "external_id", "action", "payload", "content_hash")
        )
        store.write_plan(run_id, "sumup", plan)
        for batch_no, batch in enumerate(batches):
            frames = _frames(batch, run_no, batch_no)
            store.record_batch(
                run_id, "sumup", snapshot_upserts=pl.DataFrame(), snapshot_deletes=[], **frames
            )
        if finished:
            store.finish_run(run_id, status="done", exit_code=0, summary={"n": planned})


def _published(audit_dir: Path, table: str) -> pl.DataFrame:
    files = published_files(audit_dir, [("acme", "sumup")], table)
    return pl.concat([pl.read_parquet(f) for f in files]) if files else pl.DataFrame()


def _same_rows(published: pl.DataFrame, stored: pl.DataFrame) -> None:
    assert published.height == stored.height
    if stored.height == 0:
        return
    assert published.columns == stored.columns
    keys = [c for c, t in stored.schema.items() if not isinstance(t, pl.List)]
    assert_frame_equal(published.sort(keys), stored.sort(keys))


def _assert_published_equals_stored(store: StateStore, audit_dir: Path) -> None:
    for table in ("calls", "outcomes", "changes"):
        hidden = withheld(table)
        columns = [c for c in store._frame(f"SELECT * FROM {table} LIMIT 0").columns]
        shown = [c for c in columns if c not in hidden]
        stored = store._frame(f"SELECT {', '.join(shown)} FROM {table}")
        _same_rows(_published(audit_dir, table), stored)
    view = audit_runs(audit_dir, [("acme", "sumup")], last=None)
    stored = store._frame("SELECT * FROM v_runs ORDER BY started_at DESC, run_id DESC")
    if stored.height == 0:
        assert view.height == 0
        return
    assert view["tenant"].unique().to_list() == ["acme"]
    assert_frame_equal(view.select(V_RUNS_COLUMNS), stored.select(V_RUNS_COLUMNS))


@given(st.lists(run_specs, max_size=4))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_published_runs_read_back_equal_the_state_file(runs: list[Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        state, audit_dir = Path(tmp) / "acme-sumup.duckdb", Path(tmp) / "audit"
        with publishing(state, Publisher(audit_dir, "acme", "sumup")), StateStore(state) as store:
            _write_runs(store, runs)
            _assert_published_equals_stored(store, audit_dir)
            # no personal value, no withheld column, no half-written file anywhere
            for path in audit_dir.rglob("*"):
                assert not path.name.endswith(".tmp")
                if path.is_file():
                    frame = pl.read_parquet(path)
                    table = path.parent.name
                    assert not withheld(table) & set(frame.columns)
                    assert PERSONAL not in str(frame.rows()).lower()


def test_the_published_columns_leave_out_every_personal_column_of_the_registry() -> None:
    for table in TABLES:
        registered = {c.column for c in PERSONAL_COLUMNS if c.table == table}
        assert withheld(table) == registered
    assert withheld("outcomes") == {"message"}
    assert withheld("changes") == {"before", "after"}


def test_forget_and_retention_leave_the_published_audit_equal_to_the_state_file(
    tmp_path: Path,
) -> None:
    state, audit_dir = tmp_path / "acme-sumup.duckdb", tmp_path / "audit"
    batch = [("succeeded", "update", 200, 1, False, 2)] * 3
    with publishing(state, Publisher(audit_dir, "acme", "sumup")), StateStore(state) as store:
        _write_runs(store, [([batch, batch], 2, 1, True)])
        before = {t: _published(audit_dir, t) for t in TABLES}
        keys = store._frame("SELECT DISTINCT external_id FROM outcomes")["external_id"]
        redacted = store.redact_forgotten("forget-run", "sumup", keys.to_list())
        redacted += store.apply_retention("forget-run", datetime.now(UTC) + timedelta(days=1))
        assert redacted > 0
        assert PERSONAL not in str(store._frame("SELECT * FROM changes").rows())
        # the published files held none of what was redacted: they stand as they were
        _assert_published_equals_stored(store, audit_dir)
        for table, frame in before.items():
            assert_frame_equal(_published(audit_dir, table), frame)


WRITER = """
import sys
from pathlib import Path
import polars as pl
from pipelines.state.frames import calls_frame, outcomes_frame
from pipelines.state.publish import Publisher, publishing
from pipelines.state.store import StateStore
from datetime import UTC, datetime
state, audit = Path(sys.argv[1]), Path(sys.argv[2])
batches, rows = int(sys.argv[3]), int(sys.argv[4])
with publishing(state, Publisher(audit, "acme", "sumup")), StateStore(state) as store:
    run = store.begin_run(flow="sync", target="sumup", mode="upsert", dry_run=False,
                          extract_paths=[], params={})
    store.record_provenance(run, {"host": "w"})
    print("started", flush=True)
    now = datetime.now(UTC)
    for b in range(batches):
        keys = [f"K{b}-{i}" for i in range(rows)]
        store.record_batch(
            run, "sumup", snapshot_upserts=pl.DataFrame(), snapshot_deletes=[],
            calls=calls_frame({"plan_id": k, "operation": "op", "method": "POST",
                               "path_template": "/c", "status": 201, "attempt": 1,
                               "latency_ms": 1.0, "started_at": now, "request_id": k}
                              for k in keys),
            outcomes=outcomes_frame({"plan_id": k, "external_id": k, "action": "create",
                                     "result": "succeeded", "changed_fields": [],
                                     "drift_fields": [], "at": now} for k in keys),
        )
    print("batched", flush=True)
    sys.stdin.readline()  # the file stays held (for writing) until the test says so
    store.finish_run(run, status="done", exit_code=0, summary={})
"""


def test_a_reader_never_sees_part_of_a_batch_and_never_waits_for_the_writer(
    tmp_path: Path,
) -> None:
    tenants = parse_tenants(TENANTS, tmp_path / "tenants.toml")
    state, audit_dir = tenants.state_file("acme", "sumup"), tenants.audit_folder()
    batches, rows = 60, 2000
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(state), str(audit_dir), str(batches), str(rows)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdin is not None and writer.stdout is not None
    seen: list[int] = []
    try:
        assert writer.stdout.readline().strip() == "started"
        while writer.poll() is None and (not seen or seen[-1] < batches * rows):
            audit = fleet_audit(tenants, published=True)
            for path in audit_dir.rglob("*.parquet"):
                pl.read_parquet(path)  # a partly written file would not parse
            if audit.runs.height:
                seen.append(int(audit.runs["calls"][0]))
        assert writer.stdout.readline().strip() == "batched"
        # the writer holds its state file: the state-file audit cannot read it ...
        assert fleet_audit(tenants, wait_s=0).skipped[0] == "acme/sumup"
        # ... the published one answers, with every batch
        audit = fleet_audit(tenants, published=True)
        assert audit.runs.select("status", "calls", "succeeded").row(0) == (
            "running",
            batches * rows,
            batches * rows,
        )
        assert audit.skipped == ("bolt/sumup", "cargo/sumup")
    finally:
        writer.communicate("done\n", timeout=60)
    assert writer.returncode == 0
    assert seen == sorted(seen)  # never goes back
    assert all(n % rows == 0 for n in seen)  # whole batches only
    assert len(set(seen)) > 2  # it read while the batches were being published
    audit = fleet_audit(tenants, published=True)
    assert audit.runs["status"][0] == "done"
    with StateStore(state, read_only=True) as store:
        _assert_published_equals_stored(store, audit_dir)


# -- custsync fleet TENANTS_FILE --audit -----------------------------------------------------------

PROBE = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('prefect-imported:', 'prefect' in sys.modules, "
    "file=sys.stderr))\n"
    "from pipelines.cli import main\n"
    "args, sys.argv = sys.argv[1:], sys.argv[:1]\n"
    "main(args)\n"
)


def _audit_cli(tmp: Path, *args: str) -> tuple[int, str, list[str], bool]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTSYNC_", "PREFECT_"))}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "fleet", *args],
        env={**env, "PREFECT_HOME": str(tmp / "prefect-home")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = done.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("prefect-imported:"), done.stderr
    assert "Traceback" not in done.stderr
    return done.returncode, done.stdout, lines[:-1], lines[-1].endswith("True")


def test_the_audit_command_prints_the_published_runs_without_prefect(tmp_path: Path) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text(TENANTS, encoding="utf-8")
    tenants = parse_tenants(TENANTS, path)
    state = tenants.state_file("bolt", "sumup")
    batch = [("succeeded", "create", 201, 1, False, 0), ("failed", "create", 429, 2, False, 0)]
    publisher = Publisher(tenants.audit_folder(), "bolt", "sumup")
    with publishing(state, publisher), StateStore(state) as store:
        _write_runs(store, [([batch], 2, 1, True), ([batch, batch], 4, 0, False)])
    code, out, err, prefect = _audit_cli(tmp_path, str(path), "--audit", "--json", "--last", "2")
    assert (code, err, prefect) == (0, [], False)
    document = json.loads(out)
    assert document["audit_dir"] == str(tmp_path / "audit")
    assert document["not_published"] == ["acme/sumup", "cargo/sumup"]
    rows = [(r["tenant"], r["status"], r["planned"], r["succeeded"], r["failed"], r["rejected"],
             r["calls"], r["http_429"]) for r in document["runs"]]  # fmt: skip
    assert rows == [
        ("bolt", "running", 4, 2, 2, 0, 4, 2),  # newest first, as of its last batch
        ("bolt", "done", 2, 1, 1, 1, 2, 1),
    ]
    code, out, err, prefect = _audit_cli(tmp_path, str(path), "--audit")
    assert (code, err, prefect) == (0, [], False)
    assert "bolt" in out and "not published yet: acme/sumup, cargo/sumup" in out


@pytest.mark.parametrize(
    ("text", "args", "where"),
    [
        ("not toml [", [], "not valid TOML"),
        (
            TENANTS.replace('id = "cargo"\n', 'id = "cargo"\nlanding = "in/"\n'),
            [],
            "tenant cargo: landing: give extract or landing, not both",
        ),
        (TENANTS, ["--dry-run"], "--audit reads the published audit"),
    ],
)
def test_a_bad_audit_request_is_one_line_and_exit_2(
    tmp_path: Path, text: str, args: list[str], where: str
) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text(text, encoding="utf-8")
    code, out, err, prefect = _audit_cli(tmp_path, str(path), "--audit", *args)
    assert (code, out, prefect) == (2, "", False)
    assert len(err) == 1 and err[0].startswith("error: ") and where in err[0], err


def test_a_publication_that_fails_is_logged_and_the_run_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state, audit_dir = tmp_path / "acme-sumup.duckdb", tmp_path / "audit"
    audit_dir.write_text("not a folder", encoding="utf-8")  # nothing can be published
    batch = [("succeeded", "create", 201, 1, False, 0)] * 2
    with publishing(state, Publisher(audit_dir, "acme", "sumup")), StateStore(state) as store:
        _write_runs(store, [([batch, batch], 2, 1, True)])
        stored = store._frame("SELECT status, succeeded, calls FROM v_runs").rows()
    assert stored == [("done", 4, 4)]  # the state file, the source of truth, has it all
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings and all("not published" in w for w in warnings)
    assert audit_dir.read_text(encoding="utf-8") == "not a folder"


def test_a_second_publisher_of_a_run_goes_on_after_the_first_ones_files(tmp_path: Path) -> None:
    """A run published by one process and continued by another (a new :class:`Publisher`)
    never overwrites nor loses a publication: numbering goes on from the files on disk."""
    rows = pl.DataFrame({"plan_id": ["p1"], "status": [201]})
    empty = pl.DataFrame()
    first = Publisher(tmp_path, "acme", "sumup")
    written = first.batch(None, "R1", calls=rows, outcomes=empty, changes=empty)  # type: ignore[arg-type]
    again = Publisher(tmp_path, "acme", "sumup")
    later = again.batch(None, "R1", calls=rows, outcomes=empty, changes=empty)  # type: ignore[arg-type]
    other = again.batch(None, "R2", calls=rows, outcomes=empty, changes=empty)  # type: ignore[arg-type]
    assert [p.name for p in written + later + other] == [
        "R1-000001.parquet",
        "R1-000002.parquet",
        "R2-000001.parquet",
    ]
