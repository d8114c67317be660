"""CLI overhead against ``python -c "import prefect"``, measured in one run (issue 10).

    python tests/benchmarks/cli_overhead.py [--repeat 3]

Times, in fresh processes, interleaved round by round:

- ``import_prefect``: ``python -c "import prefect"`` (the baseline: what loading the
  orchestrator alone costs on this machine today);
- ``preflight_refusal``: ``custsync sync data/customers.csv --target sumup --mapping BAD``
  (a broken column mapping: refused by the preflight, before Prefect is imported);
- ``dry_run_no_server``: ``custsync sync data/customers.csv --target sumup --dry-run`` with no
  ``PREFECT_API_URL`` (the stages run without Prefect: :mod:`pipelines.local`).

The figures are the median wall seconds and their ratios to ``import_prefect``. The last line
is one JSON object. Issue 10's goals: ``dry_run_no_server`` ≤ 1.0× and a refusal well under.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "import sys; from pipelines.cli import main; main(sys.argv[1:])"]


def _timed(argv: list[str], env: dict[str, str], expect: int) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - started
    if done.returncode != expect:
        raise SystemExit(f"{argv[-6:]} exited {done.returncode}, not {expect}: {done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="custsync-cli-overhead-"))
    bad = work / "bad.toml"
    bad.write_text("[columns\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTSYNC_", "PREFECT_API"))}
    env.update(
        CUSTSYNC_STATE=str(work / "state.duckdb"),
        CUSTSYNC_SUMUP_API_KEY="sup_sk_sandbox",
        PREFECT_HOME=str(work / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    extract = str(ROOT / "data" / "customers.csv")
    cases = {
        "import_prefect": ([sys.executable, "-c", "import prefect"], 0),
        "preflight_refusal": ([*CLI, "sync", extract, "-t", "sumup", "--mapping", str(bad)], 2),
        "dry_run_no_server": ([*CLI, "sync", extract, "-t", "sumup", "--dry-run"], 0),
    }
    _timed(cases["dry_run_no_server"][0], env, 0)  # warm: the page cache, the state file
    times: dict[str, list[float]] = {name: [] for name in cases}
    load_before = os.getloadavg()[0]
    for round_no in range(args.repeat):
        order = list(cases) if round_no % 2 == 0 else list(reversed(cases))
        for name in order:
            argv, expect = cases[name]
            times[name].append(_timed(argv, env, expect))
    median = {name: statistics.median(values) for name, values in times.items()}
    base = median["import_prefect"]
    result = {
        **{f"{name}_s": round(value, 3) for name, value in median.items()},
        "preflight_refusal_vs_import_prefect": round(median["preflight_refusal"] / base, 2),
        "dry_run_no_server_vs_import_prefect": round(median["dry_run_no_server"] / base, 2),
        "runs": {name: [round(v, 3) for v in values] for name, values in times.items()},
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }
    for name, value in median.items():
        print(f"{name:>20}: {value:6.2f} s  ({value / base:4.2f}x import prefect)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
