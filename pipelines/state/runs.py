"""The ``runs`` table: a run recorded as ``running`` when it starts, and how it ended."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import polars as pl

from pipelines.state.base import StateBase
from pipelines.state.publish import run_changed


def new_run_id(now: datetime | None = None) -> str:
    """A time-ordered, unique run id: ``20261122T061000.123456Z-1a2b3c``."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S.%fZ}-{secrets.token_hex(3)}"


class Runs(StateBase):
    """Starting and finishing runs."""

    def begin_run(
        self,
        *,
        flow: str,
        target: str,
        mode: str,
        dry_run: bool,
        extract_paths: Sequence[str],
        params: Mapping[str, Any],
    ) -> str:
        """Record a run as ``running`` and return its id. ``params`` must hold no secret."""
        run_id = new_run_id()
        self._run(
            "INSERT INTO runs (run_id, flow, target, mode, dry_run, extract_paths, params,"
            " started_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, now(), 'running')",
            [
                run_id,
                flow,
                target,
                mode,
                dry_run,
                [str(p) for p in extract_paths],
                json.dumps(params, default=str, sort_keys=True),
            ],
        )
        return run_id

    def record_provenance(self, run_id: str, columns: Mapping[str, Any]) -> None:
        """Fill the run's who-and-what columns (migration 006); dicts and lists as JSON."""
        if not columns:
            return
        values = {
            k: json.dumps(v, default=str, sort_keys=True) if isinstance(v, dict | list) else v
            for k, v in columns.items()
        }
        assignments = ", ".join(f"{name} = ?" for name in values)
        self._run(f"UPDATE runs SET {assignments} WHERE run_id = ?", [*values.values(), run_id])
        run_changed(self, run_id)

    def finish_run(
        self, run_id: str, *, status: str, exit_code: int, summary: Mapping[str, Any]
    ) -> None:
        """Record how a run ended."""
        self._run(
            "UPDATE runs SET finished_at = now(), status = ?, exit_code = ?, summary = ?"
            " WHERE run_id = ?",
            [status, exit_code, json.dumps(summary, default=str, sort_keys=True), run_id],
        )
        run_changed(self, run_id)

    def synced_inputs(self, target: str, *, other_than: str) -> tuple[set[str], str | None]:
        """What the other runs of ``target`` (all but ``other_than``, the asking one) synced:
        the SHA-256 of every file they read, and the newest landing-folder night among them.

        A file counts as synced when its run was not a dry run and either finished
        (``done``) or moved it to ``processed/`` (a run that got past planning and its guards,
        whatever happened to its batches). A run a guard stopped synced nothing.
        """
        rows = self._run(
            "SELECT status, inputs FROM runs WHERE target = ? AND NOT dry_run"
            " AND inputs IS NOT NULL AND run_id <> ?",
            [target, other_than],
        )
        hashes: set[str] = set()
        nights: list[str] = []
        for status, inputs in rows:
            for entry in json.loads(inputs):
                if status != "done" and "processed" not in entry:
                    continue
                if entry.get("sha256"):
                    hashes.add(str(entry["sha256"]))
                if entry.get("night") and entry.get("kind", "customers") == "customers":
                    nights.append(str(entry["night"]))
        return hashes, max(nights, default=None)

    def runs(self) -> pl.DataFrame:
        """Every run, newest first."""
        return self._frame("SELECT * FROM runs ORDER BY started_at DESC, run_id DESC")
