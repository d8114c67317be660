"""``make fleet-demo``: a fleet of merchants synced on real parts, then audited across tenants.

Starts, under a temporary folder: a Prefect server on a free port, a ``custsync`` process work
pool with the ``tenant-sync`` and ``fleet-nightly`` deployments, two workers, and the sandbox
holding N SumUp merchants (each its own API key and account, each key rate-limited). Writes a
tenants file and an extract per merchant, runs ``custsync fleet`` once (the real command, in
its own process), prints its summary and a cross-tenant audit query over the Parquet audit the
tenant runs published (:mod:`pipelines.state.publish`), and stops everything it started. Exit
code: the fleet's.

    python -m pipelines.fleet_demo [--merchants 8] [--rows 20] [--rate 5] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import polars as pl

from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.server import SandboxServer

REPO = Path(__file__).resolve().parents[1]
"""The project folder: ``prefect.yaml`` is there, and the workers run from it."""
POOL = "custsync"


def _say(text: str) -> None:
    print(f"==> {text}", flush=True)


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def prefect_bin(name: str) -> str:
    """A console script of this interpreter's environment (``prefect``, ``custsync``)."""
    return str(Path(sys.executable).with_name(name))


@contextmanager
def process_group(
    command: list[str], env: dict[str, str], log: Path, started: list[int]
) -> Iterator[subprocess.Popen[bytes]]:
    """A child in its own process group, stopped (the whole group) on the way out."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started.append(process.pid)
    try:
        yield process
    finally:
        stop_group(process)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop a child started in its own process group, the whole group: SIGTERM, then SIGKILL
    after 20 s (a Prefect worker forwards the signal to the flow runs it started)."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def wait_healthy(url: str, log: Path, timeout_s: float = 180.0) -> None:
    """Wait until the Prefect API at ``url`` answers its health check."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the Prefect server did not start:\n{log.read_text()[-2000:]}")


def check_run(command: list[str], env: dict[str, str]) -> None:
    """Run ``command`` from the project folder; raise with its output if it fails."""
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[1:])} failed:\n{done.stdout[-2000:]}{done.stderr}")


def server_command(port: int) -> list[str]:
    """``prefect server start`` on loopback ``port``: no UI, no services, no analytics."""
    return [
        prefect_bin("prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port),
        "--no-services", "--no-ui", "--analytics-off",
    ]  # fmt: skip


def deploy(env: dict[str, str]) -> None:
    """The ``custsync`` process work pool and the ``tenant-sync`` and ``fleet-nightly``
    deployments (``prefect.yaml``) on the server ``env`` names."""
    check_run([prefect_bin("prefect"), "work-pool", "create", POOL, "--type", "process"], env)
    names = ["--name", "tenant-sync", "--name", "fleet-nightly"]
    check_run([prefect_bin("prefect"), "--no-prompt", "deploy", *names], env)


def worker_command(name: str, limit: int | None = None) -> list[str]:
    """``prefect worker start`` on the pool, named ``name``; ``limit``: its most flow runs at
    once (none: as many as it is given)."""
    command = [prefect_bin("prefect"), "worker", "start", "--pool", POOL, "--type", "process"]
    return command + ["--name", name] + ([] if limit is None else ["--limit", str(limit)])


WORKER_ENV = {"PREFECT_WORKER_QUERY_SECONDS": "1"}
"""A worker polls for runs every second (Prefect's default: 10 s)."""


def _extract(path: Path, merchant: int, rows: int) -> None:
    """``rows`` valid canonical customers of one merchant (ids never collide across them)."""
    records = [
        {
            "external_id": f"M{merchant:02d}-{i:05d}",
            "status": "active",
            "first_name": f"Ann{i % 97}",
            "last_name": f"Smith{merchant}",
            "email": f"c{i}.m{merchant}@example.com",
            "phone": f"+31 6 {20000000 + merchant * 100000 + i}",
            "billing_city": "Utrecht",
            "billing_postal_code": f"{3500 + i % 400:04d}AB",
            "billing_country_code": "NL",
        }
        for i in range(rows)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(records, schema={k: pl.String for k in records[0]}).write_csv(path)


def write_fleet(
    folder: Path,
    merchants: int,
    rows: int,
    rate: float,
    sandbox: SandboxServer,
    *,
    one_key: bool = False,
    burst: int | None = None,
) -> dict[str, str]:
    """The tenants file, extracts and sandbox accounts of ``merchants`` SumUp merchants;
    returns the variables the workers need (each merchant's key under its own name, or with
    ``one_key`` one key all of them share, one account and one bucket). ``burst``: the
    sandbox bucket's burst, declared as every tenant's ``rate_burst``."""
    lines = [
        'state_dir = "state"',
        "",
        "[defaults]",
        'mode = "upsert"',
        f"rate_limit = {rate}",
        *([f"rate_burst = {burst}"] if burst is not None else []),
        "",
        "[defaults.sumup]",
        f'base_url = "{sandbox.base_url}"',
    ]
    env: dict[str, str] = {}
    keys = []
    for m in range(1, merchants + 1):
        tenant, variable = f"merchant-{m:02d}", f"MERCHANT_{m:02d}_SUMUP_KEY"
        if one_key:
            variable = "MERCHANTS_SHARED_SUMUP_KEY"
        if variable not in env:
            env[variable] = f"sup_sk_demo_{m:02d}_" + os.urandom(6).hex()
            keys.append({"api_key": env[variable], "merchant": tenant})
        _extract(folder / "landing" / tenant / "customers.csv", m, rows)
        lines += [
            "",
            "[[tenants]]",
            f'id = "{tenant}"',
            f'extract = "landing/{tenant}/*.csv"',
            "[tenants.sumup]",
            f'api_key = "{variable}"',
        ]
    sandbox.admin.seed_oauth(api_keys=keys)
    (folder / "tenants.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return env


def _demo(tmp: Path, args: argparse.Namespace, stack: ExitStack, started: list[int]) -> int:
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTSYNC_", "PREFECT_"))}
    env = {
        **base,
        "PREFECT_API_URL": api,
        "PREFECT_HOME": str(tmp / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "CUSTSYNC_CONFIG": str(tmp / "absent.toml"),
    }
    _say(f"Prefect server on {api}")
    server_env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    server_log = tmp / "server.log"
    stack.enter_context(process_group(server_command(port), server_env, server_log, started))
    wait_healthy(api, server_log)
    _say(f"sandbox: {args.merchants} SumUp merchants, each key limited to {args.rate:g} req/s")
    sandbox = stack.enter_context(SandboxServer(SandboxConfig(rate_limit=args.rate, burst=5)))
    keys = write_fleet(tmp, args.merchants, args.rows, args.rate, sandbox)
    _say(f"work pool {POOL!r}, deployments tenant-sync and fleet-nightly")
    deploy(env)
    worker_env = {**env, **keys, **WORKER_ENV}
    for n in range(1, args.workers + 1):
        stack.enter_context(
            process_group(
                worker_command(f"demo-worker-{n}"),
                worker_env,
                tmp / f"worker-{n}.log",
                started,
            )
        )
    _say(f"{args.workers} workers; custsync fleet {tmp / 'tenants.toml'}")
    fleet = subprocess.run(
        [prefect_bin("custsync"), "fleet", str(tmp / "tenants.toml")],
        cwd=REPO,
        env=env,
        text=True,
        capture_output=True,
        timeout=900,
    )
    print(fleet.stdout, end="", flush=True)
    print(fleet.stderr, end="", file=sys.stderr, flush=True)
    _say(f"custsync fleet exit code {fleet.returncode}")
    _print_audit(tmp / "tenants.toml")
    counters = sandbox.admin.counters()["by_route"]
    by_status: dict[str, int] = {}
    for route in counters.values():
        for status, count in route.items():
            by_status[status] = by_status.get(status, 0) + count
    _say(f"sandbox answers by status: {dict(sorted(by_status.items()))}")
    _say(
        "stopping the workers, the server and the sandbox (pids "
        + ", ".join(map(str, started))
        + ")"
    )
    return fleet.returncode


def _print_audit(tenants_file: Path) -> None:
    from pipelines.fleet_audit import fleet_audit
    from pipelines.tenants import load_tenants

    audit = fleet_audit(load_tenants(tenants_file), published=True)
    _say("cross-tenant audit: the Parquet audit the tenant runs published (custsync fleet --audit)")
    with pl.Config(tbl_rows=100, tbl_cols=20, tbl_width_chars=200, tbl_hide_dataframe_shape=True):
        print(audit.runs.drop("run_id", "started_at") if audit.runs.height else "(no runs)")
    if audit.skipped:
        _say(f"not published yet: {', '.join(audit.skipped)}")
    if audit.runs.height:
        total = audit.runs.select(pl.col("succeeded", "calls", "http_429").sum()).row(0)
        _say(f"all tenants: {total[0]} succeeded, {total[1]} calls, {total[2]} answered 429")


def main(argv: list[str] | None = None) -> int:
    """Run the demo; the exit code is the fleet's."""
    parser = argparse.ArgumentParser(prog="fleet_demo", description="custsync fleet demo")
    parser.add_argument("--merchants", type=int, default=8)
    parser.add_argument("--rows", type=int, default=20, help="customers per merchant")
    parser.add_argument("--rate", type=float, default=5.0, help="the sandbox's req/s per key")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    started: list[int] = []
    with tempfile.TemporaryDirectory(prefix="custsync-fleet-demo-") as tmp, ExitStack() as stack:
        code = _demo(Path(tmp), args, stack, started)
    return code


if __name__ == "__main__":
    sys.exit(main())
