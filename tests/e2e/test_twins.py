"""End-to-end: a create's look-up never adopts another key's customer (issue 15, item 6).

Twins (two keys, identical fields) and sparse rows (a subset of another row's fields) against
the sandbox with injected faults: every key ends with exactly one customer of its own.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.config import ClientConfig
from connectors.sandbox.server import SandboxServer
from pipelines import connect
from pipelines.settings import Settings
from tests.e2e.conftest import CREDENTIALS, state_file, sync, total_calls
from tests.e2e.expect import snapshot_ids
from tests.e2e.twins import assert_one_customer_per_key, calls_of, plain_sync

pytestmark = pytest.mark.e2e

MINIMAL_FAULTS = {"fault_rate": 0.5, "fault_kinds": ["503"], "seed": 10}


def _csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_minimal_twins_get_a_customer_each_and_a_mirror_run_keeps_the_other(
    env: dict[str, str], sandbox: SandboxServer, tmp_path: Path
) -> None:
    extract = _csv(
        tmp_path / "twins.csv",
        "external_id,company_name\nA-1,Twin Handel GmbH\nA-2,Twin Handel GmbH\n",
    )
    sandbox.admin.configure(**MINIMAL_FAULTS)
    summary = sync(extract=[str(extract)], target="verifone", concurrency=1)
    sandbox.admin.configure(fault_rate=0.0)
    # Before the fix these were POST 200, POST 503, GET 503, GET 200: A-2 adopted A-1's
    # customer. Now the look-up's one equal match is A-1's (taken this batch): A-2 creates.
    assert calls_of(state_file(), summary["run_id"]) == [
        "POST 200",
        "POST 503",
        "GET 503",
        "GET 200",
        "POST 200",
    ]
    assert summary["exit_code"] == 0
    assert summary["create"] == {"planned": 2, "succeeded": 2, "failed": 0}
    assert_one_customer_per_key(sandbox, state_file(), extract)

    alone = _csv(tmp_path / "alone.csv", "external_id,company_name\nA-1,Twin Handel GmbH\n")
    mirror = sync(extract=[str(alone)], target="verifone", mode="mirror", allow_deletes=True)
    assert mirror["exit_code"] == 0 and mirror["delete"]["succeeded"] == 1
    assert_one_customer_per_key(sandbox, state_file(), alone)  # A-1's customer is still there
    before = total_calls(sandbox)
    again = sync(extract=[str(alone)], target="verifone", mode="mirror")
    assert again["exit_code"] == 0 and total_calls(sandbox) == before


def test_a_sparse_row_never_adopts_the_richer_customer(
    env: dict[str, str], sandbox: SandboxServer, tmp_path: Path
) -> None:
    extract = _csv(
        tmp_path / "sparse.csv",
        "external_id,company_name,email,phone\n"
        "A-1,ACME GmbH,hq@acme.example.com,+49 30 1111111\n"
        "A-2,ACME GmbH,,\n",
    )
    sandbox.admin.configure(**MINIMAL_FAULTS)
    summary = sync(extract=[str(extract)], target="verifone", concurrency=1)
    sandbox.admin.configure(fault_rate=0.0)
    # A-2's create answered 503; its look-up found A-1's customer (it holds every field A-2
    # sent, and two more): not equal, so A-2 is created.
    assert "GET 200" in calls_of(state_file(), summary["run_id"])
    assert summary["exit_code"] == 0
    assert summary["create"]["succeeded"] == 2
    assert_one_customer_per_key(sandbox, state_file(), extract)
    a1, a2 = (snapshot_ids(state_file(), "verifone")[k][0] for k in ("A-1", "A-2"))
    assert a1 != a2


def _twin_pairs(path: Path, n: int) -> Path:
    rows = []
    for i in range(n):
        row = {
            "external_id": f"X{i:03d}",
            "company_name": f"Twin {i} Handel GmbH",
            "email": f"shop{i}@twin.example.com",
            "billing_city": "Berlin",
            "billing_country_code": "DE",
        }
        rows += [row, {**row, "external_id": f"X{i:03d}-B"}]
    pl.DataFrame(rows).write_csv(path)
    return path


def test_a_hundred_twin_pairs_under_5xx_converge_to_one_customer_per_key(
    env: dict[str, str], sandbox: SandboxServer, tmp_path: Path
) -> None:
    extract = _twin_pairs(tmp_path / "pairs.csv", 100)
    sandbox.admin.configure(
        fault_rate=0.3, fault_kinds=["500", "502", "503", "commit_500"], seed=15
    )
    faulty = plain_sync(extract, mode="mirror")
    assert faulty["calls"] > 200, "the faults made the run retry and look up"
    assert sandbox.admin.counters().get("faults"), "faults were injected"
    sandbox.admin.configure(fault_rate=0.0)
    for _ in range(4):
        healthy = plain_sync(extract, mode="mirror")
        if healthy["calls"] == 0:
            break
    assert healthy["exit_code"] == 0 and healthy["calls"] == 0, healthy
    assert_one_customer_per_key(sandbox, state_file(), extract)
    assert len(sandbox.admin.state()["verifone"]["customers"]) == 200


# -- generative: twins, sparse subsets, unrelated rows, every kind of fault ------------------


def _quick_retries(settings: Settings) -> ClientConfig:
    return replace(CLIENT_CONFIG(settings), backoff_base_s=0.01, backoff_max_s=0.05)


CLIENT_CONFIG = connect.client_config
FAULT_KINDS = ["500", "502", "503", "reset", "commit_500", "commit_reset"]


@st.composite
def extracts(draw: st.DrawFn) -> list[dict[str, str | None]]:
    """Rows of an extract: twin groups (2-3 keys, identical fields), rich/sparse pairs (the
    sparse row's fields a subset of the rich one's), unrelated rows."""
    rows: list[dict[str, str | None]] = []
    for i in range(draw(st.integers(0, 3))):
        twin = {
            "company_name": f"Twin {i} GmbH",
            "email": f"t{i}@twin.example.com" if draw(st.booleans()) else None,
        }
        rows += [
            {"external_id": f"T{i}-{s}", **twin}
            for s in "AB" + ("C" if draw(st.booleans()) else "")
        ]
    for i in range(draw(st.integers(0, 2))):
        rich = {
            "company_name": f"Acme {i} GmbH",
            "email": f"hq{i}@acme.example.com",
            "phone": f"+49 30 111111{i}",
        }
        sparse = (
            {**rich, "email": None, "phone": None}
            if draw(st.booleans())
            else {**rich, "phone": None}
        )
        rows += [{"external_id": f"S{i}-R", **rich}, {"external_id": f"S{i}-S", **sparse}]
    for i in range(draw(st.integers(0 if rows else 1, 2))):
        rows.append(
            {"external_id": f"U{i}", "company_name": f"Solo {i} AG", "email": None, "phone": None}
        )
    return rows


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=extracts(),
    fault_rate=st.sampled_from([0.2, 0.35, 0.5]),
    kinds=st.lists(st.sampled_from(FAULT_KINDS), min_size=1, max_size=4, unique=True),
    seed=st.integers(0, 10_000),
    concurrency=st.integers(1, 4),
    batch_size=st.sampled_from([1, 2, 3, 50]),
    faulty_runs=st.integers(1, 2),
)
def test_generated_extracts_under_faults_end_with_one_customer_per_key(
    sandbox: SandboxServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    rows: list[dict[str, str | None]],
    fault_rate: float,
    kinds: list[str],
    seed: int,
    concurrency: int,
    batch_size: int,
    faulty_runs: int,
) -> None:
    # Two attempts per call and short backoffs: more records fail and are retried by the next
    # run (as wanted here), and no run waits out a long backoff.
    # No Prefect here (the stages run plain): the sandbox and settings are wired directly.
    for key, value in {
        **CREDENTIALS,
        "CUSTSYNC_VERIFONE_BASE_URL": sandbox.base_url,
        "CUSTSYNC_CONFIG": str(tmp_path / "absent.toml"),
        "CUSTSYNC_MAX_ATTEMPTS": "2",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(connect, "client_config", _quick_retries)
    sandbox.admin.reset(config=True)
    with tempfile.TemporaryDirectory(dir=tmp_path) as scratch:
        extract = Path(scratch) / "extract.csv"
        pl.DataFrame(rows, schema={k: pl.String for k in rows[0]}).write_csv(extract)
        state = str(Path(scratch) / "state.duckdb")
        params = {"state": state, "concurrency": concurrency, "batch_size": batch_size}
        sandbox.admin.configure(fault_rate=fault_rate, fault_kinds=kinds, seed=seed)
        for _ in range(faulty_runs):
            plain_sync(extract, mode="mirror", **params)
        sandbox.admin.configure(fault_rate=0.0)
        for _ in range(6):  # healthy reruns: settle what was in flight, retry what failed
            healthy = plain_sync(extract, mode="mirror", **params)
            if healthy["calls"] == 0:
                break
        assert healthy["exit_code"] == 0 and healthy["calls"] == 0, healthy
        assert_one_customer_per_key(sandbox, state, extract)


def test_migration_adopts_neither_an_owned_customer_nor_one_two_keys_match(
    env: dict[str, str], sandbox: SandboxServer, tmp_path: Path
) -> None:
    from tests.e2e.conftest import migrate

    first = _csv(
        tmp_path / "first.csv", "external_id,company_name,email\nK-1,Acme,k@acme.example.com\n"
    )
    assert sync(extract=[str(first)], target="verifone")["exit_code"] == 0
    owned = snapshot_ids(state_file(), "verifone")["K-1"][0]
    (seeded,) = sandbox.admin.seed_verifone(
        [
            {
                "entity_id": "sandbox-entity",
                "email_address": "shop@rival.example.com",
                "company_name": "Old",
            }
        ]
    )
    extract = _csv(
        tmp_path / "migrate.csv",
        "external_id,company_name,email\n"
        "K-1,Acme,k@acme.example.com\n"
        "N-1,Acme Branch,k@acme.example.com\n"  # K-1's customer has this e-mail: K-1 owns it
        "R-1,Rival One,shop@rival.example.com\n"  # would both adopt the seeded one
        "R-2,Rival Two,shop@rival.example.com\n",
    )
    summary = migrate(extract=[str(extract)], target="verifone")
    assert summary["exit_code"] == 1 and summary["ambiguous"] == 2, summary
    ids = snapshot_ids(state_file(), "verifone")
    assert set(ids) == {"K-1", "N-1"}
    assert ids["K-1"][0] == owned and ids["N-1"][0] not in (owned, seeded["id"])
    remote = {c["id"]: c for c in sandbox.admin.state()["verifone"]["customers"]}
    assert remote[seeded["id"]]["company_name"] == "Old", "the seeded customer is untouched"
    assert remote[owned]["company_name"] == "Acme", "K-1's customer is untouched"
    assert len(remote) == 3
