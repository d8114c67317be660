"""``make fleet-demo`` end to end (with fewer rows): a Prefect server, two workers, the sandbox
with rate-limited merchants, one ``custsync fleet`` run, the cross-tenant audit; and nothing it
started is left running."""

from __future__ import annotations

import re
import subprocess
import sys

import psutil
import pytest

from tests.e2e.conftest import REPO

pytestmark = pytest.mark.e2e

MERCHANTS = 8
ROWS = 4


def test_the_fleet_demo_syncs_every_merchant_audits_them_and_stops_what_it_started() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.fleet_demo", "--merchants", str(MERCHANTS),
         "--rows", str(ROWS), "--rate", "5"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert "Traceback" not in out + done.stderr
    assert f"{MERCHANTS} run(s): {MERCHANTS} ok, 0 with rejects, 0 failed; exit code 0" in out
    # The audit: one row per merchant, each with its rows created, read from its state file.
    audit = out[out.index("cross-tenant audit") :]
    for m in range(1, MERCHANTS + 1):
        row = re.search(
            rf"merchant-{m:02d}\s*┆ sumup\s*┆ done\s*┆ 0\s*┆[^┆]*┆ {ROWS}\s*┆ {ROWS}\s", audit
        )
        assert row, audit
    assert f"all tenants: {MERCHANTS * ROWS} succeeded" in audit
    assert "answered 429" in audit
    assert f"sandbox answers by status: {{'201': {MERCHANTS * ROWS}}}" in out
    # Every process it started (server, workers) is gone.
    pids = re.search(r"stopping the workers, the server and the sandbox \(pids ([\d, ]+)\)", out)
    assert pids is not None
    started = [int(p) for p in pids.group(1).split(", ")]
    assert len(started) == 3  # the server and two workers
    for pid in started:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
