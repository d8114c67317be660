"""The HTML report's size, build time and render time in headless Chromium (issue 11).

    python tests/benchmarks/html_report.py [--state FILE] [--runs 50] [--keys 2000]

Without ``--state`` it generates a state file of ``--runs`` runs over ``--keys`` customers
through the store's own API (the first run creates every key, later ones update about 5 %,
close or delete a few, fail about 1 % with provider codes, reject about 1 %, meet some 429s
and drift; every change is recorded before and after, as migration 007 does). Figures:

- ``bytes``: the file; ``build_s``: reading the state file and writing the page (in-process,
  plotly imported beforehand);
- ``render_s``: wall seconds of ``chromium --screenshot`` of the report, median of
  ``--repeat``, and ``blank_s`` the same for an empty page (Chromium's own start-up), so
  ``render_s - blank_s`` is what the report costs;
- ``ready_ms``: the page's own clock (``performance.now()``) when every chart was drawn.

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipelines.state import StateStore, calls_frame, outcomes_frame, snapshot_frame  # noqa: E402
from tests.e2e.browser import FLAGS, chromium, parse  # noqa: E402

T0 = datetime(2026, 10, 1, 2, 0, tzinfo=UTC)
CODES = ("INVALID_EMAIL", "SERVER_ERROR", "CUSTOMER_NOT_FOUND", "ReadTimeout")
RULES = (("email", "email"), ("billing_country_code", "country"), ("first_name", "max_length"))
FIELDS = ("personal_details.email", "personal_details.phone", "personal_details.address.city",
          "personal_details.address.line_1", "personal_details.first_name")  # fmt: skip


def generate(path: Path, runs: int, keys: int, seed: int = 7) -> None:
    """A state file of ``runs`` sumup/verifone runs over ``keys`` customers."""
    rnd = random.Random(seed)
    with StateStore(path) as store:
        for n in range(runs):
            target = ("sumup", "verifone")[n % 2]
            at = T0 + timedelta(hours=12 * n)
            run_id = store.begin_run(flow="sync", target=target, mode="mirror", dry_run=False,
                                     extract_paths=["crm.csv"], params={})  # fmt: skip
            store.con.execute("UPDATE runs SET started_at = ? WHERE run_id = ?", [at, run_id])
            outcomes: list[dict[str, Any]] = []
            changes: dict[str, list[Any]] = {c: [] for c in (
                "plan_id", "external_id", "remote_id", "action", "field", "before", "after",
                "why", "occurred_at")}  # fmt: skip
            picked = range(keys) if n < 2 else rnd.sample(range(keys), keys // 20)
            for k in picked:
                key = f"CRM-{k:06d}"
                action = "create" if n < 2 else rnd.choices(
                    ("update", "close", "delete"), (90, 5, 5))[0]  # fmt: skip
                failed = rnd.random() < 0.01
                drift = action == "update" and rnd.random() < 0.1
                outcomes.append({
                    "plan_id": f"p{n}-{k}", "external_id": key, "action": action,
                    "result": "failed" if failed else "succeeded", "remote_id": f"r-{k}",
                    "changed_fields": [FIELDS[k % 5]], "drift_fields": ["personal_details.phone"]
                    if drift else [], "error_code": rnd.choice(CODES) if failed else None,
                    "http_status": 400 if failed else None, "at": at,
                })  # fmt: skip
                if failed:
                    continue
                for field in FIELDS if action == "create" else FIELDS[k % 5 : k % 5 + 1]:
                    for col, value in (
                        ("plan_id", f"p{n}-{k}"), ("external_id", key), ("remote_id", f"r-{k}"),
                        ("action", action), ("field", field),
                        ("before", None if action == "create" else f"old {n}"),
                        ("after", None if action == "delete" else f"new {n}"),
                        ("why", "source"), ("occurred_at", at),
                    ):  # fmt: skip
                        changes[col].append(value)
            calls = [{"operation": "update", "method": "PUT", "path_template": "/c/{id}",
                      "status": 429 if rnd.random() < 0.01 else 200, "attempt": 1,
                      "latency_ms": rnd.lognormvariate(3, 0.6), "started_at": at}
                     for _ in outcomes]  # fmt: skip
            rejects = [{"external_id": f"CRM-{rnd.randrange(keys):06d}", "field": f, "rule": r,
                        "message": "invalid", "value": "ab***"}
                       for f, r in rnd.choices(RULES, k=max(1, keys // 100))]  # fmt: skip
            import polars as pl

            from pipelines.state.frames import CHANGES_SCHEMA

            store.write_rejects(run_id, target, pl.DataFrame(rejects))
            store.record_batch(
                run_id, target, calls=calls_frame(calls), outcomes=outcomes_frame(outcomes),
                snapshot_upserts=snapshot_frame([]), snapshot_deletes=[],
                changes=pl.DataFrame(changes, schema={c: CHANGES_SCHEMA[c] for c in changes}),
            )  # fmt: skip
            store.finish_run(run_id, status="done", exit_code=1, summary={})


def _chromium(url: str, *args: str) -> tuple[float, str]:
    with tempfile.TemporaryDirectory() as profile:
        started = time.perf_counter()
        done = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args, url],
                              capture_output=True, text=True, timeout=300, check=True)  # fmt: skip
        return time.perf_counter() - started, done.stdout


def measure(state: Path, out: Path, repeat: int, last: int) -> dict[str, Any]:
    import duckdb
    import plotly.graph_objects  # noqa: F401  (its import is not the report's build time)

    from pipelines.htmlreport import build_html, write_html

    started = time.perf_counter()
    with duckdb.connect(str(state), read_only=True) as con:
        document, facts = build_html(con, last=last, source=str(state))
    facts = write_html(out, document, facts)
    build_s = time.perf_counter() - started
    blank = out.with_name("blank.html")
    blank.write_text("<!DOCTYPE html><html><body></body></html>")
    shot = ["--window-size=1400,2000", "--virtual-time-budget=5000",
            f"--screenshot={out.with_suffix('.png')}"]  # fmt: skip
    render, empty = [], []
    for _ in range(repeat):
        empty.append(_chromium(blank.as_uri(), *shot)[0])
        render.append(_chromium(out.as_uri(), *shot)[0])
    dom = parse(_chromium(out.as_uri(), "--dump-dom")[1])
    body = dom.find_all("body")[0]
    return {
        "state": str(state),
        "runs": facts.runs,
        "records_total": facts.records_total,
        "customers": facts.customers,
        "bytes": facts.bytes,
        "build_s": round(build_s, 2),
        "render_s": round(statistics.median(render), 2),
        "blank_s": round(statistics.median(empty), 2),
        "ready_ms": int(body.attrs.get("data-ready-ms", "-1")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--state", type=Path, help="report this state file (else generate one)")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--keys", type=int, default=2000)
    parser.add_argument("--last", type=int, default=100, help="runs in the report")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="custsync-html-bench-") as tmp:
        state = args.state
        if state is None:
            state = Path(tmp) / "state.duckdb"
            started = time.perf_counter()
            generate(state, args.runs, args.keys)
            print(f"generated {state} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        figures = measure(state, Path(tmp) / "report.html", args.repeat, args.last)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
