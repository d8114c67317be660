"""The fleet's audit store, measured: per-run Parquet files against PostgreSQL (issue 13).

    flock /work/bench.lock .venv/bin/python tests/benchmarks/audit_store.py \\
        [--rows 500,5000] [--batches 8] [--tenants 8] [--runs 6] [--run-batches 4] [--queries 15]

A throwaway PostgreSQL 15 (``initdb`` / ``pg_ctl`` in a temporary folder, a unix socket only,
run as the ``postgres`` user when started as root; stopped at the end) and, for each tenant,
a real DuckDB state file.

1. **Publishing a batch.** ``--batches`` batches of N outcome rows (half creates, half updates
   changing two fields each), one call each and their change rows, the row shapes of
   :mod:`pipelines.state.frames`. Each is committed to the DuckDB state file
   (``StateStore.record_batch``: calls, outcomes, changes, snapshot upserts: the commit a run
   makes anyway, the baseline), then published (a) as Parquet files
   (:class:`pipelines.state.publish.Publisher`, the code a run uses) and (b) as rows of the same
   columns into PostgreSQL (``COPY ... FROM STDIN`` of the three tables in one transaction:
   the fastest way in; ``synchronous_commit`` on, as DuckDB syncs its commit). Reported: the
   median seconds of each and (a), (b) as ratios to the DuckDB commit of the same batch.
2. **A cross-tenant audit while writers write.** ``--tenants`` tenants × ``--runs`` runs of
   ``--run-batches`` batches of 500 rows published both ways; then a writer process keeps
   publishing new runs of two tenants (a batch every 0.25 s, both ways) while the reader
   answers "the last run of every tenant, with its v_runs counts" ``--queries`` times each way,
   alternately: (a) :func:`pipelines.audit_view.audit_runs` (``read_parquet(...,
   hive_partitioning = true)`` over the published files) and (b) the same SQL on PostgreSQL
   (indexed by tenant, target and run). Reported: median and maximum seconds of each, and the
   ratio (a)/(b). Both readers answer every query: neither waits for a writer.

The last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import psycopg

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from pipelines.audit_view import audit_runs  # noqa: E402
from pipelines.state.frames import (  # noqa: E402
    CALLS_SCHEMA,
    CHANGES_SCHEMA,
    OUTCOMES_SCHEMA,
    calls_frame,
    outcomes_frame,
    snapshot_frame,
)
from pipelines.state.publish import Publisher, withheld  # noqa: E402
from pipelines.state.store import StateStore  # noqa: E402

PG_BIN = Path(shutil.which("initdb") or "/usr/local/bin/initdb").parent
TARGET = "sumup"
SCHEMA = """
CREATE TABLE runs (tenant text, target text, run_id text, flow text, mode text,
    dry_run boolean, status text, exit_code int, started_at timestamptz,
    finished_at timestamptz, extract_paths text[], planned bigint, rejected bigint,
    PRIMARY KEY (tenant, target, run_id));
CREATE TABLE calls (tenant text, target text, run_id text, plan_id text, operation text,
    method text, path_template text, status int, error_code text, attempt int,
    latency_ms double precision, started_at timestamptz, request_id text);
CREATE TABLE outcomes (tenant text, target text, run_id text, plan_id text, external_id text,
    action text, result text, remote_id text, http_status int, error_class text,
    error_code text, changed_fields text[], drift_fields text[], occurred_at timestamptz);
CREATE TABLE changes (tenant text, target text, run_id text, plan_id text, external_id text,
    remote_id text, action text, field text, why text, occurred_at timestamptz);
CREATE INDEX calls_run ON calls (tenant, target, run_id);
CREATE INDEX outcomes_run ON outcomes (tenant, target, run_id);
"""
PG_AUDIT = """
WITH latest AS (
    SELECT * FROM (SELECT r.*, row_number() OVER (PARTITION BY tenant, target
                                                  ORDER BY started_at DESC, run_id DESC) AS n
                   FROM runs r) x WHERE n <= 1),
done AS (
    SELECT o.tenant, o.target, o.run_id,
           count(*) FILTER (WHERE o.result IN ('succeeded', 'adopted')) AS succeeded,
           count(*) FILTER (WHERE o.result IN ('failed', 'ambiguous')) AS failed,
           count(*) FILTER (WHERE cardinality(o.drift_fields) > 0) AS drift
    FROM outcomes o JOIN latest l USING (tenant, target, run_id) GROUP BY 1, 2, 3),
sent AS (
    SELECT c.tenant, c.target, c.run_id, count(*) AS n,
           count(*) FILTER (WHERE c.status = 429) AS http_429,
           count(*) FILTER (WHERE c.attempt > 1) AS retries
    FROM calls c JOIN latest l USING (tenant, target, run_id) GROUP BY 1, 2, 3)
SELECT r.tenant, r.run_id, r.status, r.exit_code, r.started_at,
       extract(epoch FROM r.finished_at - r.started_at) AS duration_s, r.planned,
       coalesce(done.succeeded, 0), coalesce(done.failed, 0), r.rejected,
       coalesce(sent.n, 0), coalesce(sent.http_429, 0)
FROM latest r LEFT JOIN done USING (tenant, target, run_id)
LEFT JOIN sent USING (tenant, target, run_id) ORDER BY 1, 2
"""


# -- PostgreSQL, throwaway ---------------------------------------------------------------------


def _as_postgres() -> dict[str, Any]:
    """Run PostgreSQL's tools as ``postgres`` when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return {}
    user = pwd.getpwnam("postgres")
    return {"user": user.pw_uid, "group": user.pw_gid}


class Postgres:
    """A PostgreSQL server in ``folder``, listening on a unix socket only."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.socket = folder / "sock"
        self.port = 5432

    def start(self) -> None:
        self.socket.mkdir(parents=True)
        who = _as_postgres()
        if who:
            shutil.chown(self.folder, who["user"], who["group"])
            shutil.chown(self.socket, who["user"], who["group"])
        subprocess.run(
            [PG_BIN / "initdb", "-D", self.data, "-A", "trust", "-U", "bench", "--no-sync"],
            check=True,
            capture_output=True,
            **who,
        )
        options = f"-k {self.socket} -c listen_addresses='' -p {self.port}"
        log = self.folder / "log"
        subprocess.run(
            [PG_BIN / "pg_ctl", "-D", self.data, "-o", options, "-l", log, "-w", "start"],
            check=True,
            capture_output=True,
            **who,
        )

    def stop(self) -> None:
        subprocess.run(
            [PG_BIN / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop"],
            capture_output=True,
            **_as_postgres(),
        )

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=str(self.socket), port=self.port, user="bench", dbname="postgres"
        )


# -- batches -----------------------------------------------------------------------------------


def batch(run: str, n: int, start: int) -> dict[str, pl.DataFrame]:
    """A batch of ``n`` actions as ``record_batch`` takes it: half creates, half updates of
    two fields each; one call per action; ``run_id``/``target`` set (as after its conform)."""
    now = datetime.now(UTC)
    keys = [f"C{start + i:08d}" for i in range(n)]
    creates = {k for i, k in enumerate(keys) if i % 2 == 0}
    calls = calls_frame(
        {
            "plan_id": f"p{k}",
            "operation": "createCustomer" if k in creates else "updateCustomer",
            "method": "POST" if k in creates else "PUT",
            "path_template": "/v0.1/customers" if k in creates else "/v0.1/customers/{id}",
            "status": 200,
            "error_code": None,
            "attempt": 1,
            "latency_ms": 12.5,
            "started_at": now,
            "request_id": f"req-{k}",
        }
        for k in keys
    )
    outcomes = outcomes_frame(
        {
            "plan_id": f"p{k}",
            "external_id": k,
            "action": "create" if k in creates else "update",
            "result": "succeeded",
            "remote_id": f"r{k}",
            "http_status": 200,
            "error_class": None,
            "error_code": None,
            "message": None,
            "changed_fields": [] if k in creates else ["email_address", "phone_number"],
            "drift_fields": [],
            "at": now,
        }
        for k in keys
    )
    updated = [k for k in keys if k not in creates]
    changes = pl.DataFrame(
        {
            "plan_id": [f"p{k}" for k in updated for _ in range(2)],
            "external_id": [k for k in updated for _ in range(2)],
            "remote_id": [f"r{k}" for k in updated for _ in range(2)],
            "action": "update",
            "field": ["email_address", "phone_number"] * len(updated),
            "before": ["old@example.com", "+49 30 1"] * len(updated),
            "after": ["new@example.com", "+49 30 2"] * len(updated),
            "why": "source",
            "occurred_at": [now] * (2 * len(updated)),
        }
    )
    snapshot = snapshot_frame(
        {
            "external_id": k,
            "remote_id": f"r{k}",
            "content_hash": "0" * 32,
            "payload": '{"email_address":"x@example.com"}',
            "status": "active",
            "content_key": i,
        }
        for i, k in enumerate(keys)
    )
    ids = {"run_id": run, "target": TARGET}
    return {
        "calls": _with(calls, ids, CALLS_SCHEMA),
        "outcomes": _with(outcomes, ids, OUTCOMES_SCHEMA),
        "changes": _with(changes, ids, CHANGES_SCHEMA),
        "snapshot": snapshot,
    }


def _with(frame: pl.DataFrame, ids: dict[str, str], schema: pl.Schema) -> pl.DataFrame:
    return frame.with_columns(pl.lit(v).alias(k) for k, v in ids.items()).select(
        pl.col(n).cast(t) for n, t in schema.items()
    )


def commit_duckdb(store: StateStore, run: str, frames: dict[str, pl.DataFrame]) -> None:
    store.record_batch(
        run,
        TARGET,
        calls=frames["calls"],
        outcomes=frames["outcomes"],
        snapshot_upserts=frames["snapshot"],
        snapshot_deletes=[],
        changes=frames["changes"],
    )


def _pg_text(frame: pl.DataFrame) -> bytes:
    """``frame`` as CSV for ``COPY``: lists as PostgreSQL array literals, times ISO."""
    listed = [n for n, t in frame.schema.items() if isinstance(t, pl.List)]
    frame = frame.with_columns(
        (pl.lit("{") + pl.col(n).list.join(",") + pl.lit("}")).alias(n) for n in listed
    )
    buffer = io.BytesIO()
    frame.write_csv(buffer, include_header=False, datetime_format="%Y-%m-%dT%H:%M:%S%.f%z")
    return buffer.getvalue()


def publish_pg(con: psycopg.Connection[Any], tenant: str, frames: dict[str, pl.DataFrame]) -> None:
    """The batch's published columns into PostgreSQL: COPY, one transaction, committed."""
    with con.transaction(), con.cursor() as cur:
        for table in ("calls", "outcomes", "changes"):
            frame = frames[table].rename({"at": "occurred_at"}, strict=False)
            frame = frame.drop(withheld(table), strict=False)
            frame = frame.select(pl.lit(tenant).alias("tenant"), pl.all())
            columns = ", ".join(frame.columns)
            with cur.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT csv)") as copy:
                copy.write(_pg_text(frame))


def run_row_pg(con: psycopg.Connection[Any], tenant: str, store: StateStore, run: str) -> None:
    """The run's ``runs`` row (with its plan and rejects counts) upserted into PostgreSQL."""
    row = store._frame(
        "SELECT run_id, flow, mode, dry_run, status, exit_code, started_at, finished_at,"
        " extract_paths, 0 AS planned, 0 AS rejected FROM runs WHERE run_id = ?",
        [run],
    ).row(0)
    with con.transaction():
        con.execute(
            "INSERT INTO runs VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (tenant, target, run_id) DO UPDATE SET status = excluded.status,"
            " exit_code = excluded.exit_code, finished_at = excluded.finished_at",
            [tenant, TARGET, *row],
        )


# -- 1: publishing a batch ---------------------------------------------------------------------


def publish_costs(root: Path, pg: Postgres, n: int, batches: int) -> dict[str, Any]:
    store = StateStore(root / f"publish-{n}.duckdb")
    publisher = Publisher(root / f"audit-publish-{n}", "acme", TARGET)
    run = store.begin_run(
        flow="sync", target=TARGET, mode="upsert", dry_run=False, extract_paths=[], params={}
    )
    times: dict[str, list[float]] = {"duckdb": [], "parquet": [], "postgres": []}
    with pg.connect() as con:
        for b in range(batches + 1):
            frames = batch(run, n, b * n)
            started = time.perf_counter()
            commit_duckdb(store, run, frames)
            duck = time.perf_counter() - started
            started = time.perf_counter()
            publisher.batch(
                store,
                run,
                calls=frames["calls"],
                outcomes=frames["outcomes"],
                changes=frames["changes"],
            )
            parquet = time.perf_counter() - started
            started = time.perf_counter()
            publish_pg(con, "acme", frames)
            postgres = time.perf_counter() - started
            if b:  # the first batch warms every path up
                times["duckdb"].append(duck)
                times["parquet"].append(parquet)
                times["postgres"].append(postgres)
    store.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    ratios = [
        {"parquet": p / d, "postgres": q / d}
        for d, p, q in zip(times["duckdb"], times["parquet"], times["postgres"], strict=True)
    ]
    return {
        "rows": n,
        "batches": batches,
        "duckdb_commit_s": round(med["duckdb"], 5),
        "parquet_s": round(med["parquet"], 5),
        "postgres_s": round(med["postgres"], 5),
        "parquet_vs_duckdb": round(statistics.median(r["parquet"] for r in ratios), 3),
        "postgres_vs_duckdb": round(statistics.median(r["postgres"] for r in ratios), 3),
    }


# -- 2: the audit query while writers write ----------------------------------------------------


def one_run(
    root: Path, pg: psycopg.Connection[Any], tenant: str, batches: int, pause_s: float = 0.0
) -> None:
    """One run of ``tenant``: its state file, published both ways as it goes."""
    publisher = Publisher(root / "audit", tenant, TARGET)
    with StateStore(root / "state" / f"{tenant}-{TARGET}.duckdb") as store:
        run = store.begin_run(
            flow="sync", target=TARGET, mode="upsert", dry_run=False, extract_paths=[], params={}
        )
        publisher.run(store, run)
        run_row_pg(pg, tenant, store, run)
        for b in range(batches):
            frames = batch(run, 500, b * 500)
            commit_duckdb(store, run, frames)
            publisher.batch(
                store,
                run,
                calls=frames["calls"],
                outcomes=frames["outcomes"],
                changes=frames["changes"],
            )
            publish_pg(pg, tenant, frames)
            time.sleep(pause_s)
        store.finish_run(run, status="done", exit_code=0, summary={})
        publisher.run(store, run)
        run_row_pg(pg, tenant, store, run)


def writer(root: str, socket: str, tenants: list[str], stop_at: float) -> None:
    """Keep publishing runs of ``tenants`` (a batch every 0.25 s) until ``stop_at``."""
    pg = psycopg.connect(host=socket, port=5432, user="bench", dbname="postgres")
    while time.time() < stop_at:
        for tenant in tenants:
            one_run(Path(root), pg, tenant, batches=4, pause_s=0.25)
    pg.close()


def audit_latency(root: Path, pg: Postgres, args: argparse.Namespace) -> dict[str, Any]:
    tenants = [f"t{i:02d}" for i in range(args.tenants)]
    with pg.connect() as con:
        for _ in range(args.runs):
            for tenant in tenants:
                one_run(root, con, tenant, args.run_batches)
        con.execute("ANALYZE")
    pairs = [(t, TARGET) for t in tenants]
    times: dict[str, list[float]] = {"parquet": [], "postgres": []}
    writes = multiprocessing.get_context("spawn").Process(
        target=writer, args=(str(root), str(pg.socket), tenants[:2], time.time() + 3600)
    )
    writes.start()
    try:
        time.sleep(2.0)  # the writer is writing
        with pg.connect() as con:
            for _ in range(args.queries):
                started = time.perf_counter()
                frame = audit_runs(root / "audit", pairs, last=1)
                times["parquet"].append(time.perf_counter() - started)
                assert frame.height == len(tenants)
                started = time.perf_counter()
                rows = con.execute(PG_AUDIT).fetchall()
                times["postgres"].append(time.perf_counter() - started)
                assert len(rows) == len(tenants)
    finally:
        writes.kill()
        writes.join()
    files = sum(1 for _ in (root / "audit").rglob("*.parquet"))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "tenants": args.tenants,
        "runs_each": args.runs,
        "rows_per_run": 500 * args.run_batches,
        "parquet_files": files,
        "queries": args.queries,
        "parquet_median_s": round(med["parquet"], 4),
        "parquet_max_s": round(max(times["parquet"]), 4),
        "postgres_median_s": round(med["postgres"], 4),
        "postgres_max_s": round(max(times["postgres"]), 4),
        "parquet_vs_postgres": round(med["parquet"] / med["postgres"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="500,5000", help="batch sizes, comma-separated")
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--tenants", type=int, default=8)
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--run-batches", type=int, default=4)
    parser.add_argument("--queries", type=int, default=15)
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="audit-store-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # the postgres user reaches its folder inside
        pg = Postgres(root / "pg")
        pg.start()
        try:
            with pg.connect() as con:
                con.execute(SCHEMA)
                con.commit()
                version = con.execute("SHOW server_version").fetchone()
            publish = [publish_costs(root, pg, int(n), args.batches) for n in args.rows.split(",")]
            for case in publish:
                print(json.dumps({"publish": case}), flush=True)
            audit = audit_latency(root, pg, args)
            print(json.dumps({"audit": audit}), flush=True)
        finally:
            pg.stop()
    result = {
        "benchmark": "audit_store",
        "postgres": version[0] if version else None,
        "publish": publish,
        "audit": audit,
        "wall_s": round(time.monotonic() - started, 1),
        "measured_at": (datetime.now(UTC) - timedelta(microseconds=0)).isoformat(
            timespec="seconds"
        ),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
