"""``custsync report``: the audit trail of runs, from the DuckDB state file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import duckdb
import polars as pl
from rich.console import Console

from pipelines.commands.common import fail, flat, print_frame
from pipelines.exit_codes import ExitCode
from pipelines.settings import SettingsError, load_settings
from pipelines.state.store import StateError, StateStore

# Columns of `v_runs` that fit a terminal; json and csv carry them all.
_TABLE_COLUMNS = (
    "run_id", "flow", "target", "mode", "dry_run", "status", "exit_code", "started_at",
    "duration_s", "planned", "succeeded", "failed", "rejected", "calls", "http_429", "reason",
)  # fmt: skip
# The columns of `v_changes` a terminal shows: which field, from what to what, and why.
_CHANGE_COLUMNS = ("external_id", "action", "field", "before", "after", "why", "occurred_at")


def _print(frame: pl.DataFrame, fmt: str, title: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(frame.to_dicts(), default=str))
        return
    frame = flat(frame)
    if fmt == "csv":
        click.echo(frame.write_csv(), nl=False)
        return
    if set(_TABLE_COLUMNS) <= set(frame.columns):
        frame = frame.select(_TABLE_COLUMNS)
    elif "why" in frame.columns:
        frame = frame.select("run_id", "target", *_CHANGE_COLUMNS)
    print_frame(frame, Console(), title=title)


@click.command("report")
@click.option("--run", "run_id", help="Show one run: its summary and its failed records.")
@click.option("--last", type=click.IntRange(1), default=20, show_default=True, help="Runs listed.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
@click.option("--plan", "show_plan", is_flag=True, help="With --run: list its planned actions.")
@click.option(
    "--what",
    type=click.Choice(["runs", "failures", "rejects", "changes"]),
    help="One table: the runs (the one with --run), --run's failures or rejects, or the"
    " changed fields, before and after (--run's, else the last runs'). With --format csv, one"
    " table per file; default: the failures with --run, else the runs.",
)
@click.option("--state", type=click.Path(dir_okay=False), help="The DuckDB state file.")
def report_command(
    run_id: str | None, last: int, fmt: str, show_plan: bool, what: str | None, state: str | None
) -> None:
    """Show recent runs, one run's summary and failures (--run ID), or its plan (--plan).

    Reads the audit views of the state file; for anything else, query it in SQL
    (README, "The DuckDB file").
    """
    if show_plan and run_id is None:
        fail("--plan needs --run ID")
    if what in ("failures", "rejects") and run_id is None:
        fail(f"--what {what} needs --run ID")
    try:
        path = Path(state) if state else load_settings().state
    except SettingsError as exc:
        fail(str(exc))
        return
    if not path.is_file():
        fail(f"no state file at {path}: run a sync first, or pass --state")
    try:
        store = StateStore(path, read_only=True)
    except StateError as exc:  # locked by a running sync, not DuckDB, not custsync's
        fail(str(exc))
        return
    try:
        with store:
            _report(store, path, run_id=run_id, last=last, fmt=fmt, show_plan=show_plan, what=what)
    except duckdb.Error as exc:  # e.g. a view a newer custsync changed
        fail(f"{path}: cannot read the audit views ({' '.join(str(exc).split())})")
    sys.exit(int(ExitCode.OK))


def _report(
    store: StateStore,
    path: Path,
    *,
    run_id: str | None,
    last: int,
    fmt: str,
    show_plan: bool,
    what: str | None,
) -> None:
    if run_id is None and what == "changes":
        _print(store.changes(last_runs=last), fmt, f"changes of the last {last} runs ({path})")
        return
    if run_id is None:
        _print(store.recent_runs(last), fmt, f"last {last} runs ({path})")
        return
    summary = store.run_summary(run_id)
    if summary is None:
        fail(f"no run {run_id!r} in {path}")
        return
    if show_plan:
        _print(store.run_plan(run_id), fmt, f"plan of run {run_id}")
        return
    if what == "runs":
        _print(pl.DataFrame([summary]), fmt, f"run {run_id}")
        return
    if what == "rejects":
        _print(store.run_rejects(run_id), fmt, f"rejects of run {run_id}")
        return
    if what == "changes":
        _print(store.changes(run_id), fmt, f"changes of run {run_id}")
        return
    failures = store.run_failures(run_id)
    if fmt == "csv" or what == "failures":
        # One table: a CSV file holds one header, so polars and DuckDB read it back.
        _print(failures, fmt, f"failed, ambiguous and rejected records of run {run_id}")
        return
    if fmt == "json":
        click.echo(json.dumps({"run": summary, "failures": failures.to_dicts()}, default=str))
    else:
        _print(pl.DataFrame([summary]), fmt, f"run {run_id}")
        _print(failures, fmt, "failed, ambiguous and rejected records")
