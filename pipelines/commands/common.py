"""What every flow-running command shares: Prefect's environment, progress, output, exit codes."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import click
import polars as pl
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from pipelines import crash
from pipelines.exit_codes import ExitCode
from pipelines.settings import SettingsError
from transforms.actions import SUMMARY_ACTIONS

err = Console(stderr=True)


def prepare_prefect(verbose: bool) -> None:
    """Quiet, offline defaults for Prefect, unless the user configured otherwise.

    Must run before Prefect is imported.
    """
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO" if verbose else "WARNING")
    # Prefect waits 20 s for its temporary server to start; under load here it took 15-30 s
    # (measured 2026-12-01), and the run then died with Prefect's RuntimeError.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def fail(message: str, code: ExitCode = ExitCode.BAD_INPUT) -> None:
    """Print ``message`` and exit with ``code`` (no traceback)."""
    # soft_wrap: one line however long (rich wraps at 80 columns when stderr is no terminal)
    # escape: a message may hold brackets ("[csv] delimiter"), which are not markup.
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(int(code))


class RateColumn(ProgressColumn):
    """Records finished per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} rec/s")


class RichProgress:
    """A rich progress bar (rate and ETA) on stderr while calls run."""

    def __init__(self, enabled: bool) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
            disable=not enabled,
        )
        self._task: TaskID | None = None

    def start(self, description: str, total: int) -> None:
        self._progress.start()
        self._task = self._progress.add_task(description, total=total)

    def advance(self, n: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, n)

    def stop(self) -> None:
        self._progress.stop()


def prefect_configured() -> bool:
    """Whether runs are Prefect flow runs: a Prefect API is set (``PREFECT_API_URL``).

    Without one, a CLI run calls the stages itself (:mod:`pipelines.local`) instead of paying
    for Prefect's temporary server.
    """
    return bool(os.environ.get("PREFECT_API_URL"))


def _log_to_stderr(verbose: bool) -> None:
    """custsync's own log lines on stderr, as Prefect's console shows them under a flow."""
    logger = logging.getLogger("custsync")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s | %(levelname)s | custsync - %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    logger.propagate = False


def run_and_exit(
    call: Callable[[], Awaitable[Any]], *, as_json: bool, verbose: bool = False
) -> None:
    """Run a flow (returning a Prefect state) or a local run (returning its summary, when no
    Prefect API is configured) with a progress bar, print its summary and exit with the run's
    exit code.

    Output: the summary on stdout; on stderr, without ``verbose``, only custsync's own lines
    (one for a run that stopped with exit code 2 or more, one naming the crash file of an
    internal error): Prefect's run logs still reach its API, and ``--verbose`` shows them.
    """
    from pipelines import progress

    if not verbose:
        for name in ("prefect.flow_runs", "prefect.task_runs"):
            # They would repeat the summary's message, twice, with Prefect's decorations.
            logging.getLogger(name).propagate = False
    progress.attach(RichProgress(enabled=not as_json and err.is_terminal))
    local = not prefect_configured()

    async def main() -> Any:
        try:
            ended = await call()
        except BaseException as exc:
            if not local or not crash.is_internal(exc):
                raise
            return exc  # a bug outside every stage of a local run: reported as a crash
        if isinstance(ended, dict):
            return ended  # a local run's summary
        return await ended.result(raise_on_failure=False)  # a flow run's final state

    if local:
        _log_to_stderr(verbose)
    else:
        check_prefect_api()
    try:
        summary = asyncio.run(main())
    finally:
        progress.attach(None)
    if isinstance(summary, BaseException) and _is_bug(summary):
        # Raised by the flow outside every stage: Prefect caught it, so nothing recorded it.
        crashed(crash.record_crash(summary, run_id=None, state=None))
    if not isinstance(summary, dict):
        fail(str(summary), ExitCode.BAD_INPUT)  # the run could not start; nothing was sent
        return
    if summary["exit_code"] == ExitCode.INTERNAL:
        # A partial table would only distract: the run id leads to `custsync report --run`.
        if as_json:
            click.echo(json.dumps(summary, default=str))
        click.echo(crash.crash_line(summary["message"], summary.get("run_id")), err=True)
        sys.exit(int(ExitCode.INTERNAL))
    print_summary(summary, as_json=as_json)
    if local and not as_json:
        click.echo(
            "Prefect is not configured (PREFECT_API_URL unset): "
            "the run is recorded in the state file only"
        )
    if summary["exit_code"] >= ExitCode.BAD_INPUT:
        click.echo(f"error: {summary['message']}", err=True)
    sys.exit(int(summary["exit_code"]))


def check_prefect_api() -> None:
    """Exit 2 with one line when a configured Prefect API does not answer at all.

    Prefect would fail the run's start with a ``RuntimeError`` ("Failed to reach API"), which
    is a setting to fix (``PREFECT_API_URL``, or a server to start), not a bug of custsync's.
    Any HTTP answer counts as reachable: Prefect Cloud answers ``/health`` only with a key.
    """
    import httpx
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        return  # no server configured: Prefect starts its temporary one
    try:
        httpx.get(f"{url.rstrip('/')}/health", timeout=10.0)
    except httpx.HTTPError as exc:
        fail(
            f"the Prefect API at {url} does not answer ({type(exc).__name__}): start the "
            "server (`prefect server start`), or unset PREFECT_API_URL to run without one",
            ExitCode.BAD_INPUT,
        )


def crashed(report: crash.CrashReport) -> None:
    """Print the one line of an internal error and exit with code 70."""
    click.echo(report.line(), err=True)
    sys.exit(int(ExitCode.INTERNAL))


def _is_bug(exc: BaseException) -> bool:
    """Whether a flow's failure is a bug rather than a user's error Prefect reported."""
    import duckdb
    from prefect.exceptions import ParameterTypeError

    from connectors.errors import ProviderError
    from pipelines.extract import ExtractError
    from pipelines.state.store import StateError

    expected = (SettingsError, ExtractError, StateError, ProviderError, duckdb.Error, OSError)
    return crash.is_internal(exc) and not isinstance(exc, (*expected, ParameterTypeError))


def print_summary(summary: dict[str, Any], *, as_json: bool) -> None:
    """Print a run summary: one JSON object, or a table."""
    if as_json:
        click.echo(json.dumps(summary, default=str))
        return
    out = Console()
    title = (
        f"{summary.get('flow', 'sync')} → {summary['target']} ({summary['mode']}"
        f"{', dry run' if summary['dry_run'] else ''})  run {summary.get('run_id')}"
    )
    if summary.get("run_id") and "calls" in summary:
        table = Table(title=title, title_justify="left")
        for col in ("action", "planned", "succeeded", "failed"):
            table.add_column(col, justify="left" if col == "action" else "right")
        for action in SUMMARY_ACTIONS:
            c = summary[action]
            table.add_row(action, str(c["planned"]), str(c["succeeded"]), str(c["failed"]))
        out.print(table)
        out.print(
            f"rejected {summary['rejected']} · created {summary['created']} · "
            f"adopted {summary['adopted']} · "
            f"ambiguous {summary['ambiguous']} · drift {summary['drift']} · "
            f"calls {summary['calls']} · retries {summary['retries']} · "
            f"429s {summary['http_429']} · {summary.get('rate_per_s', 0)} calls/s · "
            f"{summary['duration_s']} s",
            highlight=False,
        )
    landing = summary.get("landing")
    if isinstance(landing, dict):
        out.print(landing_line(landing), highlight=False, soft_wrap=True)
    colour = (
        "green" if summary["exit_code"] == 0 else "yellow" if summary["exit_code"] == 1 else "red"
    )
    message = f": {summary['message']}" if summary.get("message") else ""
    out.print(
        f"[{colour}]exit {summary['exit_code']}[/] {summary['status']}{message}", highlight=False
    )


def landing_line(landing: dict[str, Any]) -> str:
    """One line on a landing-folder run's files: the night read and what became of the rest."""
    counts = [
        (len(landing["read"]), "read"),
        (len(landing["superseded"]), "superseded"),
        (len(landing["already_synced"]), "already synced"),
        (len(landing["still_being_written"]), "still being written"),
        (len(landing["instruments"]["read"]), "instruments read"),
        (len(landing["moved"]), "moved to processed/"),
        (len(landing["not_moved"]), "NOT moved (see the log)"),
    ]
    shown = " · ".join(f"{n} {what}" for n, what in counts if n)
    return f"landing folder: night {landing['night'] or 'none'} · {shown or 'no file'}"


def flat(frame: pl.DataFrame) -> pl.DataFrame:
    """Lists joined with ';' (CSV and tables cannot hold nested values)."""
    return frame.with_columns(
        pl.col(name).cast(pl.List(pl.String)).list.join(";")
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.List)
    )


def print_frame(frame: pl.DataFrame, console: Console, *, title: str | None = None) -> None:
    """A frame as a rich table (lists flattened, nulls blank)."""
    frame = flat(frame)
    table = Table(title=title, title_justify="left")
    for col in frame.columns:
        if col == "run_id":
            # The value --run needs: never shortened, whatever the terminal's width.
            longest = max((len(str(v)) for v in frame[col] if v is not None), default=6)
            table.add_column(col, no_wrap=True, min_width=longest)
        else:
            table.add_column(col, overflow="fold")
    for row in frame.iter_rows():
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)
