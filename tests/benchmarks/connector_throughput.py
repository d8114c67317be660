"""Connector throughput: rate held under a limit, 429s, bulk fetch, CPU per call.

Starts the sandbox in a child process (so the client does not share a GIL with it) and runs:

1. ``configured``: R req/s per credential (burst 10) enforced by the sandbox; both connectors
   at ``ClientConfig(rate=R)`` run ``--calls`` mixed calls each, concurrently.
2. ``adaptive``: the same with ``rate=None`` started at 2 R.
3. Verifone calls per updated record: 1,000 records fetched in bulk and updated.
4. Unthrottled: the connector against a bare httpx loop and a bare aiohttp loop (same
   request, same concurrency, same sandbox, interleaved rounds; best round kept).

Prints progress on stderr and the figures as one JSON object on the last line of stdout.
Usage: ``.venv/bin/python tests/benchmarks/connector_throughput.py [--calls N] [--rate R]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import httpx
import orjson

from connectors.config import ClientConfig
from connectors.http import CallRecord
from connectors.providers.sumup.client import SumUpClient
from connectors.providers.verifone.client import VerifoneClient
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.server import SandboxProcess
from connectors.secret import Secret

ENTITY = "sandbox-entity"
VF_TOKEN = "sandbox-token"
SU_KEY = "sup_sk_sandbox"
CONCURRENCY = 8


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def vf_payload(i: int) -> dict[str, Any]:
    return {
        "entity_id": ENTITY,
        "email_address": f"bench{i}@example.com",
        "billing": {"first_name": "Ann", "last_name": f"Lee{i}", "country_code": "GB"},
    }


def su_payload(i: int) -> dict[str, Any]:
    return {"customer_id": f"bench-{i}", "personal_details": {"first_name": "Bo", "last_name": "X"}}


class Tally:
    """``on_call`` sink counting statuses."""

    def __init__(self) -> None:
        self.statuses: Counter[int | None] = Counter()
        self.operations: Counter[str] = Counter()

    def __call__(self, record: CallRecord) -> None:
        self.statuses[record.status] += 1
        self.operations[record.operation] += 1

    @property
    def total(self) -> int:
        return sum(self.statuses.values())


Op = Callable[[], Awaitable[Any]]


def verifone_ops(vf: VerifoneClient, ids: list[str], n: int, rng: random.Random) -> list[Op]:
    """A mix of every Verifone operation, one HTTP call each when nothing fails."""
    ops: list[Op] = []
    created = 10_000_000 * (1 + rng.randrange(1000))  # new ids in every phase
    for k in range(n):
        roll = rng.random()
        rid = ids[k % len(ids)]
        i = k % len(ids)
        if roll < 0.40:
            ops.append(lambda rid=rid: vf.get(rid))
        elif roll < 0.55:
            ops.append(lambda i=i: vf.find_by_email(f"bench{i}@example.com"))
        elif roll < 0.65:
            chunk = rng.sample(ids, 20)
            ops.append(lambda chunk=chunk: vf.fetch_many(chunk))
        elif roll < 0.90:
            body = {**vf_payload(i), "company_name": f"Co {k}"}
            ops.append(lambda rid=rid, body=body: vf.update(rid, body))
        else:
            created += 1
            ops.append(lambda c=created: vf.create(vf_payload(c)))
    return ops


def sumup_ops(su: SumUpClient, ids: list[str], n: int, rng: random.Random) -> list[Op]:
    """A mix of SumUp operations, one HTTP call each when nothing fails."""
    ops: list[Op] = []
    created = 10_000_000 * (1 + rng.randrange(1000))  # new ids in every phase
    for k in range(n):
        roll = rng.random()
        cid = ids[k % len(ids)]
        if roll < 0.45:
            ops.append(lambda cid=cid: su.get(cid))
        elif roll < 0.75:
            body = {"personal_details": {"first_name": "Bo", "last_name": f"Y{k}"}}
            ops.append(lambda cid=cid, body=body: su.update(cid, body))
        elif roll < 0.90:
            ops.append(lambda cid=cid: su.list_instruments(cid))
        else:
            created += 1
            ops.append(lambda c=created: su.create(su_payload(c)))
    return ops


async def drain(ops: list[Op], workers: int) -> float:
    """Run ``ops`` with ``workers`` concurrent tasks; return the elapsed seconds."""
    it = iter(ops)

    async def worker() -> None:
        for op in it:
            await op()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return time.perf_counter() - t0


async def limited_phase(base_url: str, config: ClientConfig, calls: int, seed: int) -> dict:
    """Both connectors concurrently, ``calls`` mixed calls each, against the rate limit."""
    rng = random.Random(seed)
    vf_tally, su_tally = Tally(), Tally()
    async with (
        VerifoneClient(
            base_url, entity_id=ENTITY, token=Secret(VF_TOKEN), config=config, on_call=vf_tally
        ) as vf,
        SumUpClient(base_url, api_key=Secret(SU_KEY), config=config, on_call=su_tally) as su,
    ):
        async with httpx.AsyncClient(base_url=base_url) as admin:
            response = await admin.get("/_sandbox/state")
            state = response.json()
        vf_ids = [c["id"] for c in state["verifone"]["customers"]]
        su_ids = [c["customer_id"] for c in state["sumup"]["customers"]]
        vf_ops = verifone_ops(vf, vf_ids, calls, rng)
        su_ops = sumup_ops(su, su_ids, calls, rng)
        vf_elapsed, su_elapsed = await asyncio.gather(
            drain(vf_ops, CONCURRENCY), drain(su_ops, CONCURRENCY)
        )
        stats = {"verifone": vf.stats(), "sumup": su.stats()}
    out: dict[str, Any] = {}
    for name, tally, elapsed in (
        ("verifone", vf_tally, vf_elapsed),
        ("sumup", su_tally, su_elapsed),
    ):
        accepted = tally.total - tally.statuses[429]
        out[name] = {
            "calls": tally.total,
            "http_429": tally.statuses[429],
            "fraction_429": tally.statuses[429] / tally.total,
            "elapsed_s": round(elapsed, 3),
            "accepted_per_s": accepted / elapsed,
            "final_rate": stats[name].rate,
            "pauses": stats[name].pauses,
            "statuses": {str(k): v for k, v in sorted(tally.statuses.items(), key=str)},
        }
    return out


async def calls_per_update(base_url: str, ids: list[str], config: ClientConfig) -> dict:
    """Fetch 1,000 records in bulk, then update each (get-merge-post): calls per record."""
    tally = Tally()
    async with VerifoneClient(
        base_url, entity_id=ENTITY, token=Secret(VF_TOKEN), config=config, on_call=tally
    ) as vf:
        current = await vf.fetch_many(ids)

        async def update(rid: str) -> None:
            merged = {**current[rid], "company_name": "Merged Ltd"}
            await vf.update(rid, merged)

        await asyncio.gather(*(update(rid) for rid in ids))
    assert len(current) == len(ids), "bulk fetch lost records"
    return {
        "records": len(ids),
        "calls": tally.total,
        "by_operation": dict(tally.operations),
        "calls_per_update": tally.total / len(ids),
    }


async def _timed(n: int, one: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    it = iter(range(n))

    async def worker() -> None:
        for _ in it:
            await one()

    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return n / wall, cpu * 1000 / n


async def bare_httpx(base_url: str, path: str, n: int) -> tuple[float, float]:
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    headers = {"authorization": f"Bearer {VF_TOKEN}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits) as client:

        async def one() -> None:
            response = await client.get(path)
            assert response.status_code == 200
            response.json()

        await one()
        return await _timed(n, one)


async def bare_aiohttp(base_url: str, path: str, n: int) -> tuple[float, float]:
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    headers = {"authorization": f"Bearer {VF_TOKEN}"}
    async with aiohttp.ClientSession(base_url, headers=headers, connector=connector) as session:

        async def one() -> None:
            async with session.get(path) as response:
                assert response.status == 200
                orjson.loads(await response.read())

        await one()
        return await _timed(n, one)


async def connector(base_url: str, rid: str, n: int, backend: str) -> tuple[float, float]:
    config = ClientConfig(rate=math.inf, max_in_flight=CONCURRENCY, http_backend=backend)
    tally = Tally()
    async with VerifoneClient(
        base_url, entity_id=ENTITY, token=Secret(VF_TOKEN), config=config, on_call=tally
    ) as vf:

        async def one() -> None:
            await vf.get(rid)

        await one()
        return await _timed(n, one)


def unthrottled(base_url: str, rid: str, n: int, rounds: int) -> dict:
    path = f"/v2/customer/{rid}"
    variants: dict[str, Callable[[], Awaitable[tuple[float, float]]]] = {
        "bare_httpx": lambda: bare_httpx(base_url, path, n),
        "bare_aiohttp": lambda: bare_aiohttp(base_url, path, n),
        "connector": lambda: connector(base_url, rid, n, "aiohttp"),
        "connector_httpx_transport": lambda: connector(base_url, rid, n, "httpx"),
    }
    best: dict[str, tuple[float, float]] = {}
    for r in range(rounds):
        for name, run in variants.items():
            rate, cpu = asyncio.run(run())
            log(f"  round {r + 1} {name:26s} {rate:8.0f} calls/s  {cpu:.3f} ms CPU/call")
            if name not in best or rate > best[name][0]:
                best[name] = (rate, cpu)
    return {k: {"calls_per_s": v[0], "cpu_ms_per_call": v[1]} for k, v in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000, help="mixed calls per target")
    parser.add_argument("--rate", type=float, default=200.0, help="sandbox limit R (req/s)")
    parser.add_argument("--unthrottled-calls", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rate = args.rate
    load_before = os.getloadavg()
    sandbox_config = SandboxConfig(rate_limit=rate, burst=10, seed=1)
    figures: dict[str, Any] = {}
    with SandboxProcess(sandbox_config) as sb:
        admin = sb.admin
        admin.generate(verifone=500, sumup=500, entity_id=ENTITY, seed=1)

        log(f"configured: rate={rate:g}, {args.calls} mixed calls per target")
        time.sleep(1.0)  # a full bucket for every phase
        configured = asyncio.run(
            limited_phase(sb.base_url, ClientConfig(rate=rate), args.calls, seed=1)
        )
        log(json.dumps(configured))

        log(f"adaptive: started at {2 * rate:g}")
        time.sleep(1.0)
        adaptive = asyncio.run(
            limited_phase(
                sb.base_url,
                ClientConfig(rate=None, adaptive_start_rate=2 * rate),
                args.calls,
                seed=2,
            )
        )
        log(json.dumps(adaptive))

        log("verifone calls per update (1,000 records, bulk fetch)")
        admin.configure(rate_limit=None)
        admin.reset()
        seeded = admin.seed_verifone([vf_payload(i) for i in range(1000)])
        ids = [r["id"] for r in seeded]
        per_update = asyncio.run(calls_per_update(sb.base_url, ids, ClientConfig(rate=math.inf)))
        log(json.dumps(per_update))

        log(f"unthrottled: {args.unthrottled_calls} GETs, concurrency {CONCURRENCY}")
        raw = unthrottled(sb.base_url, ids[0], args.unthrottled_calls, args.rounds)

    def worst_ratio(phase: dict) -> float:
        return min(phase[t]["accepted_per_s"] for t in ("verifone", "sumup")) / rate

    def worst_429(phase: dict) -> float:
        return max(phase[t]["fraction_429"] for t in ("verifone", "sumup"))

    conn = raw["connector"]
    figures = {
        "rate_ratio_configured": round(worst_ratio(configured), 4),
        "fraction_429_configured": round(worst_429(configured), 5),
        "rate_ratio_adaptive": round(worst_ratio(adaptive), 4),
        "fraction_429_adaptive": round(worst_429(adaptive), 5),
        "verifone_calls_per_update": round(per_update["calls_per_update"], 4),
        "unthrottled_ratio_vs_bare_httpx": round(
            conn["calls_per_s"] / raw["bare_httpx"]["calls_per_s"], 3
        ),
        "unthrottled_ratio_vs_bare_aiohttp": round(
            conn["calls_per_s"] / raw["bare_aiohttp"]["calls_per_s"], 3
        ),
        "client_cpu_ms_per_call": round(conn["cpu_ms_per_call"], 4),
        "detail": {
            "rate": rate,
            "calls_per_target": args.calls,
            "configured": configured,
            "adaptive": adaptive,
            "calls_per_update": per_update,
            "unthrottled": raw,
            "concurrency": CONCURRENCY,
            "cpus": os.cpu_count(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        },
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
