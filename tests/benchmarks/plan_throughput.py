"""Plan throughput: read + normalise + validate + diff + write the plan, from Parquet and CSV.

    python tests/benchmarks/plan_throughput.py --rows 1000000 [--target verifone] [--workdir DIR]

Generates a previous-day extract (seeded into a DuckDB snapshot, untimed) and today's extract
with 5 % changed, 1 % new and 1 % deleted keys, written as Parquet and as CSV. Each timed plan
runs in a fresh Python process, so that its peak RSS is its own; the clock starts after the
imports and stops when the plan is committed. The last line printed is one JSON object:
``rows``, ``parquet_plan_s``, ``parquet_cpu_s``, ``parquet_peak_rss_mb``, ``csv_plan_s``,
``csv_cpu_s``, ``csv_peak_rss_mb``, ``parquet_steps`` (wall seconds of: opening the store and
loading the snapshot, ``build_plan``, ``write_plan``, closing the store), and the load average
(other work on the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipelines.extract import read_extract  # noqa: E402
from pipelines.state.store import DIFF_COLUMNS, StateStore  # noqa: E402
from transforms.mapping import mapped_frame  # noqa: E402
from transforms.planner import build_plan  # noqa: E402
from transforms.schema import CANONICAL_COLUMNS  # noqa: E402

ENTITY_ID = "bench-entity"
FIRST = ["Anna", "Bernd", "Chloé", "Dmitri", "Eva", "François", "Günter", "Hanna", "Ines", "Jörg"]
LAST = ["Müller", "Schmidt", "O'Brien", "Dubois", "Rossi", "Nowak", "García", "Jensen", "Smith"]
CITIES = ["Berlin", "München", "Paris", "Lyon", "Milano", "Kraków", "Madrid", "Aarhus", "London"]
COUNTRIES = ["DE", "DE", "FR", "FR", "IT", "PL", "ES", "DK", "GB"]
STREETS = ["Hauptstraße", "Rue de la Paix", "Via Roma", "ul. Długa", "Calle Mayor", "High Street"]


def _pick(values: list[str], index: pl.Expr) -> pl.Expr:
    return index.mod(len(values)).replace_strict(dict(enumerate(values)), return_dtype=pl.String)


def customers(ids: pl.Expr, version: pl.Expr) -> list[pl.Expr]:
    """Canonical columns for customer number ``ids``; ``version`` > 0 changes some fields."""
    i = ids
    company = i.mod(7) == 0
    shipping = i.mod(5) == 0
    text = pl.lit(None, pl.String)
    columns = {
        "external_id": pl.format("CRM-{}", i.cast(pl.String).str.zfill(9)),
        "status": pl.lit("active"),
        "title": pl.when(i.mod(3) == 0).then(pl.lit("Dr")).otherwise(text),
        "first_name": _pick(FIRST, i),
        "middle_name": text,
        "last_name": _pick(LAST, i // 10),
        "company_name": pl.when(company).then(pl.format("{} GmbH", _pick(LAST, i // 3))),
        "company_registration_number": pl.when(company).then(pl.format("HRB {}", i.mod(99991))),
        "email": pl.format("customer{}.v{}@example.com", i, version),
        "phone": pl.format("+49 30 {}", (i.mod(9_000_000) + 1_000_000).cast(pl.String)),
        "work_phone": text,
        "birth_date": pl.format(
            "19{}-0{}-1{}", (50 + i.mod(50)).cast(pl.String), 1 + i.mod(9), i.mod(10)
        ),
        "tax_id": pl.when(company).then(i.mod(999_999_999).cast(pl.String).str.zfill(9)),
        "language": pl.lit("de"),
        "billing_address_1": pl.format("{} {}", _pick(STREETS, i // 7), 1 + i.mod(200)),
        "billing_address_2": text,
        "billing_address_3": text,
        "billing_city": _pick(CITIES, i // 11),
        "billing_state": text,
        "billing_postal_code": (i.mod(99_999)).cast(pl.String).str.zfill(5),
        "billing_country_code": _pick(COUNTRIES, i // 11),
        "billing_phone": text,
        "shipping_first_name": pl.when(shipping).then(_pick(FIRST, i + 3)),
        "shipping_middle_name": text,
        "shipping_last_name": pl.when(shipping).then(_pick(LAST, i // 10)),
        "shipping_address_1": pl.when(shipping).then(pl.format("Lager {}", i.mod(50))),
        "shipping_address_2": text,
        "shipping_address_3": text,
        "shipping_city": pl.when(shipping).then(_pick(CITIES, i + 1)),
        "shipping_state": text,
        "shipping_postal_code": pl.when(shipping).then(pl.lit("01099")),
        "shipping_country_code": pl.when(shipping).then(pl.lit("DE")),
        "shipping_phone": text,
    }
    return [columns[name].alias(name) for name in CANONICAL_COLUMNS]


def generate(rows: int, workdir: Path, target: str, *, csv: bool) -> None:
    """Write today's extract (Parquet, CSV) and seed yesterday's snapshot, all streaming."""
    i = pl.col("i")
    keys = pl.LazyFrame({"i": pl.int_range(0, rows, eager=True, dtype=pl.Int64)})
    new = pl.LazyFrame({"i": pl.int_range(rows, rows + rows // 100, eager=True, dtype=pl.Int64)})
    # Deterministic scatter: key i is changed when i*7919 mod 100 < 5, deleted when it is 99.
    bucket = (i * 7919).mod(100)
    today = pl.concat(
        [
            keys.filter(bucket != 99).select(
                customers(i, pl.when(bucket < 5).then(pl.lit(1)).otherwise(pl.lit(0)))
            ),
            new.select(customers(i, pl.lit(0))),
        ]
    )
    today.sink_parquet(workdir / "today.parquet")
    if csv:
        today.sink_csv(workdir / "today.csv")
    yesterday = keys.select(customers(i, pl.lit(0)))
    seed = workdir / "seed.parquet"
    mapped_frame(yesterday, target, entity_id=ENTITY_ID).sink_parquet(seed)  # type: ignore[arg-type]
    with StateStore(workdir / "state.duckdb") as store:
        store.con.execute(
            "INSERT INTO snapshot (target, external_id, remote_id, content_hash, payload, status,"
            " synced_at, run_id, content_key) SELECT $target, external_id, coalesce(remote_id,"
            " 'uuid-' || external_id), content_hash, payload, status, now(), 'seed', content_key"
            " FROM read_parquet($seed)",
            {"target": target, "seed": str(seed)},
        ).fetchall()
        store.con.execute("CHECKPOINT").fetchall()
    seed.unlink()


def _peak_rss_kb() -> int:
    """This process image's own peak resident set (``VmHWM``), in KiB.

    Not ``getrusage``'s ``ru_maxrss``: Linux carries that over ``exec`` from the forked copy of
    the parent, so a child started by a big parent reports at least the parent's size.
    """
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux: the best there is


def measure(source: Path, state: Path, target: str) -> dict[str, object]:
    """One timed plan (run in its own process)."""
    started, cpu_started = time.perf_counter(), time.process_time()
    steps: dict[str, float] = {}
    lap = started

    def step(name: str) -> None:
        nonlocal lap
        now = time.perf_counter()
        steps[name] = round(now - lap, 3)
        lap = now

    with StateStore(state) as store:
        run_id = store.begin_run(
            flow="bench",
            target=target,
            mode="mirror",
            dry_run=True,
            extract_paths=[str(source)],
            params={},
        )
        extract = read_extract([source])
        snapshot = store.snapshot(target, columns=DIFF_COLUMNS)
        failures = store.failures(target)
        step("open_snapshot_s")
        result = build_plan(
            extract.frame,
            snapshot,
            target=target,  # type: ignore[arg-type]
            mode="mirror",
            entity_id=ENTITY_ID,
            failures=failures,
        )
        step("build_plan_s")
        store.write_rejects(run_id, target, result.rejects)
        stored = store.write_plan(run_id, target, result.plan)
        step("write_plan_s")
    step("close_s")  # DuckDB checkpoints what went to its write-ahead log
    elapsed = time.perf_counter() - started
    return {
        "plan_s": round(elapsed, 3),
        # CPU-seconds of all threads: comparable across runs when other work shares the cores
        "cpu_s": round(time.process_time() - cpu_started, 3),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "peak_rss_mb": round(_peak_rss_kb() / 1024, 1),
        # What getrusage reports: on Linux it keeps the high-water mark of the process image
        # before exec, which fork copied from the parent (main() keeps the parent small).
        "ru_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "steps": steps,
        "stored": stored,
        "rejects": result.rejects.height,
        "actions": result.counts(),
    }


def _run_child(kind: str, workdir: Path, target: str) -> dict[str, object]:
    source = workdir / f"today.{kind}"
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--measure",
            str(source),
            "--workdir",
            str(workdir),
            "--target",
            target,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--target", choices=["verifone", "sumup"], default="verifone")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--skip-csv", action="store_true", help="time Parquet only")
    parser.add_argument("--measure", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:
        print(json.dumps(measure(args.measure, args.workdir / "state.duckdb", args.target)))
        return
    if args.generate_only:
        generate(args.rows, args.workdir, args.target, csv=not args.skip_csv)
        return
    own = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="custsync-bench-")) if own else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        (workdir / "state.duckdb").unlink(missing_ok=True)
        started = time.perf_counter()
        # In a child of its own: this process stays small, so the measuring children it forks
        # inherit no gigabyte of generated data (which ru_maxrss would carry over exec).
        generating = [sys.executable, __file__, "--generate-only", "--rows", str(args.rows)]
        generating += ["--workdir", str(workdir), "--target", args.target]
        subprocess.run([*generating, *(["--skip-csv"] if args.skip_csv else [])], check=True)
        print(f"generated in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        parquet = _run_child("parquet", workdir, args.target)
        print(f"parquet: {parquet}", file=sys.stderr)
        csv: dict[str, object] = {"plan_s": None, "peak_rss_mb": None}
        if not args.skip_csv:
            csv = _run_child("csv", workdir, args.target)
            print(f"csv: {csv}", file=sys.stderr)
        figures = {
            "rows": args.rows,
            "target": args.target,
            "parquet_plan_s": parquet["plan_s"],
            "parquet_cpu_s": parquet.get("cpu_s"),
            "parquet_peak_rss_mb": parquet["peak_rss_mb"],
            "csv_plan_s": csv["plan_s"],
            "csv_cpu_s": csv.get("cpu_s"),
            "csv_peak_rss_mb": csv["peak_rss_mb"],
            "parquet_steps": parquet.get("steps"),
            "plan_rows_stored": parquet.get("stored"),
            "actions": parquet.get("actions"),
            "cpus": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        }
        print(json.dumps(figures))
    finally:
        if own:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
