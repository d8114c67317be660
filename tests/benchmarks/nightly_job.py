"""Nightly job: custsync against a naive create-or-update loop, on the sandbox (issue 5).

    .venv/bin/python tests/benchmarks/nightly_job.py [--rows 100000] [--changed 0.01] [--rate 1000]

1. Generates a ``--rows`` extract and the next night's, with ``--changed`` of the rows altered.
2. Starts the sandbox in its own process and a local Prefect server (once, as a scheduler would
   have), then loads night 1 with custsync (unthrottled; not a headline figure).
3. Limits the sandbox to ``--rate`` requests/s and runs night 2 three ways, each as a fresh
   ``custsync`` process the way a worker starts a scheduled run:
   - custsync nightly sync (against the running Prefect server): calls and wall time;
   - the same extract again, nothing changed (the no-op overhead), against the running server and
     in Prefect's ephemeral mode;
   - a naive script: one create-or-update call per row (it even knows every remote id).
Prints the figures; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson
import polars as pl

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from connectors.sandbox.config import SandboxConfig  # noqa: E402
from connectors.sandbox.server import SandboxProcess  # noqa: E402

CREDS = {
    "CUSTSYNC_VERIFONE_TOKEN": "sandbox-token",
    "CUSTSYNC_VERIFONE_ENTITY_ID": "sandbox-entity",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
}


def generate(rows: int, changed: float, out: Path) -> tuple[Path, Path]:
    """Night 1 and night 2 extracts (Parquet); night 2 changes the phone of ``changed`` rows."""
    i = pl.col("i")
    company = (i % 5) == 0
    night1 = (
        pl.DataFrame({"i": pl.int_range(0, rows, eager=True)})
        .select(
            external_id=pl.format("CRM-{}", i.cast(pl.String).str.zfill(8)),
            status=pl.lit("active"),
            first_name=pl.when(company).then(None).otherwise(pl.format("Ann{}", i % 97)),
            last_name=pl.when(company).then(None).otherwise(pl.format("Smith{}", i % 89)),
            company_name=pl.when(company).then(pl.format("Acme {} B.V.", i)).otherwise(None),
            email=pl.format("user{}@example.com", i),
            phone=pl.format("+31 6 {}", i + 10_000_000),
            billing_city=pl.lit("Utrecht"),
            billing_postal_code=pl.format("{}AB", i % 9000 + 1000),
            billing_country_code=pl.lit("NL"),
        )
        .with_columns(pl.all().cast(pl.String))
    )
    step = max(int(1 / changed), 1)
    night2 = night1.with_columns(
        phone=pl.when(pl.int_range(0, rows) % step == 0)
        .then(pl.format("+31 20 {}", pl.int_range(0, rows) + 5_000_000))
        .otherwise(pl.col("phone"))
    )
    p1, p2 = out / "night1.parquet", out / "night2.parquet"
    night1.write_parquet(p1)
    night2.write_parquet(p2)
    return p1, p2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_prefect_server(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A local Prefect server, as a scheduler deployment would have running."""
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), **CREDS}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "prefect"), "server", "start", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("the Prefect server did not start")


def custsync(args: list[str], env: dict[str, str]) -> tuple[dict[str, Any], float]:
    """Run ``custsync`` as a fresh process; return its JSON summary and wall time."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args, "--json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"custsync failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), wall


def naive(base_url: str, extract: Path, state: Path, rate: float) -> tuple[int, float]:
    """One create-or-update call per row, in a loop, as users write by hand.

    A careful hand-written loop: it knows every remote id, paces itself at the provider's
    rate and honours ``Retry-After``. (Without pacing it bursts into 429s and spends most of
    its time sleeping: 5,000 rows took 260 s in a trial run.)
    """
    with duckdb.connect(str(state), read_only=True) as con:
        ids = dict(
            con.execute(
                "SELECT external_id, remote_id FROM snapshot WHERE target = 'verifone'"
            ).fetchall()
        )
    rows = pl.read_parquet(extract).to_dicts()
    calls = 0
    started = next_at = time.perf_counter()
    with httpx.Client(
        base_url=base_url, headers={"Authorization": "Bearer sandbox-token"}, timeout=30
    ) as client:
        for row in rows:
            body: dict[str, Any] = {
                "entity_id": "sandbox-entity",
                "email_address": row["email"],
                "phone_number": row["phone"],
                "billing": {
                    "city": row["billing_city"],
                    "postal_code": row["billing_postal_code"],
                    "country_code": row["billing_country_code"],
                },
            }
            if row["company_name"]:
                body["company_name"] = row["company_name"]
            else:
                body["billing"] |= {"first_name": row["first_name"], "last_name": row["last_name"]}
            remote = ids.get(row["external_id"])
            path = f"/v2/customer/{remote}" if remote else "/v2/customer"
            while True:
                next_at += 1 / rate
                pause = next_at - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                calls += 1
                response = client.post(path, content=orjson.dumps(body))
                if response.status_code != 429:
                    break
                time.sleep(float(response.headers.get("Retry-After", "1")))
                next_at = time.perf_counter()
    return calls, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--skip-naive", action="store_true", help="skip the slow naive loop")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="custsync-nightly-"))
    night1, night2 = generate(args.rows, args.changed, work)
    state = work / "state.duckdb"
    with SandboxProcess(SandboxConfig(rate_limit=None)) as sandbox:
        prefect, api_url = start_prefect_server(work / "prefect-server")
        try:
            env = {
                **CREDS,
                "CUSTSYNC_VERIFONE_BASE_URL": sandbox.base_url,
                "CUSTSYNC_STATE": str(state),
                "CUSTSYNC_CONFIG": str(work / "none.toml"),
                "PREFECT_HOME": str(work / "prefect-client"),
                "PREFECT_API_URL": api_url,
            }
            common = ["--target", "verifone", "--mode", "mirror"]
            load, load_wall = custsync(
                ["sync", str(night1), *common, "--rate", "0", "--concurrency", "16"], env
            )
            print(f"night 1 load: {load['calls']} calls in {load_wall:.1f} s", file=sys.stderr)

            sandbox.admin.configure(rate_limit=args.rate, burst=10)
            before = sandbox.admin.counters()["total"]
            nightly, nightly_wall = custsync(
                ["sync", str(night2), *common, "--rate", str(args.rate)], env
            )
            custsync_calls = sandbox.admin.counters()["total"] - before
            noop, noop_wall = custsync(["sync", str(night2), *common], env)
            ephemeral_env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
            ephemeral_env["PREFECT_HOME"] = str(work / "prefect-ephemeral")
            noop_eph, noop_eph_wall = custsync(["sync", str(night2), *common], ephemeral_env)
        finally:
            prefect.terminate()
            prefect.wait(timeout=30)

        if args.skip_naive:
            naive_calls, naive_wall = 0, float("nan")
        else:
            before = sandbox.admin.counters()["total"]
            _, naive_wall = naive(sandbox.base_url, night2, state, args.rate)
            naive_calls = sandbox.admin.counters()["total"] - before

    figures = {
        "rows": args.rows,
        "changed_rows": nightly["update"]["planned"],
        "rate_limit": args.rate,
        "custsync_calls": custsync_calls,
        "custsync_wall_s": round(nightly_wall, 2),
        "custsync_flow_s": nightly["duration_s"],
        "custsync_http_429": nightly["http_429"],
        "naive_calls": naive_calls,
        "naive_wall_s": round(naive_wall, 2),
        "calls_ratio": round(naive_calls / max(custsync_calls, 1), 1),
        "wall_ratio": round(naive_wall / nightly_wall, 1),
        "noop_run_s": round(noop_wall, 2),
        "noop_flow_s": noop["duration_s"],
        "noop_calls": noop["calls"],
        "noop_ephemeral_run_s": round(noop_eph_wall, 2),
        "noop_ephemeral_flow_s": noop_eph["duration_s"],
    }
    for key, value in figures.items():
        print(f"{key:>24}: {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
