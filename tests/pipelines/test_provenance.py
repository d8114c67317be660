"""Who and what started a run: recorded without a secret."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from connectors.secret import Secret
from pipelines.provenance import Origin, effective_settings, file_facts, provenance
from pipelines.run import Run
from pipelines.settings import Settings
from pipelines.spec import RunSpec
from pipelines.state.store import StateStore

REPO = Path(__file__).resolve().parents[2]


def test_secrets_appear_only_as_set_or_unset() -> None:
    settings = Settings().with_provider("sumup", api_key=Secret("sup_sk_very_secret"))
    shown = effective_settings(settings)
    assert shown["sumup"]["api_key"] == "set" and shown["verifone"]["token"] == "unset"
    assert shown["verifone"]["entity_id"] == "sandbox-entity"
    assert shown["max_reject_fraction"] == 0.05 and shown["state"] == "data/custsync.duckdb"
    assert "sup_sk_very_secret" not in json.dumps(shown)


def test_file_facts_are_path_size_and_sha256(tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    big.write_bytes(b"x" * (3 << 20) + b"tail")  # more than one read chunk
    (fact,) = file_facts([big])
    assert fact == {
        "path": str(big),
        "bytes": (3 << 20) + 4,
        "sha256": hashlib.sha256(big.read_bytes()).hexdigest(),
    }


def test_a_run_records_who_and_what(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTSYNC_STATE", str(tmp_path / "s.duckdb"))
    monkeypatch.setenv("CUSTSYNC_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("CUSTSYNC_SUMUP_API_KEY", "sup_sk_never_stored")
    spec = RunSpec(flow="sync", extract=(str(REPO / "data" / "customers.csv"),), target="sumup")
    run = Run.open(spec, Origin(prefect_flow_run_id="fr-1", prefect_deployment="nightly"))
    run.store.close()
    with StateStore(tmp_path / "s.duckdb", read_only=True) as store:
        (row,) = store.runs().to_dicts()
    assert row["prefect_flow_run_id"] == "fr-1" and row["prefect_deployment"] == "nightly"
    assert row["custsync_version"] and row["host"] and row["os_user"]
    settings = json.loads(row["settings"])
    assert settings["sumup"]["api_key"] == "set"
    assert "sup_sk_never_stored" not in json.dumps(row, default=str)
    assert provenance(Settings(), Origin()).prefect_flow_run_id is None
