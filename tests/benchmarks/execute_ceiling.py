"""What the connector alone does with a migration's calls: the ceiling of the execute stage.

``migration_scale.py`` compares the pipeline's calls/s with the connector's unthrottled GETs
at concurrency 8 (``connector_throughput.py``'s measurement). A migration sends creates (and an
update run a bulk fetch and POSTs) at ``--concurrency`` 16, and the sandbox, sharing the
machine's cores, does more work for a create than for a GET. This script measures, in one
sandbox process, unthrottled and interleaved (best round kept):

- ``get``: the baseline (``vf.get``, concurrency 8);
- ``create``: ``vf.create`` of distinct customers, at ``--concurrency``;
- ``update``: ``vf.update`` of existing customers, at ``--concurrency``.

What a bare loop of the connector reaches for creates is the most the pipeline can reach on
the same machine: ``create / get`` is the ceiling of ``create_vs_connector``.

    flock /work/bench.lock .venv/bin/python tests/benchmarks/execute_ceiling.py [--calls 20000]

Prints progress on stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from connectors.config import ClientConfig  # noqa: E402
from connectors.providers.verifone.client import VerifoneClient  # noqa: E402
from connectors.sandbox.config import SandboxConfig  # noqa: E402
from connectors.sandbox.server import SandboxProcess  # noqa: E402
from connectors.secret import Secret  # noqa: E402

ENTITY = "sandbox-entity"
TOKEN = "sandbox-token"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def payload(i: int) -> dict[str, Any]:
    return {
        "entity_id": ENTITY,
        "email_address": f"ceiling{i}@example.com",
        "phone_number": f"+31 6 {10_000_000 + i}",
        "billing": {"first_name": "Ann", "last_name": f"Lee{i}", "country_code": "NL"},
    }


async def timed(
    base_url: str, n: int, workers: int, op: Callable[[VerifoneClient, int], Awaitable[Any]]
) -> tuple[float, float]:
    """``n`` calls of ``op`` with ``workers`` concurrent tasks: calls/s and CPU ms per call."""
    config = ClientConfig(rate=math.inf, max_in_flight=workers)
    async with VerifoneClient(base_url, entity_id=ENTITY, token=Secret(TOKEN), config=config) as vf:
        await op(vf, -1)  # the first connection
        it = iter(range(n))

        async def worker() -> None:
            for k in it:
                await op(vf, k)

        t0, c0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(workers)))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return n / wall, cpu * 1000 / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    load_before = os.getloadavg()
    counter = itertools.count(1_000_000)
    with SandboxProcess(SandboxConfig(rate_limit=None)) as sandbox:
        seeded = sandbox.admin.seed_verifone([payload(i) for i in range(1000)])
        ids = [str(r["id"]) for r in seeded]

        async def get(vf: VerifoneClient, k: int) -> Any:
            return await vf.get(ids[0])

        async def create(vf: VerifoneClient, k: int) -> Any:
            return await vf.create(payload(next(counter)))

        async def update(vf: VerifoneClient, k: int) -> Any:
            rid = ids[k % len(ids)]
            return await vf.update(rid, {**payload(k % len(ids)), "company_name": f"Co {k}"})

        variants = {
            "get": (8, get),
            "create": (args.concurrency, create),
            "update": (args.concurrency, update),
        }
        best: dict[str, tuple[float, float]] = {}
        for r in range(args.rounds):
            for name, (workers, op) in variants.items():
                rate, cpu = asyncio.run(timed(sandbox.base_url, args.calls, workers, op))
                log(f"  round {r + 1} {name:8s} c={workers:<3d} {rate:8.0f} calls/s  {cpu:.3f} ms")
                if name not in best or rate > best[name][0]:
                    best[name] = (rate, cpu)
    figures = {
        "create_vs_get": round(best["create"][0] / best["get"][0], 3),
        "update_vs_get": round(best["update"][0] / best["get"][0], 3),
        **{
            name: {"calls_per_s": round(rate, 1), "cpu_ms_per_call": round(cpu, 4)}
            for name, (rate, cpu) in best.items()
        },
        "concurrency": args.concurrency,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
