"""CLI overhead against ``python -c "import prefect"``, measured in one run (issue 10).

    python tests/benchmarks/cli_overhead.py [--repeat 3]

Times, in fresh processes, interleaved round by round:

- ``import_prefect``: ``python -c "import prefect"`` (the baseline: what loading the
  orchestrator alone costs on this machine today);
- ``preflight_refusal``: ``custsync sync data/customers.csv --target sumup --mapping BAD``
  (a broken column mapping: refused by the preflight, before Prefect is imported);
- ``dry_run_no_server``: ``custsync sync data/customers.csv --target sumup --dry-run`` with no
  ``PREFECT_API_URL`` (the stages run without Prefect: :mod:`pipelines.local`);
- ``noop_100k_server``: ``custsync sync today.parquet --target verifone`` (``--rows``, default
  100,000 rows) whose snapshot already holds exactly those rows (seeded, untimed: 0 actions,
  0 calls), with ``PREFECT_API_URL`` set to a ``prefect server`` started for the benchmark
  (:class:`tests.e2e.prefect_server.PrefectServer`), so the run is a Prefect flow run.

The figures are the median wall seconds and their ratios to ``import_prefect``. The last line
is one JSON object. Issue 10's goals: ``dry_run_no_server`` ≤ 1.0×, a refusal well under, and
``noop_100k_server`` ≤ 2.0×.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.plan_throughput import customers  # noqa: E402
from tests.e2e.prefect_server import PrefectServer  # noqa: E402

CLI = [sys.executable, "-c", "import sys; from pipelines.cli import main; main(sys.argv[1:])"]


def _timed(argv: list[str], env: dict[str, str], expect: int, cwd: Path = ROOT) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - started
    if done.returncode != expect:
        raise SystemExit(f"{argv[-6:]} exited {done.returncode}, not {expect}: {done.stderr}")
    if "--json" in argv:  # the no-op run: nothing planned, nothing sent
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        planned = sum(
            v["planned"] for k, v in summary.items() if isinstance(v, dict) and k != "unchanged"
        )
        if summary["calls"] or planned:
            raise SystemExit(f"not a no-op: {planned} planned, {summary['calls']} calls")
    return elapsed


def noop_extract(rows: int, work: Path) -> tuple[Path, Path]:
    """A ``rows``-row Parquet extract and a state file whose Verifone snapshot holds exactly
    those rows (seeded directly, as a previous run would have left it: no calls)."""
    import polars as pl

    from pipelines.state.store import StateStore
    from transforms.mapping import mapped_frame

    today = pl.LazyFrame({"i": pl.int_range(0, rows, eager=True, dtype=pl.Int64)}).select(
        customers(pl.col("i"), pl.lit(0))
    )
    extract, seed, state = work / "today.parquet", work / "seed.parquet", work / "noop.duckdb"
    today.sink_parquet(extract)
    mapped_frame(today, "verifone", constants={"entity_id": "bench-entity"}).sink_parquet(seed)
    with StateStore(state) as store:
        store.con.execute(
            "INSERT INTO snapshot (target, external_id, remote_id, content_hash, payload, status,"
            " synced_at, run_id, content_key) SELECT 'verifone', external_id, coalesce(remote_id,"
            " 'uuid-' || external_id), content_hash, payload, status, now(), 'seed', content_key"
            " FROM read_parquet($seed)",
            {"seed": str(seed)},
        ).fetchall()
        store.con.execute("CHECKPOINT").fetchall()
    seed.unlink()
    return extract, state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the no-op extract")
    parser.add_argument(
        "--before",
        type=Path,
        help="another source tree of custsync (e.g. `git archive` of an older commit): its "
        "no-op run is timed too, as noop_100k_server_before, for a before/after in one run",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="custsync-cli-overhead-"))
    server = PrefectServer(work / "prefect-server").start()
    try:
        _measure(args, work, server)
    finally:
        server.stop()


def _measure(args: argparse.Namespace, work: Path, server: PrefectServer) -> None:
    noop, noop_state = noop_extract(args.rows, work)
    bad = work / "bad.toml"
    bad.write_text("[columns\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTSYNC_", "PREFECT_API"))}
    env.update(
        CUSTSYNC_STATE=str(work / "state.duckdb"),
        CUSTSYNC_SUMUP_API_KEY="sup_sk_sandbox",
        PREFECT_HOME=str(work / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    extract = str(ROOT / "data" / "customers.csv")
    cases = {
        "import_prefect": ([sys.executable, "-c", "import prefect"], 0),
        "preflight_refusal": ([*CLI, "sync", extract, "-t", "sumup", "--mapping", str(bad)], 2),
        "dry_run_no_server": ([*CLI, "sync", extract, "-t", "sumup", "--dry-run"], 0),
        "noop_100k_server": ([*CLI, "sync", str(noop), "-t", "verifone", "--json"], 0),
    }
    server.wait()
    cwds = dict.fromkeys(cases, ROOT)
    if args.before is not None:
        cases["noop_100k_server_before"] = cases["noop_100k_server"]
        cwds["noop_100k_server_before"] = args.before.resolve()  # `-c` imports from the cwd
    envs = {name: env for name in cases}
    envs["noop_100k_server"] = envs["noop_100k_server_before"] = {
        **env,
        "PREFECT_API_URL": server.api_url,
        "CUSTSYNC_STATE": str(noop_state),
        "CUSTSYNC_VERIFONE_TOKEN": "bench-token",
        "CUSTSYNC_VERIFONE_ENTITY_ID": "bench-entity",
        # Nothing is sent: a port nobody listens on proves it (a call would fail the run).
        "CUSTSYNC_VERIFONE_BASE_URL": "http://127.0.0.1:9",
    }
    for name in cases:
        if name.startswith(("dry_run", "noop")):  # warm: page cache, state file, the API
            _timed(cases[name][0], envs[name], 0, cwds[name])
    times: dict[str, list[float]] = {name: [] for name in cases}
    load_before = os.getloadavg()[0]
    for round_no in range(args.repeat):
        order = list(cases) if round_no % 2 == 0 else list(reversed(cases))
        for name in order:
            argv, expect = cases[name]
            times[name].append(_timed(argv, envs[name], expect, cwds[name]))
    median = {name: statistics.median(values) for name, values in times.items()}
    base = median["import_prefect"]
    result = {
        **{f"{name}_s": round(value, 3) for name, value in median.items()},
        "preflight_refusal_vs_import_prefect": round(median["preflight_refusal"] / base, 2),
        "dry_run_no_server_vs_import_prefect": round(median["dry_run_no_server"] / base, 2),
        **{
            f"{name}_vs_import_prefect": round(median[name] / base, 2)
            for name in median
            if name.startswith("noop")
        },
        "noop_rows": args.rows,
        "runs": {name: [round(v, 3) for v in values] for name, values in times.items()},
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }
    for name, value in median.items():
        print(f"{name:>20}: {value:6.2f} s  ({value / base:4.2f}x import prefect)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
