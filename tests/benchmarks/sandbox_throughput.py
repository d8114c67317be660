"""Sandbox speed and size: requests/s on one uvicorn worker, and RSS for 1M customers.

Usage: ``.venv/bin/python tests/benchmarks/sandbox_throughput.py [--seconds 10]
[--concurrency 32] [--customers 1000000]``. The server runs in a child process
(``python -m connectors.sandbox``) so the aiohttp client does not share its GIL.
Prints progress, then one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from typing import Any

import aiohttp
import psutil

from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.server import SandboxProcess

VERIFONE = {"Authorization": "Bearer sandbox-token"}
SUMUP = {"Authorization": "Bearer sup_sk_sandbox"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def drive(
    base_url: str, seconds: float, concurrency: int, v_ids: list[str], s_ids: list[str]
) -> dict[str, Any]:
    """A realistic mix of both APIs' calls from ``concurrency`` keep-alive workers."""
    statuses: dict[int, int] = {}
    done = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)

    async def worker(session: aiohttp.ClientSession, seed: int) -> None:
        nonlocal done
        rng = random.Random(seed)
        n = 0
        while time.perf_counter() < deadline:
            roll = rng.random()
            n += 1
            if roll < 0.40:
                call = session.get(f"/v2/customer/{rng.choice(v_ids)}", headers=VERIFONE)
            elif roll < 0.55:
                body = {"entity_id": "sandbox-entity", "company_name": f"Bench {seed}-{n}"}
                call = session.post("/v2/customer", json=body, headers=VERIFONE)
            elif roll < 0.65:
                ids = ",".join(rng.sample(v_ids, 20))
                params = {"search": f"id=in=({ids})", "page_size": "20"}
                call = session.get("/v2/customer", params=params, headers=VERIFONE)
            elif roll < 0.85:
                call = session.get(f"/v0.1/customers/{rng.choice(s_ids)}", headers=SUMUP)
            else:
                body = {"personal_details": {"last_name": f"L{n}"}}
                call = session.put(f"/v0.1/customers/{rng.choice(s_ids)}", json=body, headers=SUMUP)
            async with call as response:
                await response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1
                done += 1

    async with aiohttp.ClientSession(base_url, connector=connector) as session:
        start = time.perf_counter()
        await asyncio.gather(*(worker(session, i) for i in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {"requests": done, "seconds": elapsed, "statuses": statuses}


def throughput(seconds: float, concurrency: int) -> dict[str, Any]:
    with SandboxProcess(SandboxConfig(seed=1)) as sandbox:
        made = sandbox.admin.generate(verifone=1000, sumup=1000, seed=1)
        state = sandbox.admin.state()
        v_ids = [c["id"] for c in state["verifone"]["customers"]]
        s_ids = [c["customer_id"] for c in state["sumup"]["customers"]]
        log(f"seeded {made}; driving {concurrency} connections for {seconds:g} s")
        server = psutil.Process(sandbox.pid)
        server.cpu_times()
        cpu_before = sum(server.cpu_times()[:2])
        result = asyncio.run(drive(sandbox.base_url, seconds, concurrency, v_ids, s_ids))
        cpu = sum(server.cpu_times()[:2]) - cpu_before
        counted = sandbox.admin.counters()["total"]
    rate = result["requests"] / result["seconds"]
    log(f"{result['requests']} requests in {result['seconds']:.1f} s = {rate:,.0f} req/s")
    return {
        "requests_per_s": round(rate),
        "requests": result["requests"],
        "server_counted": counted,
        "statuses": {str(k): v for k, v in sorted(result["statuses"].items())},
        "server_cpu_ms_per_request": round(1000 * cpu / max(1, result["requests"]), 3),
        "server_cpu_utilisation": round(cpu / result["seconds"], 2),
    }


def rss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / 2**20


def memory(customers: int) -> dict[str, Any]:
    """RSS of a fresh server before and after generating ``customers`` Verifone customers."""
    with SandboxProcess(SandboxConfig(seed=1)) as sandbox:
        before = rss_mb(sandbox.pid)
        start = time.perf_counter()
        chunk = 100_000
        for offset in range(0, customers, chunk):
            sandbox.admin.generate(verifone=min(chunk, customers - offset), seed=offset)
        seeded_s = time.perf_counter() - start
        after = rss_mb(sandbox.pid)
        log(
            f"{customers:,} Verifone customers: RSS {before:.0f} → {after:.0f} MB"
            f" ({seeded_s:.0f} s)"
        )
        timings = search_timings(sandbox.base_url)
    per_million = (after - before) * 1_000_000 / customers
    return {
        "rss_mb_per_1m_customers": round(per_million),
        "rss_mb_total_at_n": round(after),
        "rss_mb_empty": round(before),
        "customers": customers,
        "generate_s": round(seeded_s, 1),
        **timings,
    }


def search_timings(base_url: str) -> dict[str, float]:
    """Milliseconds per search on the full store: indexed lookups vs a full scan."""
    import httpx

    with httpx.Client(base_url=base_url, headers=VERIFONE, timeout=600) as client:
        page = client.get(
            "/v2/customer", params={"search": "entity_id==sandbox-entity", "page_size": "300"}
        ).json()
        ids = ",".join(c["id"] for c in page)
        email = page[0]["email_address"]

        def timed(search: str, **params: str) -> float:
            start = time.perf_counter()
            response = client.get("/v2/customer", params={"search": search, **params})
            response.raise_for_status()
            return round(1000 * (time.perf_counter() - start), 1)

        return {
            "ms_id_in_300": timed(f"id=in=({ids})", page_size="300"),
            "ms_email_eq": timed(f"email_address=={email}"),
            "ms_full_scan_regex": timed("billing.city=regex=^Ber;company_name=regex=Partner"),
        }


def startup_seconds() -> float:
    """Wall time from launching ``custsync sandbox`` to its first answered request."""
    import httpx

    executable = os.path.join(os.path.dirname(sys.executable), "custsync")
    start = time.perf_counter()
    process = subprocess.Popen(
        [executable, "sandbox", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        httpx.get(url + "/_sandbox/health", timeout=10).raise_for_status()
        return round(time.perf_counter() - start, 2)
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()
    load = os.getloadavg()
    figures: dict[str, Any] = {"cpus": os.cpu_count(), "load_avg_1m_at_start": round(load[0], 2)}
    figures["startup_s"] = startup_seconds()
    figures.update(throughput(args.seconds, args.concurrency))
    figures.update(memory(args.customers))
    figures["concurrency"] = args.concurrency
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
