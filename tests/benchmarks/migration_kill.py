"""A long migration killed at a random point and run again: every customer exactly once (issue 14).

    .venv/bin/python tests/benchmarks/migration_kill.py [--rows 400000] [--seed 1]

The short version (300 customers) is ``test_killed_run_is_reconciled_by_the_next`` in
``tests/e2e/test_cli.py``;
this one is too long for ``make test``. The sandbox runs in its own process, unthrottled. A
``custsync sync`` of ``--rows`` new customers is SIGKILLed (its whole process group, as a crashed
machine) once the sandbox has answered a random share (10-90 %, from ``--seed``) of the creates;
the same command then runs again. Checked: the second run exits 0; the sandbox holds each
customer (by e-mail) exactly once, ``--rows`` in all; the snapshot has one row per key, each with
a distinct remote id that the sandbox holds. Reported: where the kill fell, the rerun's wall and
the time its recover stage took (from its calls and its run row), and the intents it settled.
The last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from migration_scale import extracts  # noqa: E402
from nightly_job import CREDS  # noqa: E402

from connectors.sandbox.config import SandboxConfig  # noqa: E402
from connectors.sandbox.server import SandboxProcess  # noqa: E402


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    kill_share = rng.uniform(0.1, 0.9)
    work = Path(tempfile.mkdtemp(prefix="custsync-kill-"))
    extract, _ = extracts(args.rows, 0.05, work)
    state = work / "state.duckdb"
    cmd = [sys.executable, "-m", "pipelines.cli", "sync", str(extract), "--target", "verifone"]
    cmd += ["--mode", "mirror", "--rate", "0", "--concurrency", str(args.concurrency), "--json"]
    with SandboxProcess(SandboxConfig(rate_limit=None)) as sandbox:
        env = {
            **os.environ,
            **CREDS,
            "CUSTSYNC_VERIFONE_BASE_URL": sandbox.base_url,
            "CUSTSYNC_STATE": str(state),
            "CUSTSYNC_CONFIG": str(work / "none.toml"),
        }
        target_calls = int(kill_share * args.rows)
        log(f"run 1: {args.rows} creates, killed after ~{target_calls} calls")
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        while sandbox.admin.counters()["total"] < target_calls:
            if proc.poll() is not None:
                raise SystemExit("the run ended before it could be killed")
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        killed_after_s = time.perf_counter() - started
        held_at_kill = len(sandbox.admin.state()["verifone"]["customers"])
        log(f"killed after {killed_after_s:.1f} s; the sandbox held {held_at_kill}")

        started = time.perf_counter()
        rerun = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
        rerun_wall = time.perf_counter() - started
        if rerun.returncode != 0:
            raise SystemExit(f"the rerun failed ({rerun.returncode}): {rerun.stderr[-3000:]}")
        summary = json.loads(rerun.stdout.strip().splitlines()[-1])
        customers = sandbox.admin.state()["verifone"]["customers"]

    emails = Counter(c["email_address"] for c in customers)
    remote_ids = {c["id"] for c in customers}
    with duckdb.connect(str(state), read_only=True) as con:
        snapshot = con.execute(
            "SELECT external_id, remote_id FROM snapshot WHERE target = 'verifone'"
        ).fetchall()
        runs = con.execute("SELECT run_id, started_at FROM runs ORDER BY started_at").fetchall()
        second = runs[-1][0]
        by_op = dict(
            con.execute(
                "SELECT operation, count(*) FROM calls WHERE run_id = ? GROUP BY operation",
                [second],
            ).fetchall()
        )
        # The recover stage ends before the plan is read; the first create the plan sends
        # marks its end: from the run's start to that, recovery (and nothing else sent).
        row = con.execute(
            """
            SELECT epoch(min(c.started_at) - r.started_at) FROM calls c
            JOIN runs r USING (run_id)
            WHERE c.run_id = ? AND c.plan_id IN (SELECT plan_id FROM plan WHERE run_id = ?)
            GROUP BY r.started_at
            """,
            [second, second],
        ).fetchone()
        # The look-ups of the intents left pending by the kill: their span is reconciliation.
        reconcile = con.execute(
            "SELECT count(*), coalesce(epoch(max(started_at) - min(started_at)), 0)"
            " FROM calls WHERE run_id = ? AND operation = 'reconcile'",
            [second],
        ).fetchone()
        recovered = con.execute(
            "SELECT count(*) FROM outcomes WHERE run_id = ? AND plan_id NOT IN"
            " (SELECT plan_id FROM plan WHERE run_id = ?)",
            [second, second],
        ).fetchone()
    checks = {
        "every_customer_once": len(customers) == args.rows and max(emails.values()) == 1,
        "snapshot_one_row_per_key": len(snapshot) == len({k for k, _ in snapshot}) == args.rows,
        "snapshot_ids_distinct_and_held": len({r for _, r in snapshot}) == args.rows
        and {r for _, r in snapshot} <= remote_ids,
    }
    figures: dict[str, Any] = {
        "ok": all(checks.values()),
        **checks,
        "rows": args.rows,
        "kill_share": round(kill_share, 3),
        "killed_after_s": round(killed_after_s, 1),
        "held_at_kill": held_at_kill,
        "rerun_wall_s": round(rerun_wall, 1),
        "reconcile_calls": int(reconcile[0]) if reconcile else 0,
        "reconcile_s": round(float(reconcile[1]), 2) if reconcile else 0.0,
        "rerun_until_first_planned_call_s": round(float(row[0]), 2) if row else None,
        "rerun_outcomes_of_earlier_intents": int(recovered[0]) if recovered else 0,
        "rerun_calls_by_operation": by_op,
        "rerun_created": summary["create"]["succeeded"],
        "rerun_exit_code": summary["exit_code"],
        "sandbox_customers": len(customers),
    }
    for key, value in figures.items():
        log(f"{key:>36}: {value}")
    print(json.dumps(figures))
    if not figures["ok"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
