"""Dry-run plans applied later: the snapshot's fingerprint, the planned run, and the copy of its
plan (and rejects) under the run that applies it (migration 009, ``custsync apply``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from pipelines.state.base import StateBase
from pipelines.state.publish import run_changed

FINGERPRINT_SQL = """
    SELECT count(*), coalesce(bit_xor(md5_number(concat_ws('|', external_id, content_hash,
           coalesce(remote_id, ''), status))), 0)
    FROM snapshot WHERE target = ?
"""
"""SQL: the row count and the XOR of every row's MD5 (rows are unique per key, so none cancel
another); MD5 rather than DuckDB's ``hash``, which is not promised stable across versions."""


@dataclass(frozen=True)
class PlannedRun:
    """What an apply needs to know of the dry run it applies."""

    run_id: str
    flow: str
    target: str
    mode: str
    dry_run: bool
    status: str
    extract_paths: tuple[str, ...]
    params: Mapping[str, Any]
    inputs: tuple[Mapping[str, Any], ...]
    """``[{path, bytes, sha256}]`` of every extract file the dry run read."""
    snapshot_fingerprint: str | None
    message: str | None
    """Why the dry run stopped, if it did."""
    unchanged: int
    """Valid rows the dry run found unchanged (its summary's count)."""


def _json(text: str | None, default: Any) -> Any:
    return default if text is None else json.loads(text)


class AppliedPlans(StateBase):
    """Fingerprints, planned runs and the runs that applied them."""

    def snapshot_fingerprint(self, target: str) -> str:
        """``count:xor`` of ``target``'s snapshot rows: any row added, removed or changed (key,
        content hash, remote id, status) changes it."""
        ((count, xor),) = self._run(FINGERPRINT_SQL, [target])
        return f"{int(count)}:{int(xor):032x}"

    def record_fingerprint(self, run_id: str, fingerprint: str) -> None:
        """Store the snapshot fingerprint a dry run planned against."""
        self._run(
            "UPDATE runs SET snapshot_fingerprint = ? WHERE run_id = ?", [fingerprint, run_id]
        )

    def planned_run(self, run_id: str) -> PlannedRun | None:
        """The run ``run_id`` as an apply reads it, or ``None`` when there is no such run."""
        rows = self._run(
            "SELECT run_id, flow, target, mode, dry_run, status, extract_paths, params, inputs,"
            " snapshot_fingerprint, summary->>'message', summary->'unchanged'->>'planned'"
            " FROM runs WHERE run_id = ?",
            [run_id],
        )
        if not rows:
            return None
        rid, flow, target, mode, dry, status, paths, params, inputs, fp, message, unchanged = rows[
            0
        ]
        return PlannedRun(
            run_id=rid,
            flow=flow,
            target=target,
            mode=mode,
            dry_run=bool(dry),
            status=status,
            extract_paths=tuple(paths or ()),
            params=_json(params, {}),
            inputs=tuple(_json(inputs, [])),
            snapshot_fingerprint=fp,
            message=message,
            unchanged=int(unchanged or 0),
        )

    def applied_by(self, plan_run_id: str) -> list[tuple[str, str]]:
        """``(run_id, status)`` of the runs that applied ``plan_run_id``'s plan (at most one,
        unless a file was edited by hand)."""
        rows = self._run(
            "SELECT run_id, status FROM runs WHERE plan_run_id = ? ORDER BY started_at",
            [plan_run_id],
        )
        return [(str(run_id), str(status)) for run_id, status in rows]

    def claim_plan(self, run_id: str, plan_run_id: str) -> int:
        """Make ``run_id`` the one run applying ``plan_run_id``: mark it, and copy the plan
        rows and rejects under it (one transaction). Returns the plan rows copied.

        The copies keep the plan ids, payloads and the stored merge bases, so the journal,
        recovery and the audit views see an ordinary run that planned exactly these rows.
        """
        with self.transaction():
            self._run("UPDATE runs SET plan_run_id = ? WHERE run_id = ?", [plan_run_id, run_id])
            self._run(
                "INSERT INTO plan (run_id, target, plan_id, external_id, action, status,"
                " remote_id, payload, content_hash, base_payload, reason, planned_at, content_key)"
                " SELECT ?, target, plan_id, external_id, action, status, remote_id, payload,"
                " content_hash, base_payload, reason, planned_at, content_key"
                " FROM plan WHERE run_id = ?",
                [run_id, plan_run_id],
            )
            self._run(
                "INSERT INTO rejects SELECT ?, target, external_id, field, rule, message, value,"
                " source_row, rejected_at FROM rejects WHERE run_id = ?",
                [run_id, plan_run_id],
            )
            ((copied,),) = self._run("SELECT count(*) FROM plan WHERE run_id = ?", [run_id])
        run_changed(self, run_id)  # its planned / rejected counts (pipelines.state.publish)
        return int(copied)

    def plan_redacted(self, run_id: str) -> bool:
        """Whether retention has redacted personal values of ``run_id``'s plan rows (a pass
        whose limit is later than the run's start)."""
        rows = self._run(
            "SELECT EXISTS (SELECT 1 FROM redactions r JOIN runs p ON p.run_id = ?"
            " WHERE r.table_name = 'plan' AND r.older_than > p.started_at)",
            [run_id],
        )
        return bool(rows[0][0])

    def plan_forgotten(self, run_id: str) -> list[str]:
        """The keys of ``run_id``'s plan forgotten since (on the suppression list)."""
        rows = self._run(
            "SELECT DISTINCT p.external_id FROM plan p JOIN suppressed s"
            " ON s.target = p.target AND s.external_id = p.external_id"
            " WHERE p.run_id = ? ORDER BY 1",
            [run_id],
        )
        return [str(key) for (key,) in rows]

    def planned_unadoptable(self, run_id: str) -> int:
        """``run_id``'s planned adoptions without a customer (ambiguous, or their look-up
        failed): what a dry run reports as ``ambiguous`` before anything is recorded."""
        ((count,),) = self._run(
            "SELECT count(*) FROM plan WHERE run_id = ? AND action = 'adopt' AND remote_id IS NULL",
            [run_id],
        )
        return int(count)

    def replace_plan_rows(self, run_id: str, rows: pl.DataFrame) -> None:
        """Rewrite ``rows`` of ``run_id``'s stored plan, found by their ``old_plan_id``, with
        their new ``plan_id``, ``action``, ``remote_id`` and ``reason`` (one transaction):
        a migration's adoption decisions, made before anything is sent."""
        if rows.height == 0:
            return
        with self.transaction():
            self._insert(
                rows.select("old_plan_id", "plan_id", "action", "remote_id", "reason"),
                "UPDATE plan SET plan_id = r.plan_id, action = r.action,"
                " remote_id = r.remote_id, reason = r.reason FROM {batch} r"
                " WHERE plan.run_id = $run_id AND plan.plan_id = r.old_plan_id",
                {"run_id": run_id},
            )
