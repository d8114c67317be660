"""What the provider should hold after a sync: computed from the extract with the transforms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import orjson

from connectors.sandbox.server import SandboxServer
from pipelines.extract import read_extract
from transforms.mapping import map_rows, payload_from_remote
from transforms.normalise import normalise
from transforms.validate import validate


def expected_payloads(extract: Path, target: str) -> dict[str, dict[str, Any]]:
    """external_id -> mapped payload, for the valid active rows of ``extract``."""
    frame = read_extract([extract]).frame
    valid = validate(normalise(frame), target).valid
    mapped = map_rows(valid, target, constants={"entity_id": "sandbox-entity"})
    return {
        row["external_id"]: orjson.loads(row["payload"])
        for row in mapped.iter_rows(named=True)
        if row["status"] != "closed"
    }


def snapshot_ids(state: str, target: str) -> dict[str, tuple[str, str]]:
    """external_id -> (remote_id, status) from the state file's snapshot."""
    with duckdb.connect(state, read_only=True) as con:
        rows = con.execute(
            "SELECT external_id, remote_id, status FROM snapshot WHERE target = ?", [target]
        ).fetchall()
    return {ext: (rid, status) for ext, rid, status in rows}


def remote_customers(sandbox: SandboxServer, target: str) -> dict[str, dict[str, Any]]:
    """remote id -> payload-shaped record, as the sandbox holds them now."""
    state = sandbox.admin.state()[target]
    key = "id" if target == "verifone" else "customer_id"
    return {str(c[key]): payload_from_remote(target, c) for c in state["customers"]}


def assert_in_step(sandbox: SandboxServer, state: str, target: str, extract: Path) -> None:
    """The provider holds exactly the extract's active customers: same content, no duplicates."""
    expected = expected_payloads(extract, target)
    ids = snapshot_ids(state, target)
    remote = remote_customers(sandbox, target)
    missing = [ext for ext in expected if ext not in ids]
    assert not missing, f"not in snapshot: {missing}"
    for ext, payload in expected.items():
        remote_id, status = ids[ext]
        assert status == "active", (ext, status)
        assert remote.get(remote_id) == payload, f"{ext}: remote differs from source"
    if target == "verifone":
        # nothing else, in particular no duplicate of a created customer
        live = {rid for rid, status in ids.values() if status == "active"}
        assert set(remote) == live, f"unexpected remote customers: {set(remote) - live}"
