"""Issue 15's nightly case through the real CLI, against a running Prefect server.

Two over-long first names against an existing snapshot stopped the planner with a polars
panic, no summary and nothing planned. Now: exit 1, two rejects, nothing sent, nothing lost.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pytest

from connectors.sandbox.server import SandboxServer
from tests.e2e.conftest import DAY1, total_calls
from tests.e2e.prefect_server import PrefectServer
from tests.e2e.test_cli import run_cli

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with PrefectServer(tmp_path_factory.mktemp("prefect-server")) as server:
        server.wait()
        yield server.api_url


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_two_over_long_names_against_a_snapshot_are_rejects_not_a_crash(
    kind: str, tmp_path: Path, env: dict[str, str], sandbox: SandboxServer, api_url: str
) -> None:
    env = {**env, "PREFECT_API_URL": api_url}
    assert run_cli("sync", str(DAY1), "--target", "verifone", env=env).returncode == 0
    day1 = pl.read_csv(DAY1, infer_schema=False)
    day2 = day1.with_columns(
        pl.when(pl.col("external_id").is_in(["CRM-00003", "CRM-00031"]))
        .then(pl.lit("Maximiliane-Josefinexyz"))  # 23 characters; Verifone allows 22
        .otherwise(pl.col("first_name"))
        .alias("first_name")
    )
    path = tmp_path / f"day2.{kind}"
    day2.write_csv(path) if kind == "csv" else day2.write_parquet(path)
    before = total_calls(sandbox)

    done = run_cli("sync", str(path), "--target", "verifone", "--mode", "mirror", "--json", env=env)

    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr and "panicked" not in done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["rejected"] == 2 and summary["delete"]["planned"] == 0
    assert total_calls(sandbox) == before  # nothing to send: the rest is unchanged
    with duckdb.connect(env["CUSTSYNC_STATE"], read_only=True) as con:
        rows = con.execute(
            "SELECT external_id, field, rule, value FROM rejects WHERE run_id = ? ORDER BY 1",
            [summary["run_id"]],
        ).fetchall()
        snapshot = con.execute("SELECT count(*) FROM snapshot WHERE target = 'verifone'")
        assert snapshot.fetchone() == (40,)
    assert rows == [
        ("CRM-00003", "first_name", "max_length", "Max***"),
        ("CRM-00031", "first_name", "max_length", "Max***"),
    ]


def test_a_prefect_api_that_does_not_answer_is_exit_2_not_a_crash(env: dict[str, str]) -> None:
    from tests.e2e.prefect_server import free_port

    url = f"http://127.0.0.1:{free_port()}/api"  # nobody listens there
    done = run_cli("sync", str(DAY1), "--target", "sumup", env={**env, "PREFECT_API_URL": url})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr and "crash" not in done.stderr
    assert url in done.stderr and "PREFECT_API_URL" in done.stderr


def test_damaged_parquet_pages_are_exit_2_naming_the_file(
    tmp_path: Path, env: dict[str, str], sandbox: SandboxServer, api_url: str
) -> None:
    # The footer is intact, so the file opens; its pages fail when the planner decodes them.
    env = {**env, "PREFECT_API_URL": api_url}
    assert run_cli("sync", str(DAY1), "--target", "sumup", env=env).returncode == 0
    path = tmp_path / "day2.parquet"
    pl.read_csv(DAY1, infer_schema=False).write_parquet(path, compression="uncompressed")
    content = bytearray(path.read_bytes())
    content[100:3000] = b"\xff" * 2900
    path.write_bytes(bytes(content))
    before = total_calls(sandbox)

    done = run_cli("sync", str(path), "--target", "sumup", "--mode", "mirror", env=env)

    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr and "crash" not in done.stderr
    assert "damaged data pages" in done.stderr and str(path) in done.stderr
    assert total_calls(sandbox) == before
    with duckdb.connect(env["CUSTSYNC_STATE"], read_only=True) as con:
        assert con.execute("SELECT count(*) FROM snapshot").fetchone() == (40,)
