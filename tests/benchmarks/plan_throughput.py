"""Plan throughput: read + normalise + validate + diff + write the plan, against a stock diff.

    python tests/benchmarks/plan_throughput.py --rows 1000000 [--target verifone] [--repeat 3]
        [--workdir DIR] [--skip-csv]

Generates a previous-day extract (seeded into a DuckDB snapshot, and written as the Parquet
snapshot of the stock baseline, untimed) and today's extract with 5 % changed, 1 % new and 1 %
deleted keys, written as Parquet and as CSV.

Machines here vary twofold from day to day, so each custsync plan is compared with a stock
lazy/streaming polars diff of the same files in the same run (:func:`stock_diff`), and the
headline figures are the ratios ``parquet_plan_vs_stock`` and ``csv_plan_vs_stock``. Each timed
run, either side, is a fresh Python process started the same way (same script, same imports;
the clock starts after the imports), so its peak RSS is its own and import costs and the page
cache are treated alike. The sides run ``--repeat`` times, interleaved (ABBA from round to
round) so that load drifts hit both; the figures are the medians.

The last line printed is one JSON object: ``rows``; per source (``parquet``, ``csv``) the
custsync figures ``{src}_plan_s``, ``{src}_cpu_s``, ``{src}_peak_rss_mb``, the stock figures
``{src}_stock_s``, ``{src}_stock_cpu_s``, ``{src}_stock_peak_rss_mb``, the ratio
``{src}_plan_vs_stock`` (of the median wall times; ``{src}_cpu_vs_stock`` of the CPU-seconds),
every run's seconds and paired ratio (``…_runs``);
``parquet_steps`` (median wall seconds of: opening the store and loading the snapshot,
``build_plan``, ``write_plan``, closing the store); whether both sides found the same
differences; the budgets and whether they were met; the load average before and after.
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
from typing import Any

import polars as pl

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipelines.extract import read_extract  # noqa: E402
from pipelines.state.store import DIFF_COLUMNS, StateStore  # noqa: E402
from transforms.mapping import mapped_frame  # noqa: E402
from transforms.planner import build_plan  # noqa: E402
from transforms.schema import CANONICAL_COLUMNS  # noqa: E402

ENTITY_ID = "bench-entity"
NON_KEY_COLUMNS = [name for name in CANONICAL_COLUMNS if name != "external_id"]
STATE = "state.duckdb"
PRISTINE_STATE = "state.seed.duckdb"
STOCK_SNAPSHOT = "snapshot.parquet"
Run = dict[str, Any]
"""One timed child's figures, as its JSON line reported them."""
RATIO_BUDGET = 2.5
"""custsync's plan may take at most this many times the stock diff, Parquet and CSV alike."""
RSS_BUDGET_MB = 1e9 / 2**20
"""1.0 GB peak RSS for the 1M-row Parquet plan, read strictly (10^9 bytes, 953.7 MiB)."""
BUDGET_ROWS = 1_000_000
"""The row count the budgets are set for."""
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
    """Write today's extract (Parquet, CSV), yesterday's snapshot, all streaming.

    Yesterday's rows are seeded into a DuckDB snapshot for custsync (kept pristine as
    :data:`PRISTINE_STATE`, copied before each run) and written as a Parquet file of the
    canonical columns for the stock diff: the same snapshot content, each in its own form.
    """
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
    yesterday.sink_parquet(workdir / STOCK_SNAPSHOT)
    seed = workdir / "seed.parquet"
    mapped_frame(yesterday, target, constants={"entity_id": ENTITY_ID}).sink_parquet(seed)
    with StateStore(workdir / PRISTINE_STATE) as store:
        store.con.execute(
            "INSERT INTO snapshot (target, external_id, remote_id, content_hash, payload, status,"
            " synced_at, run_id, content_key) SELECT $target, external_id, coalesce(remote_id,"
            " 'uuid-' || external_id), content_hash, payload, status, now(), 'seed', content_key"
            " FROM read_parquet($seed)",
            {"target": target, "seed": str(seed)},
        ).fetchall()
        store.con.execute("CHECKPOINT").fetchall()
    seed.unlink()


def _proc_status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise LookupError(field)


def _peak_rss_kb() -> int:
    """This process image's own peak resident set (``VmHWM``), in KiB.

    Not ``getrusage``'s ``ru_maxrss``: Linux carries that over ``exec`` from the forked copy of
    the parent, so a child started by a big parent reports at least the parent's size.
    """
    try:
        return _proc_status_kb("VmHWM")
    except (OSError, LookupError):  # not Linux: the best there is
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _rss_now_mb() -> float | None:
    """Resident set now (``VmRSS``), in MiB: what the imports alone hold when the clock starts."""
    try:
        return round(_proc_status_kb("VmRSS") / 1024, 1)
    except (OSError, LookupError):
        return None


def _process_figures(started: float, cpu_started: float) -> dict[str, object]:
    """Time, CPU and memory of this process since ``started``: the same for both sides."""
    return {
        "plan_s": round(time.perf_counter() - started, 3),
        # CPU-seconds of all threads: comparable across runs when other work shares the cores
        "cpu_s": round(time.process_time() - cpu_started, 3),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "peak_rss_mb": round(_peak_rss_kb() / 1024, 1),
        # What getrusage reports: on Linux it keeps the high-water mark of the process image
        # before exec, which fork copied from the parent (main() keeps the parent small).
        "ru_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def measure(source: Path, state: Path, target: str) -> dict[str, object]:
    """One timed custsync plan (run in its own process)."""
    rss_at_start = _rss_now_mb()
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
            target=target,
            mode="mirror",
            constants={"entity_id": ENTITY_ID},
            failures=failures,
        )
        step("build_plan_s")
        store.write_rejects(run_id, target, result.rejects)
        stored = store.write_plan(run_id, target, result.plan)
        step("write_plan_s")
    step("close_s")  # DuckDB checkpoints what went to its write-ahead log
    return {
        **_process_figures(started, cpu_started),
        "rss_at_start_mb": rss_at_start,
        "steps": steps,
        "stored": stored,
        "rejects": result.rejects.height,
        "actions": result.counts(),
    }


def stock_diff(extract: Path, snapshot: Path) -> pl.LazyFrame:
    """The stock lazy polars diff of ``extract`` against ``snapshot`` (a canonical Parquet file).

    Both sides are scanned (CSV as text, as custsync reads it), the non-key columns hashed as
    one struct per row, fully joined on ``external_id``; rows new (extract only), gone
    (snapshot only) or whose hash differs are kept as ``external_id, action``.

    What it does not do, and custsync's plan does: trim, NFC-normalise, empty-to-null and
    case-fold values; check every field rule and repeated keys (and itemise rejects); map rows
    to provider payloads; key content per field with seeded hashes that stay stable across
    polars versions; build the JSON payload and SHA-256 content hash of every planned row;
    store the run, rejects and plan in DuckDB and checkpoint it. What it does that custsync's
    plan does not: read all 33 snapshot columns from Parquet and hash them again every run
    (custsync reads 3 columns from DuckDB, its content keys stored when the snapshot was).
    """
    if extract.suffix == ".csv":
        today = pl.scan_csv(extract, infer_schema=False)
    else:
        today = pl.scan_parquet(extract)
    yesterday = pl.scan_parquet(snapshot)

    def hashed(frame: pl.LazyFrame) -> pl.LazyFrame:
        return frame.select("external_id", pl.struct(NON_KEY_COLUMNS).hash().alias("h"))

    joined = hashed(today).join(hashed(yesterday), on="external_id", how="full", suffix="_snap")
    action = (
        pl.when(pl.col("external_id_snap").is_null())
        .then(pl.lit("new"))
        .when(pl.col("external_id").is_null())
        .then(pl.lit("gone"))
        .when(pl.col("h") != pl.col("h_snap"))
        .then(pl.lit("changed"))
    )
    return joined.select(
        pl.coalesce("external_id", "external_id_snap").alias("external_id"),
        action.alias("action"),
    ).filter(pl.col("action").is_not_null())


def measure_stock(source: Path, snapshot: Path) -> dict[str, object]:
    """One timed stock diff (run in its own process, started and timed like :func:`measure`)."""
    rss_at_start = _rss_now_mb()
    started, cpu_started = time.perf_counter(), time.process_time()
    diff = stock_diff(source, snapshot).collect(engine="streaming")
    figures = _process_figures(started, cpu_started)  # before counting: not part of the diff
    return {
        **figures,
        "rss_at_start_mb": rss_at_start,
        "actions": dict(diff.group_by("action").len().iter_rows()),
    }


def _run_child(side: str, kind: str, workdir: Path, target: str) -> Run:
    """Run one timed ``side`` (``custsync`` or ``stock``) on today's ``kind`` file, in a child."""
    if side == "custsync":
        # Every custsync run starts from the same state file: each leaves a run and its plan.
        # Copied and synced before the clock (and the child) starts, so no writeback overlaps.
        state = workdir / STATE
        shutil.copyfile(workdir / PRISTINE_STATE, state)
        with state.open("rb+") as copied:
            os.fsync(copied.fileno())
    source = workdir / f"today.{kind}"
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--measure" if side == "custsync" else "--stock",
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
    result: Run = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def _seconds(runs: list[Run], key: str = "plan_s") -> list[float]:
    return [float(run[key]) for run in runs]


def _summary(kind: str, ours: list[Run], stock: list[Run]) -> dict[str, object]:
    """The figures of one source: medians, every run, the ratio and the paired ratios."""
    plan_s, stock_s = _seconds(ours), _seconds(stock)
    cpu_s, stock_cpu_s = _seconds(ours, "cpu_s"), _seconds(stock, "cpu_s")
    return {
        f"{kind}_plan_s": round(_median(plan_s), 3),
        f"{kind}_stock_s": round(_median(stock_s), 3),
        # Of the medians: the headline. The paired ratios (run by run) show the spread.
        f"{kind}_plan_vs_stock": round(_median(plan_s) / _median(stock_s), 2),
        f"{kind}_plan_vs_stock_runs": [
            round(a / b, 2) for a, b in zip(plan_s, stock_s, strict=True)
        ],
        f"{kind}_cpu_s": round(_median(cpu_s), 3),
        f"{kind}_stock_cpu_s": round(_median(stock_cpu_s), 3),
        # CPU-seconds drift less than wall time when other work takes the cores (not at all
        # immune: caches and memory bandwidth are shared too); a second view of the same ratio.
        f"{kind}_cpu_vs_stock": round(_median(cpu_s) / _median(stock_cpu_s), 2),
        # The highest of the runs: a budget on memory is a ceiling.
        f"{kind}_peak_rss_mb": max(_seconds(ours, "peak_rss_mb")),
        f"{kind}_stock_peak_rss_mb": max(_seconds(stock, "peak_rss_mb")),
        f"{kind}_plan_s_runs": plan_s,
        f"{kind}_stock_s_runs": stock_s,
    }


def _same_diff(ours: dict[str, int], stock: dict[str, int]) -> bool:
    """Whether custsync planned exactly what the stock diff found (all rows valid and active)."""
    planned = {"new": ours.get("create", 0), "changed": ours.get("update", 0)}
    planned["gone"] = ours.get("delete", 0)
    found = {name: stock.get(name, 0) for name in planned}
    return planned == found and set(ours) <= {"create", "update", "delete", "unchanged"}


def compare(
    workdir: Path, target: str, repeat: int, kinds: list[str]
) -> tuple[dict[str, Any], dict[str, list[Run]]]:
    """Time both sides on each of ``kinds``, ``repeat`` times, interleaved; the summary figures."""
    runs: dict[str, list[Run]] = {}
    for round_no in range(repeat):
        # ABBA: the side that goes first alternates, so a drifting load favours neither.
        sides = ["custsync", "stock"] if round_no % 2 == 0 else ["stock", "custsync"]
        for kind in kinds:
            for side in sides:
                result = _run_child(side, kind, workdir, target)
                runs.setdefault(f"{kind}/{side}", []).append(result)
                print(f"round {round_no + 1} {kind} {side}: {result}", file=sys.stderr)
    figures: dict[str, Any] = {}
    for kind in kinds:
        ours, stock = runs[f"{kind}/custsync"], runs[f"{kind}/stock"]
        figures.update(_summary(kind, ours, stock))
        figures[f"{kind}_same_diff"] = all(
            _same_diff(a["actions"], b["actions"]) for a, b in zip(ours, stock, strict=True)
        )
    return figures, runs


def _budgets(figures: dict[str, Any], kinds: list[str]) -> dict[str, bool]:
    """Each budget met or not: the ratio per source, and the Parquet plan's peak RSS."""
    met = {f"{kind}_ratio": figures[f"{kind}_plan_vs_stock"] <= RATIO_BUDGET for kind in kinds}
    if "parquet" in kinds:
        met["parquet_rss"] = figures["parquet_peak_rss_mb"] <= RSS_BUDGET_MB
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--target", choices=["verifone", "sumup"], default="verifone")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per side and source")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--skip-csv", action="store_true", help="time Parquet only")
    parser.add_argument("--measure", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--stock", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:
        print(json.dumps(measure(args.measure, args.workdir / STATE, args.target)))
        return
    if args.stock is not None:
        print(json.dumps(measure_stock(args.stock, args.workdir / STOCK_SNAPSHOT)))
        return
    if args.generate_only:
        generate(args.rows, args.workdir, args.target, csv=not args.skip_csv)
        return
    if args.rows < 100 or args.repeat < 1:
        parser.error("--rows must be at least 100 and --repeat at least 1")
    own = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="custsync-bench-")) if own else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        for name in (STATE, PRISTINE_STATE):
            (workdir / name).unlink(missing_ok=True)
        load_before = [round(load, 2) for load in os.getloadavg()]
        started = time.perf_counter()
        # In a child of its own: this process stays small, so the measuring children it forks
        # inherit no gigabyte of generated data (which ru_maxrss would carry over exec).
        generating = [sys.executable, __file__, "--generate-only", "--rows", str(args.rows)]
        generating += ["--workdir", str(workdir), "--target", args.target]
        subprocess.run([*generating, *(["--skip-csv"] if args.skip_csv else [])], check=True)
        print(f"generated in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        kinds = ["parquet"] if args.skip_csv else ["parquet", "csv"]
        compared, runs = compare(workdir, args.target, args.repeat, kinds)
        parquet = runs["parquet/custsync"]
        steps = {
            name: round(_median([run["steps"][name] for run in parquet]), 3)
            for name in parquet[0]["steps"]
        }
        figures: dict[str, object] = {
            "rows": args.rows,
            "target": args.target,
            "repeat": args.repeat,
            **compared,
            "parquet_steps": steps,
            "plan_rows_stored": parquet[0].get("stored"),
            "actions": parquet[0].get("actions"),
            "stock_actions": runs["parquet/stock"][0].get("actions"),
            "budgets": {
                "rows": BUDGET_ROWS,
                "plan_vs_stock_max": RATIO_BUDGET,
                "parquet_peak_rss_mb_max": round(RSS_BUDGET_MB, 1),
            },
            # Set for 1M rows; at other sizes a guide only (fixed costs weigh differently).
            "budgets_met": _budgets(compared, kinds),
            "cpus": os.cpu_count(),
            "load_avg_before": load_before,
            "load_avg_after": [round(load, 2) for load in os.getloadavg()],
            "load_avg_1m": round(os.getloadavg()[0], 2),
        }
        print(json.dumps(figures))
    finally:
        if own:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
