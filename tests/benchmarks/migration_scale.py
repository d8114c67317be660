"""Migration scale: memory and CPU of a one-off migration of many customers (issue 14).

    .venv/bin/python tests/benchmarks/migration_scale.py [--sizes 50000,400000]
        [--modes local,prefect] [--updated 0.05] [--concurrency 16] [--batch-size 500]
        [--profile DIR]

1. Starts the sandbox in its own process, unthrottled, and measures the connectors' own
   unthrottled calls/s there (``connector_throughput.py``'s measurement: the baseline).
2. For each size N and each mode (``local``: no Prefect server, the CLI runs the stages itself;
   ``prefect``: ``PREFECT_API_URL`` set to a Prefect server started once, as a deployment has):
   a fresh state file and an empty sandbox; ``custsync sync`` of N customers (all creates),
   then of the same extract with ``--updated`` of them changed (bulk fetch + merge + post).
   Each run is a fresh ``custsync`` process, watched from outside: wall, calls/s, CPU seconds
   per record and peak RSS of the process and all its children, state-file bytes per customer.
   Before them, a dry run of the migration on a state file of its own: the plan stage's
   peak RSS alone (``plan_stage``).
3. ``--profile DIR``: each run under pyinstrument (its HTML and text in DIR); slower, no figures.

Prints progress on stderr; the last line of stdout is one JSON object (ratios first).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import polars as pl
import psutil

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from connector_throughput import unthrottled, vf_payload  # noqa: E402
from nightly_job import CREDS, start_prefect_server  # noqa: E402

from connectors.sandbox.config import SandboxConfig  # noqa: E402
from connectors.sandbox.server import SandboxProcess  # noqa: E402


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def extracts(rows: int, updated: float, out: Path) -> tuple[Path, Path]:
    """The migration's extract and the same with ``updated`` of the rows changed (phone)."""
    i = pl.col("i")
    company = (i % 5) == 0
    first = (
        pl.DataFrame({"i": pl.int_range(0, rows, eager=True)})
        .select(
            external_id=pl.format("CRM-{}", i.cast(pl.String).str.zfill(8)),
            status=pl.lit("active"),
            first_name=pl.when(company).then(None).otherwise(pl.format("Ann{}", i % 97)),
            last_name=pl.when(company).then(None).otherwise(pl.format("Smith{}", i)),
            company_name=pl.when(company).then(pl.format("Acme {} B.V.", i)).otherwise(None),
            email=pl.format("user{}@example.com", i),
            phone=pl.format("+31 6 {}", i + 10_000_000),
            billing_city=pl.lit("Utrecht"),
            billing_postal_code=pl.format("{}AB", i % 9000 + 1000),
            billing_country_code=pl.lit("NL"),
        )
        .with_columns(pl.all().cast(pl.String))
    )
    step = max(round(1 / updated), 1)
    second = first.with_columns(
        phone=pl.when(pl.int_range(0, rows) % step == 0)
        .then(pl.format("+31 20 {}", pl.int_range(0, rows) + 5_000_000))
        .otherwise(pl.col("phone"))
    )
    p1, p2 = out / f"create-{rows}.parquet", out / f"update-{rows}.parquet"
    first.write_parquet(p1)
    second.write_parquet(p2)
    return p1, p2


class Watch:
    """Samples the RSS of a process and all its children (summed) until it ends."""

    def __init__(self, pid: int, every_s: float = 0.1) -> None:
        self.peak = 0
        self._proc = psutil.Process(pid)
        self._every = every_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._done.is_set():
            try:
                procs = [self._proc, *self._proc.children(recursive=True)]
                total = 0
                for p in procs:
                    with contextlib.suppress(psutil.Error):  # ended meanwhile
                        total += p.memory_info().rss
                self.peak = max(self.peak, total)
            except psutil.Error:
                return
            self._done.wait(self._every)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def custsync(
    args: list[str], env: dict[str, str], profile: Path | None = None
) -> tuple[dict[str, Any], dict[str, float]]:
    """Run ``custsync`` as a fresh process; its JSON summary, wall, CPU and peak RSS."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = [sys.executable, "-m", "pipelines.cli", *args, "--json"]
    if profile is not None:
        cmd = [
            sys.executable,
            "-m",
            "pyinstrument",
            "-r",
            "text",
            "-o",
            str(profile),
            "--show-all",
            "-m",
            "pipelines.cli",
            *args,
            "--json",
        ]
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    watch = Watch(proc.pid)
    out, err = proc.communicate()
    wall = time.perf_counter() - started
    watch.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"custsync failed ({proc.returncode}): {err[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    summary = json.loads(out.strip().splitlines()[-1])
    return summary, {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": watch.peak / 2**20}


def one_size(
    rows: int,
    mode: str,
    base_url: str,
    work: Path,
    env: dict[str, str],
    updated: float,
    concurrency: int,
    batch_size: int,
    profile: Path | None,
) -> dict[str, Any]:
    """Create ``rows`` customers, then update ``updated`` of them; the figures of both runs."""
    create_path, update_path = extracts(rows, updated, work)
    state = work / f"state-{mode}-{rows}.duckdb"
    run_env = {**env, "CUSTSYNC_STATE": str(state)}
    common = ["--target", "verifone", "--mode", "mirror", "--rate", "0"]
    common += ["--concurrency", str(concurrency), "--batch-size", str(batch_size)]
    out: dict[str, Any] = {}
    # The plan stage alone: a dry run of the migration on a state file of its own (its plan
    # would count in the real one's bytes), watched the same way.
    dry_state = work / f"state-{mode}-{rows}-dry.duckdb"
    _summary, dry = custsync(
        ["sync", str(create_path), *common, "--dry-run"], {**env, "CUSTSYNC_STATE": str(dry_state)}
    )
    dry_state.unlink()
    out["plan_stage"] = {
        "peak_rss_mb": round(dry["peak_rss_mb"], 1),
        "wall_s": round(dry["wall_s"], 2),
    }
    log(f"  {mode} {rows} plan stage (dry run): {json.dumps(out['plan_stage'])}")
    for phase, path in (("create", create_path), ("update", update_path)):
        prof = profile / f"{mode}-{rows}-{phase}.txt" if profile is not None else None
        summary, m = custsync(["sync", str(path), *common], run_env, prof)
        records = summary[phase]["succeeded"]
        calls = summary["calls"]
        size = state.stat().st_size
        figures = {
            "records": records,
            "failed": summary[phase]["failed"],
            "calls": calls,
            "wall_s": round(m["wall_s"], 2),
            "calls_per_s_wall": round(calls / m["wall_s"], 1),
            "calls_per_s_execute": summary.get("rate_per_s", 0.0),
            "cpu_s": round(m["cpu_s"], 2),
            "cpu_ms_per_record": round(m["cpu_s"] * 1000 / max(records, 1), 3),
            "peak_rss_mb": round(m["peak_rss_mb"], 1),
            "state_bytes": size,
            "state_bytes_per_customer": round(size / rows, 1),
        }
        log(f"  {mode} {rows} {phase}: {json.dumps(figures)}")
        out[phase] = figures
    state.unlink()
    return out


def ratios(runs: dict[int, Any], small: int, large: int, connector_cps: float) -> dict[str, float]:
    """One mode's ratios: peak RSS at the largest size over the smallest (the create run, and
    the plan stage alone), and calls/s at the largest size over the connector's."""
    at_large, at_small = runs[large], runs[small]

    def vs(phase: str, figure: str) -> float:
        return round(at_large[phase][figure] / connector_cps, 3)

    def rss(stage: str) -> float:
        return round(at_large[stage]["peak_rss_mb"] / at_small[stage]["peak_rss_mb"], 3)

    return {
        f"rss_ratio_{large // 1000}k_vs_{small // 1000}k": rss("create"),
        f"plan_rss_ratio_{large // 1000}k_vs_{small // 1000}k": rss("plan_stage"),
        f"update_rss_ratio_{large // 1000}k_vs_{small // 1000}k": rss("update"),
        "create_vs_connector": vs("create", "calls_per_s_execute"),
        "update_vs_connector": vs("update", "calls_per_s_execute"),
        "create_wall_vs_connector": vs("create", "calls_per_s_wall"),
        "update_wall_vs_connector": vs("update", "calls_per_s_wall"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50000,400000", help="customers, comma-separated")
    parser.add_argument("--modes", default="local,prefect", help="local and/or prefect")
    parser.add_argument("--updated", type=float, default=0.05, help="fraction updated")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--batch-size", type=int, default=500, help="custsync's --batch-size (default: its own)"
    )
    parser.add_argument("--baseline-calls", type=int, default=5_000)
    parser.add_argument("--profile", type=Path, default=None, help="pyinstrument text into DIR")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    modes = [m for m in args.modes.split(",") if m]
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="custsync-scale-"))
    load_before = os.getloadavg()
    results: dict[str, dict[int, Any]] = {m: {} for m in modes}
    with SandboxProcess(SandboxConfig(rate_limit=None)) as sandbox:
        seeded = sandbox.admin.seed_verifone([vf_payload(0)])
        log(f"baseline: the connector unthrottled, {args.baseline_calls} GETs, 2 rounds")
        baseline = unthrottled(sandbox.base_url, seeded[0]["id"], args.baseline_calls, 2)
        connector_cps = baseline["connector"]["calls_per_s"]
        env = {
            **CREDS,
            "CUSTSYNC_VERIFONE_BASE_URL": sandbox.base_url,
            "CUSTSYNC_CONFIG": str(work / "none.toml"),
            "PREFECT_HOME": str(work / "prefect-client"),
        }
        server = None
        try:
            for mode in modes:
                mode_env = dict(env)
                if mode == "prefect":
                    server, api_url = start_prefect_server(work / "prefect-server")
                    mode_env["PREFECT_API_URL"] = api_url
                for rows in sizes:
                    sandbox.admin.reset()
                    log(f"{mode}: {rows} customers")
                    results[mode][rows] = one_size(
                        rows,
                        mode,
                        sandbox.base_url,
                        work,
                        mode_env,
                        args.updated,
                        args.concurrency,
                        args.batch_size,
                        args.profile,
                    )
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=30)

    first_mode = modes[0]
    small, large = min(sizes), max(sizes)
    by_mode = {m: ratios(results[m], small, large, connector_cps) for m in modes}
    figures: dict[str, Any] = {
        **by_mode[first_mode],
        "ratios_by_mode": by_mode,
        "connector_calls_per_s": round(connector_cps, 1),
        "connector_cpu_ms_per_call": round(baseline["connector"]["cpu_ms_per_call"], 4),
        "ratios_from": f"{first_mode} mode, {large} customers (ratios_by_mode: each mode's)",
        "runs": {m: {str(k): v for k, v in r.items()} for m, r in results.items()},
        "concurrency": args.concurrency,
        "batch_size": args.batch_size,
        "cpus": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
