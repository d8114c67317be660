"""Fleet throughput: N tenants on the sandbox, each key limited to R req/s, run by 1, 2, 4
workers; and tenants sharing one key (issue 13).

    .venv/bin/python tests/benchmarks/fleet.py [--tenants 8] [--rows 5000] [--rate 50]
        [--burst R] [--workers 1,2,4] [--shared 2] [--shared-rows 2500]
        [--worker-limit 0] [--query 1] [--poll 5]

One Prefect server and the sandbox (its per-credential token bucket: rate R, burst B; B = R by
default, the provider the shared limit is built for: docs/fleet.md, "Rate limits shared across
workers") serve every case; each case starts its own workers, writes a fresh tenants file (each
tenant's ``rate_limit`` = R, every row a create) and runs one fleet (the ``fleet-nightly``
deployment through ``custsync fleet --json``). Per case:

- aggregate calls/s as a ratio to the ceiling (tenants x R, one key each; R, one shared key),
  three times: while calls were made (first to last call, over every tenant's ``calls``
  table), over the whole fleet (``custsync fleet`` started to ended), and while every tenant
  was sending (``ratio_all_sending``); each tenant's own rate against R, and its pauses (no
  call for longer than 5 calls' spacing: between batches);
- where the rest of the fleet's time goes, from the Prefect API's state history of each
  child run (min, median and max over tenants): created -> Pending (a worker picked it up),
  Pending -> Running (its process started and imported the flow), Running -> first call
  (reading the extract, diffing, planning), last call -> the run's end; and the fleet's:
  ``custsync fleet`` -> its run created -> Running -> its first child created, the spread of
  the children's creation, the last child's end -> the fleet's end -> the command's exit;
  and how often the Prefect server's log says its database was locked;
- the 429 fraction, from the sandbox's counters;
- client CPU-seconds per call: every custsync/Prefect client process of the case (the
  workers and every flow run process they started, and ``custsync fleet``: all reaped
  children of this process), over the calls made; the Prefect server's and the sandbox's
  CPU beside it, and the machine's CPU busy fraction (is the CPU the limit?).

``--shared K`` adds a case: K tenants on one key, two workers; together they must stay <= R
with <= 1 % 429s. ``--worker-limit L`` starts each worker with ``--limit L``; ``--query Q``
with ``PREFECT_WORKER_QUERY_SECONDS=Q`` (how often it asks for runs: 1 s here, Prefect's
default 10 s). ``--poll S`` deploys the fleet with ``poll_interval_s = S`` (how often it polls
each child run; default 5 s). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import duckdb
import httpx
import psutil

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from connectors.sandbox.config import SandboxConfig  # noqa: E402
from connectors.sandbox.server import SandboxServer  # noqa: E402
from pipelines.fleet_demo import (  # noqa: E402
    POOL,
    WORKER_ENV,
    deploy,
    free_port,
    prefect_bin,
    process_group,
    server_command,
    wait_healthy,
    worker_command,
    write_fleet,
)


def _children_cpu() -> float:
    """CPU-seconds of every child this process has reaped (workers, with their own reaped
    flow run processes, and ``custsync fleet``)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _tree_cpu(pid: int) -> float:
    """CPU-seconds of a live process and its live descendants."""
    try:
        root = psutil.Process(pid)
        total = 0.0
        for proc in [root, *root.children(recursive=True)]:
            t = proc.cpu_times()
            total += t.user + t.system
    except psutil.Error:
        return 0.0
    return total


PAUSES = """
SELECT coalesce(sum(gap), 0) FROM (
    SELECT date_diff('millisecond', lag(started_at) OVER (ORDER BY started_at), started_at)
           / 1000.0 AS gap
    FROM calls)
WHERE gap > ?
"""


def _calls(
    folder: Path, rate: float
) -> tuple[dict[str, tuple[int, datetime, datetime]], list[float]]:
    """Per tenant state file: its calls, and its first and last call's start; and per tenant
    the seconds it sent nothing for longer than 5 calls' spacing (between batches: recording
    one, opening the next)."""
    out, pauses = {}, []
    for path in (folder / "state").glob("*.duckdb"):
        with duckdb.connect(str(path), read_only=True) as con:
            row = con.execute("SELECT count(*), min(started_at), max(started_at) FROM calls")
            n, first, last = row.fetchone() or (0, None, None)
            paused = con.execute(PAUSES, [5 / rate]).fetchone()
        if n:
            out[path.name.removesuffix("-sumup.duckdb")] = (int(n), first, last)
            pauses.append(float(paused[0]) if paused else 0.0)
    return out, pauses


def _all_sending(
    folder: Path, calls: dict[str, tuple[int, datetime, datetime]], ceiling: float
) -> float | None:
    """The aggregate rate, as a ratio to the ceiling, while every tenant was sending (from the
    last tenant's first call to the first tenant's last call)."""
    start = max(f for _, f, _ in calls.values())
    end = min(la for _, _, la in calls.values())
    span = (end - start).total_seconds()
    if span <= 0:
        return None
    n = 0
    for path in (folder / "state").glob("*.duckdb"):
        with duckdb.connect(str(path), read_only=True) as con:
            row = con.execute(
                "SELECT count(*) FROM calls WHERE started_at >= ? AND started_at < ?",
                [start, end],
            ).fetchone()
        n += int(row[0]) if row else 0
    return round(n / span / ceiling, 3)


async def _histories(api: str, fleet_run: str) -> dict[str, Any]:
    """State timestamps of the fleet run and each of its child runs, from the Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    def times(states: list[Any]) -> dict[str, datetime]:
        out: dict[str, datetime] = {}
        for s in sorted(states, key=lambda s: s.timestamp):
            out.setdefault(s.type.value, s.timestamp)
        return out

    fleet_run_id = UUID(fleet_run)
    with temporary_settings({PREFECT_API_URL: api}):
        async with get_client() as client:
            fleet = await client.read_flow_run_states(fleet_run_id)
            children = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[fleet_run_id])
                )
            )
            runs = {}
            for run in children:
                states = await client.read_flow_run_states(run.id)
                runs[run.name] = {"created": run.created, **times(states)}
    return {"fleet": times(fleet), "children": runs}


def _spread(values: list[float], digits: int = 1) -> dict[str, float]:
    if not values:
        return {}
    return {
        "min": round(min(values), digits),
        "median": round(statistics.median(values), digits),
        "max": round(max(values), digits),
    }


def _startup(
    history: dict[str, Any],
    calls: dict[str, tuple[int, datetime, datetime]],
    cli: tuple[float, float],
) -> Any:
    """Where the fleet's time goes besides the calls (seconds; over child runs: median and
    max). ``cli``: when ``custsync fleet`` started and ended (epoch seconds)."""
    picked, started, to_first, after_last = [], [], [], []
    for name, t in history["children"].items():
        tenant = name.removesuffix("-sumup")
        if "PENDING" in t:
            picked.append((t["PENDING"] - t["created"]).total_seconds())
        if "PENDING" in t and "RUNNING" in t:
            started.append((t["RUNNING"] - t["PENDING"]).total_seconds())
        if tenant in calls and "RUNNING" in t:
            to_first.append((calls[tenant][1] - t["RUNNING"]).total_seconds())
        if tenant in calls and "COMPLETED" in t:
            after_last.append((t["COMPLETED"] - calls[tenant][2]).total_seconds())
    fleet = history["fleet"]
    created = [t["created"] for t in history["children"].values()]
    out = {
        "created_to_pending_s": _spread(picked),
        "pending_to_running_s": _spread(started),
        "running_to_first_call_s": _spread(to_first),
        "last_call_to_completed_s": _spread(after_last),
    }
    if "RUNNING" in fleet and created:
        out["fleet_running_to_children_created_s"] = round(
            (min(created) - fleet["RUNNING"]).total_seconds(), 1
        )
        out["children_created_spread_s"] = round((max(created) - min(created)).total_seconds(), 1)
    if "PENDING" in fleet and "SCHEDULED" in fleet:
        out["fleet_created_to_running_s"] = round(
            (fleet.get("RUNNING", fleet["PENDING"]) - fleet["SCHEDULED"]).total_seconds(), 1
        )
    if "SCHEDULED" in fleet:
        out["cli_start_to_fleet_created_s"] = round(fleet["SCHEDULED"].timestamp() - cli[0], 1)
    ends = [t.get("COMPLETED", t.get("FAILED")) for t in history["children"].values()]
    fleet_end = fleet.get("COMPLETED", fleet.get("FAILED"))
    if fleet_end is not None and all(ends):
        out["last_child_end_to_fleet_end_s"] = round(
            (fleet_end - max(e for e in ends if e)).total_seconds(), 1
        )
        out["fleet_end_to_cli_exit_s"] = round(cli[1] - fleet_end.timestamp(), 1)
    return out


def _locked(log: Path) -> int:
    """How often the Prefect server's log says its SQLite database was locked (so far)."""
    try:
        return log.read_text(errors="replace").count("database is locked")
    except OSError:
        return 0


def _wait_for_workers(api: str, names: list[str], timeout_s: float = 120) -> None:
    """Until every named worker has polled the pool (its heartbeat is on the server): a
    nightly fleet meets workers that are already up, so their start is not the fleet's."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = httpx.post(f"{api}/work_pools/{POOL}/workers/filter", json={}, timeout=10)
        if answer.status_code == 200 and set(names) <= {w["name"] for w in answer.json()}:
            return
        time.sleep(0.5)
    raise RuntimeError(f"workers {names} never polled the pool")


def run_case(
    name: str,
    folder: Path,
    env: dict[str, str],
    sandbox: SandboxServer,
    server_pid: int,
    *,
    tenants: int,
    rows: int,
    rate: float,
    workers: int,
    one_key: bool,
    worker_limit: int,
    query_s: float,
    burst: int | None = None,
) -> dict[str, Any]:
    """One fleet run with ``workers`` workers; its figures."""
    folder.mkdir(parents=True)
    sandbox.admin.reset()
    keys = write_fleet(folder, tenants, rows, rate, sandbox, one_key=one_key, burst=burst)
    cpu0, server0, own0 = _children_cpu(), _tree_cpu(server_pid), time.process_time()
    psutil.cpu_percent()  # starts the machine's busy-fraction window
    started: list[int] = []
    with ExitStack() as stack:
        for n in range(workers):
            stack.enter_context(
                process_group(
                    worker_command(f"{name}-{n}", worker_limit or None),
                    {**env, **keys, **WORKER_ENV, "PREFECT_WORKER_QUERY_SECONDS": f"{query_s:g}"},
                    folder / f"worker-{n}.log",
                    started,
                )
            )
        _wait_for_workers(env["PREFECT_API_URL"], [f"{name}-{n}" for n in range(workers)])
        t0 = time.time()
        fleet = subprocess.run(
            [prefect_bin("custsync"), "fleet", str(folder / "tenants.toml"), "--json"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        t1 = time.time()
        wall = t1 - t0
        busy = psutil.cpu_percent() / 100
    client_cpu = _children_cpu() - cpu0  # the workers are reaped on leaving the stack
    server_cpu = _tree_cpu(server_pid) - server0
    sandbox_cpu = time.process_time() - own0  # the sandbox is this process's thread
    if fleet.returncode != 0:
        raise RuntimeError(f"{name}: custsync fleet exit {fleet.returncode}: {fleet.stderr}")
    summary = json.loads(fleet.stdout)
    statuses: dict[str, int] = {}
    for route in sandbox.admin.counters()["by_route"].values():
        for status, n in route.items():
            statuses[status] = statuses.get(status, 0) + n
    total = sum(statuses.values())
    per_tenant, pauses = _calls(folder, rate)
    calls = sum(n for n, _, _ in per_tenant.values())
    first = min(f for _, f, _ in per_tenant.values())
    last = max(la for _, _, la in per_tenant.values())
    span = (last - first).total_seconds()
    history = asyncio.run(_histories(env["PREFECT_API_URL"], summary["fleet_run_id"]))
    ceiling = rate if one_key else tenants * rate
    # Each tenant's own rate while it sent (its first to its last call), as a ratio to R.
    own = [
        (n - 1) / (la - f).total_seconds() / rate
        for n, f, la in per_tenant.values()
        if n > 1 and la > f
    ]
    per_s = calls / span if span else 0.0
    return {
        "case": name,
        "tenants": tenants,
        "workers": workers,
        "worker_limit": worker_limit or None,
        "worker_query_s": query_s,
        "one_key": one_key,
        "calls": calls,
        "ceiling_per_s": ceiling,
        "ratio_calls": round(per_s / ceiling, 3),
        "ratio_fleet": round(calls / wall / ceiling, 3),
        "calls_per_s": round(per_s, 1),
        "tenant_pauses_s": _spread(pauses),
        "tenant_ratio_to_r": _spread(own, 3),
        "ratio_all_sending": _all_sending(folder, per_tenant, ceiling),
        "first_to_last_call_s": round(span, 1),
        "fleet_wall_s": round(wall, 1),
        "http_429_fraction": round(statuses.get("429", 0) / total, 4) if total else 0.0,
        "client_cpu_s_per_call": round(client_cpu / calls, 5) if calls else None,
        "client_cpu_s": round(client_cpu, 1),
        "server_cpu_s": round(server_cpu, 1),
        "sandbox_cpu_s": round(sandbox_cpu, 1),
        "machine_busy": round(busy, 2),
        "cores": psutil.cpu_count(),
        "startup": _startup(history, per_tenant, (t0, t1)),
        "server_log_locked": _locked(folder.parent / "server.log"),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the cases; print one line each and a JSON object of them all."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=8)
    parser.add_argument("--rows", type=int, default=5000, help="changed rows (creates) per tenant")
    parser.add_argument("--rate", type=float, default=50.0, help="sandbox req/s per key: R")
    parser.add_argument("--burst", type=int, default=0, help="sandbox bucket per key (0: R)")
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    parser.add_argument("--shared", type=int, default=2, help="tenants on one key (0: skip)")
    parser.add_argument("--shared-rows", type=int, default=2500, help="rows per shared tenant")
    parser.add_argument("--worker-limit", type=int, default=0, help="each worker's --limit")
    parser.add_argument("--poll", type=float, default=0, help="fleet poll_interval_s (0: its)")
    parser.add_argument(
        "--query", type=float, default=1.0, help="workers' PREFECT_WORKER_QUERY_SECONDS"
    )
    parser.add_argument(
        "--declare-burst",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="declare the sandbox's burst as the tenants' rate_burst (--no-declare-burst: not)",
    )
    args = parser.parse_args(argv)
    args.burst = args.burst or math.ceil(args.rate)
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
        server = stack.enter_context(
            process_group(server_command(port), server_env, root / "server.log", [])
        )
        wait_healthy(api, root / "server.log")
        sandbox = stack.enter_context(
            SandboxServer(SandboxConfig(rate_limit=args.rate, burst=args.burst))
        )
        deploy(env)
        if args.poll:
            _set_poll(api, args.poll)
        counts = [int(w) for w in args.workers.split(",") if w]
        # A count may repeat (``--workers 2,2``: the same case twice): names stay unique.
        cases = [(f"w{w}" + (f"-{i}" if counts.count(w) > 1 else ""), args.tenants, args.rows,
                  w, False) for i, w in enumerate(counts)]  # fmt: skip
        if args.shared:
            cases.append(("shared", args.shared, args.shared_rows, 2, True))
        for name, tenants, rows, workers, one_key in cases:
            figures = run_case(
                name, root / name, env, sandbox, server.pid, tenants=tenants, rows=rows,
                rate=args.rate, workers=workers, one_key=one_key,
                worker_limit=args.worker_limit, query_s=args.query,
                burst=args.burst if args.declare_burst else None,
            )  # fmt: skip
            print(json.dumps(figures), flush=True)
            results.append(figures)
    settings = {"rows": args.rows, "rate": args.rate, "burst": args.burst, "poll": args.poll,
                "declare_burst": args.declare_burst}  # fmt: skip
    print(json.dumps({**settings, "query": args.query, "cases": results}))
    return 0


def _set_poll(api: str, seconds: float) -> None:
    """Give the fleet-nightly deployment ``poll_interval_s = seconds``."""

    async def main() -> None:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.actions import DeploymentUpdate
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: api}):
            async with get_client() as client:
                dep = await client.read_deployment_by_name("custsync-fleet/fleet-nightly")
                params = {**dep.parameters, "poll_interval_s": seconds}
                await client.update_deployment(dep.id, DeploymentUpdate(parameters=params))

    asyncio.run(main())


if __name__ == "__main__":
    sys.exit(main())
