"""Retention cost: the pass that first redacts old plan rows, and every later pass.

    python tests/benchmarks/retention.py [--rows 200000]

Writes ``--rows`` Verifone-sized plan rows into a fresh state file, then times
``StateStore.apply_retention`` three ways: the first pass (every row is older than the limit:
each payload parsed, redacted and written back), a later pass (nothing aged since: only rows
newer than the previous pass's limit are read), and the baseline a later pass would cost
without that limit (the ``redactions`` rows deleted first, so every old payload is read
again). Prints one JSON object: the three times and ``later_vs_baseline``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import polars as pl

from pipelines.state.store import StateStore
from transforms.diff import PLAN_SCHEMA

PAYLOAD = orjson.dumps(
    {
        "billing": {
            "address_1": "Hauptstraße 12",
            "city": "Berlin",
            "country_code": "DE",
            "first_name": "Jan",
            "last_name": "Schmidt",
            "postal_code": "10115",
        },
        "email_address": "jan.1@example.com",
        "entity_id": "sandbox-entity",
        "language": "de",
        "phone_number": "+49 30 5550101",
        "title": "Mr",
    }
).decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    n = parser.parse_args().rows
    with tempfile.TemporaryDirectory(prefix="retention-") as tmp:
        print(json.dumps(measure(n, Path(tmp) / "state.duckdb")))


def measure(n: int, path: Path) -> dict[str, float | int]:
    """The figures of a file of ``n`` plan rows at ``path``."""
    store = StateStore(path)
    plan = pl.DataFrame(
        {
            "plan_id": [f"p{i}" for i in range(n)],
            "external_id": [f"K{i}" for i in range(n)],
            "action": ["create"] * n,
            "status": ["active"] * n,
            "payload": [PAYLOAD] * n,
            "content_hash": [f"h{i}" for i in range(n)],
            "content_key": [1] * n,
        }
    ).select(pl.col(c) if c in ("plan_id", "external_id", "action", "status", "payload",
             "content_hash", "content_key") else pl.lit(None).alias(c)
             for c in PLAN_SCHEMA.names()).cast(dict(PLAN_SCHEMA))  # fmt: skip
    run = store.begin_run(
        flow="sync", target="verifone", mode="upsert", dry_run=False, extract_paths=[], params={}
    )
    store.write_plan(run, "verifone", plan)
    limit = datetime.now(UTC) + timedelta(seconds=1)
    figures: dict[str, float | int] = {"rows": n}
    for name in ("first_s", "later_s", "baseline_s"):
        if name == "baseline_s":
            store.con.execute("DELETE FROM redactions")
        store.con.execute("CHECKPOINT")  # the previous pass's writes are not this one's cost
        started = time.perf_counter()
        figures[name.replace("_s", "_values")] = store.apply_retention(run, limit)
        figures[name] = round(time.perf_counter() - started, 3)
        limit += timedelta(seconds=1)
    figures["later_vs_baseline"] = round(figures["later_s"] / figures["baseline_s"], 3)
    store.close()
    return figures


if __name__ == "__main__":
    main()
