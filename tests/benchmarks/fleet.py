"""Fleet throughput: N tenants on the sandbox, each key limited to R req/s, run by 1, 2, 4
workers; and tenants sharing one key (issue 13).

    .venv/bin/python tests/benchmarks/fleet.py [--tenants 8] [--rows 20] [--rate 5]
        [--workers 1,2,4] [--shared 2]

One Prefect server and the sandbox (its per-credential token bucket: rate R, burst 5) serve
every case; each case starts its own workers, writes a fresh tenants file (each tenant's
``rate_limit`` = R) and runs one fleet (the ``fleet-nightly`` deployment through ``custsync
fleet``). Per case:

- aggregate calls/s while calls were made (first to last call, over every tenant's ``calls``
  table) and its ratio to the ceiling, tenants x R (one key each) or R (one shared key);
- the 429 fraction, from the sandbox's counters;
- client CPU-seconds per call: the workers' processes and every flow run they started (their
  reaped children), over the calls made. Most of it is Prefect's import per flow run process,
  so it falls as rows grow.

``--shared K`` adds a case: K tenants on one key, two workers; together they must stay <= R
with <= 1 % 429s. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import duckdb
import psutil

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from connectors.sandbox.config import SandboxConfig  # noqa: E402
from connectors.sandbox.server import SandboxServer  # noqa: E402
from pipelines.fleet_demo import (  # noqa: E402
    POOL,
    check_run,
    free_port,
    prefect_bin,
    process_group,
    wait_healthy,
    write_fleet,
)


def _cpu(process: subprocess.Popen[bytes]) -> float:
    """CPU-seconds of a worker: itself, its live children and the children it reaped."""
    try:
        root = psutil.Process(process.pid)
        t = root.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
        for child in root.children(recursive=True):
            ct = child.cpu_times()
            total += ct.user + ct.system
    except psutil.Error:
        return 0.0
    return total


def _calls(folder: Path) -> tuple[int, float]:
    """Calls over every state file, and the seconds from the first to the last."""
    times = []
    for path in (folder / "state").glob("*.duckdb"):
        with duckdb.connect(str(path), read_only=True) as con:
            times += [r[0] for r in con.execute("SELECT started_at FROM calls").fetchall()]
    if len(times) < 2:
        return len(times), 0.0
    return len(times), (max(times) - min(times)).total_seconds()


def run_case(
    name: str,
    folder: Path,
    env: dict[str, str],
    sandbox: SandboxServer,
    *,
    tenants: int,
    rows: int,
    rate: float,
    workers: int,
    one_key: bool,
) -> dict[str, Any]:
    """One fleet run with ``workers`` workers; its figures."""
    folder.mkdir(parents=True)
    sandbox.admin.reset()
    keys = write_fleet(folder, tenants, rows, rate, sandbox, one_key=one_key)
    started: list[int] = []
    with ExitStack() as stack:
        procs = [
            stack.enter_context(
                process_group(
                    [prefect_bin("prefect"), "worker", "start", "--pool", POOL,
                     "--type", "process", "--name", f"{name}-{n}"],
                    {**env, **keys, "PREFECT_WORKER_QUERY_SECONDS": "1"},
                    folder / f"worker-{n}.log",
                    started,
                )
            )
            for n in range(workers)
        ]  # fmt: skip
        fleet = subprocess.run(
            [prefect_bin("custsync"), "fleet", str(folder / "tenants.toml"), "--json"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        cpu = sum(_cpu(p) for p in procs)
    if fleet.returncode != 0:
        raise RuntimeError(f"{name}: custsync fleet exit {fleet.returncode}: {fleet.stderr}")
    statuses: dict[str, int] = {}
    for route in sandbox.admin.counters()["by_route"].values():
        for status, n in route.items():
            statuses[status] = statuses.get(status, 0) + n
    total = sum(statuses.values())
    calls, span = _calls(folder)
    ceiling = rate if one_key else tenants * rate
    per_s = calls / span if span else 0.0
    return {
        "case": name,
        "tenants": tenants,
        "workers": workers,
        "one_key": one_key,
        "calls": calls,
        "calls_per_s": round(per_s, 2),
        "ceiling_per_s": ceiling,
        "ratio_to_ceiling": round(per_s / ceiling, 3),
        "http_429_fraction": round(statuses.get("429", 0) / total, 4) if total else 0.0,
        "client_cpu_s_per_call": round(cpu / calls, 4) if calls else None,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the cases; print one line each and a JSON object of them all."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=8)
    parser.add_argument("--rows", type=int, default=20, help="changed rows (creates) per tenant")
    parser.add_argument("--rate", type=float, default=5.0, help="sandbox req/s per key: R")
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    parser.add_argument("--shared", type=int, default=2, help="tenants on one key (0: skip)")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="custsync-fleet-bench-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        port = free_port()
        api = f"http://127.0.0.1:{port}/api"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTSYNC_", "PREFECT_"))}
        env = {
            **base,
            "PREFECT_API_URL": api,
            "PREFECT_HOME": str(root / "prefect-home"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "CUSTSYNC_CONFIG": str(root / "absent.toml"),
        }
        server_env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
        stack.enter_context(
            process_group(
                [prefect_bin("prefect"), "server", "start", "--host", "127.0.0.1", "--port",
                 str(port), "--no-services", "--no-ui", "--analytics-off"],
                server_env, root / "server.log", [],
            )
        )  # fmt: skip
        wait_healthy(api, root / "server.log")
        sandbox = stack.enter_context(SandboxServer(SandboxConfig(rate_limit=args.rate, burst=5)))
        check_run([prefect_bin("prefect"), "work-pool", "create", POOL, "--type", "process"], env)
        check_run(
            [prefect_bin("prefect"), "--no-prompt", "deploy", "--name", "tenant-sync",
             "--name", "fleet-nightly"],
            env,
        )  # fmt: skip
        cases = [(f"w{w}", args.tenants, int(w), False) for w in args.workers.split(",") if w]
        if args.shared:
            cases.append(("shared", args.shared, 2, True))
        for name, tenants, workers, one_key in cases:
            figures = run_case(
                name, root / name, env, sandbox, tenants=tenants, rows=args.rows,
                rate=args.rate, workers=workers, one_key=one_key,
            )  # fmt: skip
            print(json.dumps(figures), flush=True)
            results.append(figures)
    print(json.dumps({"rows": args.rows, "rate": args.rate, "cases": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
