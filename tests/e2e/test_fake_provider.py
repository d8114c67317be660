"""A third provider registered from tests/ syncs through the real pipeline.

Fakepay (``tests/providers/fakepay.py``) is declared with the registry's public surface only;
nothing under ``pipelines/`` names it. The sync flow runs under Prefect as for Verifone: plan
from the extract, creates, a rerun that sends nothing, then a mirror day with get-merge-put
updates and deletes, every call and outcome in the DuckDB file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
from click.testing import CliRunner

from connectors.providers.registry import registered
from pipelines.cli import cli
from pipelines.extract import read_extract
from tests.e2e.conftest import DAY1, DAY2, state_file, sync
from tests.providers.fakepay import TOKEN, FakepayApi, provider
from transforms.mapping import map_rows, payload_from_remote
from transforms.normalise import normalise
from transforms.validate import validate

ACCOUNT = "acct-7"


@pytest.fixture
def fakepay(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[FakepayApi]:
    api = FakepayApi()
    monkeypatch.setenv("CUSTSYNC_FAKEPAY_TOKEN", TOKEN)
    monkeypatch.setenv("CUSTSYNC_FAKEPAY_ACCOUNT_ID", ACCOUNT)
    with registered(provider(api)):  # type: ignore[arg-type]
        yield api


def _expected(extract: Path) -> dict[str, dict[str, Any]]:
    """external_id -> the body Fakepay should hold, for the extract's valid active rows."""
    valid = validate(normalise(read_extract([extract]).frame), "fakepay").valid
    mapped = map_rows(valid, "fakepay", constants={"account": ACCOUNT})
    return {
        row["external_id"]: orjson.loads(row["payload"])
        for row in mapped.iter_rows(named=True)
        if row["status"] == "active"
    }


def _rejected_keys(extract: Path) -> set[str]:
    frame = read_extract([extract]).frame.collect()
    valid = validate(normalise(frame.lazy()), "fakepay").valid
    return set(frame["external_id"].drop_nulls()) - set(valid["external_id"])


def _held(api: FakepayApi, con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    """external_id -> what Fakepay holds, through the snapshot's remote ids."""
    owners = dict(
        con.execute(
            "SELECT remote_id, external_id FROM snapshot WHERE target = 'fakepay'"
        ).fetchall()
    )
    return {
        owners[remote_id]: payload_from_remote("fakepay", record)
        for remote_id, record in api.customers.items()
    }


def test_a_third_provider_syncs_through_the_real_pipeline(fakepay: FakepayApi) -> None:
    first = sync(extract=[str(DAY1)], target="fakepay")
    day1 = _expected(DAY1)
    assert first["status"] == "done", first
    assert first["create"]["succeeded"] == len(day1) == len(fakepay.customers)
    assert first["rejected"] >= 1  # rows Fakepay's own rules refuse (phone, e-mail)
    with duckdb.connect(state_file(), read_only=True) as con:
        assert _held(fakepay, con) == day1
        calls = con.execute("SELECT count(*) FROM calls WHERE target = 'fakepay'").fetchone()
        assert calls is not None and calls[0] == len(fakepay.requests)
    assert all(c["account"] == ACCOUNT for c in fakepay.customers.values())

    sent = len(fakepay.requests)
    again = sync(extract=[str(DAY1)], target="fakepay")
    assert again["calls"] == 0 and len(fakepay.requests) == sent

    day2 = sync(extract=[str(DAY2)], target="fakepay", mode="mirror", allow_deletes=True)
    assert day2["status"] == "done", day2
    assert day2["update"]["succeeded"] >= 1 and day2["delete"]["succeeded"] >= 1
    methods = {method for method, _, _ in fakepay.requests[sent:]}
    assert {"GET", "PUT", "DELETE", "POST"} <= methods
    with duckdb.connect(state_file(), read_only=True) as con:
        # A key whose row is rejected is never deleted: it keeps what it held.
        kept = {k: day1[k] for k in _rejected_keys(DAY2) if k in day1}
        assert kept and _held(fakepay, con) == _expected(DAY2) | kept
        outcomes = con.execute(
            "SELECT count(*) FROM outcomes WHERE target = 'fakepay' AND result = 'succeeded'"
        ).fetchone()
        assert outcomes is not None and outcomes[0] >= len(day1)


def test_the_cli_offers_a_registered_provider(fakepay: FakepayApi) -> None:
    shown = CliRunner().invoke(cli, ["sync", "--help"])
    assert "fakepay" in shown.output
    refused = CliRunner().invoke(cli, ["sync", "--target", "stripe", str(DAY1)])
    assert refused.exit_code == 2 and "fakepay" in refused.output
