"""Two tenants on one credential, run by two processes at once, stay under its rate together.

Real parts: a Prefect server (the global concurrency limit with slot decay lives there), the
sandbox (a token bucket of rate R per credential: its 429 count is the proof) and two
``custsync-tenant-sync`` flow runs, each in its own process as two workers would run them.
Each tenant's own ``rate_limit`` is R: alone, each would take the whole bucket, so without the
shared limit the two together send 2R and draw 429s (the control case shows it does).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.server import SandboxServer
from tests.e2e.conftest import REPO
from tests.e2e.fleet_parts import cli_env, statuses
from tests.e2e.gen import write_extract
from tests.e2e.prefect_server import PrefectServer

pytestmark = pytest.mark.e2e

RATE = 5  # the sandbox's per-credential limit R, and each tenant's own rate_limit
BURST = 5
ROWS = 40  # per tenant: 80 creates at R = 16 s together
SHARED_KEY = "sup_sk_shared_merchant"

TENANTS = """
state_dir = "state"

[defaults]
rate_limit = {rate}

[defaults.sumup]
base_url = "{url}"

[[tenants]]
id = "north"
extract = "landing/north.csv"
[tenants.sumup]
api_key = "{ref_north}"

[[tenants]]
id = "south"
extract = "landing/south.csv"
[tenants.sumup]
api_key = "{ref_south}"
"""

CHILD = """
import asyncio, pathlib, sys, time
from pipelines.flows.tenant import tenant_sync_flow
# A barrier: both children start their runs once both have imported (a loaded machine may take
# seconds longer for one import than the other, and the runs must overlap to share anything).
folder = pathlib.Path(sys.argv[1]).parent
(folder / f"ready-{sys.argv[2]}").touch()
while not (folder / "go").exists():
    time.sleep(0.05)
asyncio.run(tenant_sync_flow(tenants_file=sys.argv[1], tenant=sys.argv[2], target="sumup",
                             return_state=True))
"""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(rate_limit=RATE, burst=BURST)) as sb:
        yield sb


def _two_runs_at_once(
    server: PrefectServer, sandbox: SandboxServer, tmp: Path, refs: tuple[str, str]
) -> tuple[dict[str, int], list[list[datetime]]]:
    sandbox.admin.reset()
    sandbox.admin.seed_oauth(api_keys=[{"api_key": SHARED_KEY, "merchant": "shared"}])
    (tmp / "landing").mkdir()
    write_extract(tmp / "landing" / "north.csv", ROWS, prefix="NORTH")
    write_extract(tmp / "landing" / "south.csv", ROWS, prefix="SOUTH")
    tenants = tmp / "tenants.toml"
    tenants.write_text(
        TENANTS.format(rate=RATE, url=sandbox.base_url, ref_north=refs[0], ref_south=refs[1]),
        encoding="utf-8",
    )
    env = cli_env(
        server,
        CUSTSYNC_CONFIG=str(tmp / "absent.toml"),
        **{ref: SHARED_KEY for ref in refs},  # two names for one key in the control case
    )
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(tenants), tenant],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for tenant in ("north", "south")
    ]
    deadline = time.monotonic() + 120
    while not all((tmp / f"ready-{t}").exists() for t in ("north", "south")):
        assert time.monotonic() < deadline and all(c.poll() is None for c in children), [
            c.poll() for c in children
        ]
        time.sleep(0.05)
    (tmp / "go").touch()
    outputs = [child.communicate(timeout=240)[0].decode(errors="replace") for child in children]
    for child, out in zip(children, outputs, strict=True):
        assert child.returncode == 0, out[-3000:]
    answers = statuses(sandbox)
    times = []
    for tenant in ("north", "south"):
        with duckdb.connect(str(tmp / "state" / f"{tenant}-sumup.duckdb"), read_only=True) as con:
            succeeded = con.execute(
                "SELECT count(*) FROM outcomes WHERE result = 'succeeded'"
            ).fetchall()
            assert succeeded == [(ROWS,)], outputs
            times.append(
                [r[0] for r in con.execute("SELECT started_at FROM calls ORDER BY 1").fetchall()]
            )
    return answers, times


def test_two_runs_sharing_a_credential_stay_under_its_rate_together(
    fleet_server: PrefectServer, sandbox: SandboxServer, tmp_path: Path
) -> None:
    answers, times = _two_runs_at_once(
        fleet_server, sandbox, tmp_path, ("SHARED_SUMUP_KEY", "SHARED_SUMUP_KEY")
    )
    total = sum(answers.values())
    assert total >= 2 * ROWS
    assert answers.get("429", 0) <= 0.01 * total, answers
    # The two runs overlapped (else nothing was shared) ...
    north, south = times
    overlap = (min(north[-1], south[-1]) - max(north[0], south[0])).total_seconds()
    assert overlap > 0.5 * (ROWS / RATE), (north[0], north[-1], south[0], south[-1])
    # ... and together held the rate: no window saw more than the burst plus R per second.
    every = sorted(north + south)
    for i, start in enumerate(every):
        for j in range(i + 1, len(every)):
            span = (every[j] - start).total_seconds()
            assert j - i + 1 <= BURST + RATE * span + 1, (j - i + 1, span)
    aggregate = (len(every) - 1) / (every[-1] - every[0]).total_seconds()
    assert aggregate <= RATE * 1.05


def test_control_two_names_for_one_key_are_not_known_to_share_it(
    fleet_server: PrefectServer, sandbox: SandboxServer, tmp_path: Path
) -> None:
    """The limit is keyed by the credential's reference (the secret is never read to compare):
    two variables holding one key are two credentials to the fleet, and together they
    overrun the provider's bucket, which is what the test above would see without sharing."""
    answers, _ = _two_runs_at_once(fleet_server, sandbox, tmp_path, ("NORTH_KEY", "SOUTH_KEY"))
    assert answers.get("429", 0) > 0.01 * sum(answers.values()), answers
