"""``custsync report``: the audit trail of runs, from the DuckDB state file."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import duckdb
import polars as pl
from rich.console import Console

from pipelines.commands.common import fail, flat, print_frame
from pipelines.exit_codes import ExitCode
from pipelines.settings import SettingsError, load_settings
from pipelines.state.store import StateError, StateStore
from transforms.changes import describe_change, field_changes

# Columns of `v_runs` that fit a terminal; json and csv carry them all.
_TABLE_COLUMNS = (
    "run_id", "flow", "target", "mode", "dry_run", "status", "exit_code", "started_at",
    "duration_s", "planned", "succeeded", "failed", "rejected", "calls", "http_429", "reason",
)  # fmt: skip
# The columns of `v_changes` a terminal shows: which field, from what to what, and why.
_CHANGE_COLUMNS = ("external_id", "action", "field", "before", "after", "why", "occurred_at")


_LAST = 20
_LAST_HTML = 100


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


def _plan(store: StateStore, run_id: str, fmt: str) -> pl.DataFrame:
    """The run's plan with, for each update, the fields it changes (old → new): a list of
    ``{field, old, new}`` in JSON, ``field: old → new`` items in a table or CSV."""
    plan = store.run_plan(run_id, payloads=True)
    changes = [
        field_changes(_loads(base), _loads(new)) if action == "update" else []
        for action, base, new in plan.select("action", "base_payload", "payload").iter_rows()
    ]
    column: pl.Series
    if fmt == "json":
        column = pl.Series("changes", changes, dtype=pl.Object)
    else:
        column = pl.Series("changes", [[describe_change(c) for c in row] for row in changes])
    return plan.drop("payload", "base_payload").with_columns(column)


def _loads(text: str | None) -> dict[str, Any] | None:
    return None if text is None else dict(json.loads(text))


@click.command("report")
@click.option("--run", "run_id", help="Show one run: its summary and its failed records.")
@click.option(
    "--last",
    type=click.IntRange(1),
    help=f"Runs listed (default {_LAST}), or charted with --html (default {_LAST_HTML}).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
@click.option(
    "--plan",
    "show_plan",
    is_flag=True,
    help="With --run: list its planned actions, and each update's changes (old → new).",
)
@click.option(
    "--what",
    type=click.Choice(["runs", "failures", "rejects", "changes"]),
    help="One table: the runs (the one with --run), --run's failures or rejects, or the"
    " changed fields, before and after (--run's, else the last runs'). With --format csv, one"
    " table per file; default: the failures with --run, else the runs.",
)
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, writable=True),
    help="Write a self-contained HTML report (charts, failed and rejected records, a "
    "customer drill-down) of the last runs, or of --run, to this file; it opens offline.",
)
@click.option("--state", type=click.Path(dir_okay=False), help="The DuckDB state file.")
def report_command(
    run_id: str | None,
    last: int | None,
    fmt: str,
    show_plan: bool,
    what: str | None,
    html_file: str | None,
    state: str | None,
) -> None:
    """Show recent runs, one run's summary and failures (--run ID), or its plan (--plan);
    or write them, charted, to an HTML file (--html FILE).

    Reads the audit views of the state file; for anything else, query it in SQL
    (README, "The DuckDB file").
    """
    if html_file is not None and (show_plan or what or fmt == "csv"):
        fail("--html writes the whole report: it takes --run, --last, --state and --format json")
    if show_plan and run_id is None:
        fail("--plan needs --run ID")
    if what in ("failures", "rejects") and run_id is None:
        fail(f"--what {what} needs --run ID")
    try:
        settings = load_settings()
    except SettingsError as exc:
        fail(str(exc))
        return
    path = Path(state) if state else settings.state
    if not path.is_file():
        fail(f"no state file at {path}: run a sync first, or pass --state")
    try:
        # A running sync releases the file between its writes: wait for a gap.
        store = StateStore(path, read_only=True, wait_s=settings.state_wait)
    except StateError as exc:  # locked past the wait, not DuckDB, not custsync's
        fail(str(exc))
        return
    try:
        with store:
            if html_file is not None:
                _html(store, path, Path(html_file), run_id=run_id, last=last or _LAST_HTML, fmt=fmt)
            else:
                _report(
                    store, path, run_id=run_id, last=last or _LAST, fmt=fmt, show_plan=show_plan,
                    what=what,
                )  # fmt: skip
    except duckdb.Error as exc:  # e.g. a view a newer custsync changed
        fail(f"{path}: cannot read the audit views ({' '.join(str(exc).split())})")
    sys.exit(int(ExitCode.OK))


def _html(
    store: StateStore, state: Path, out: Path, *, run_id: str | None, last: int, fmt: str
) -> None:
    # plotly and the page builder load here only: the table and CSV reports stay light.
    from pipelines.htmlreport import build_html, write_html

    if run_id is not None and store.run_summary(run_id) is None:
        fail(f"no run {run_id!r} in {state}")
    document, facts = build_html(store.con, last=last, run_id=run_id, source=str(state))
    try:
        facts = write_html(out, document, facts)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    if fmt == "json":
        click.echo(json.dumps(facts.summary()))
        return
    click.echo(
        f"wrote {out} ({facts.bytes / 1e6:.1f} MB): {facts.runs} run(s), "
        f"{facts.records_total} failed or rejected record(s), {facts.customers} customer(s)"
    )


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
        _print(_plan(store, run_id, fmt), fmt, f"plan of run {run_id}")
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
