"""The ``custsync`` command line.

Subcommands live in their own modules and are imported only when invoked, so that
``custsync sandbox`` starts in well under a second and does not pay for Prefect's import.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import logging
import os
import sys
from typing import Any

import click

from pipelines import crash
from pipelines.exit_codes import ExitCode

# name -> "module:attribute" of a click.Command
_COMMANDS: dict[str, tuple[str, str]] = {
    "sync": ("pipelines.commands.sync:sync_command", "Sync a customer extract to a provider."),
    "migrate": (
        "pipelines.commands.migrate:migrate_command",
        "First sync into a provider that already holds customers.",
    ),
    "report": ("pipelines.commands.report:report_command", "Show the audit trail of runs."),
    "forget": (
        "pipelines.commands.forget:forget_command",
        "Erase customers on request, at the provider and in the state file.",
    ),
    "sandbox": (
        "connectors.sandbox.cli:sandbox_command",
        "Serve both provider APIs locally (the sandbox).",
    ),
    "demo": ("pipelines.commands.demo:demo_command", "Run the end-to-end demo on the sandbox."),
    "apply": (
        "pipelines.commands.apply:apply_command",
        "Execute a dry run's stored plan, exactly, or refuse.",
    ),
    "alerts": (
        "pipelines.commands.alerts:alerts_command",
        "Apply the Prefect Automations that alert on failed, rejecting and late runs.",
    ),
    "fleet": (
        "pipelines.commands.fleet:fleet_command",
        "Sync every tenant of a tenants file, as a Prefect fleet run.",
    ),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target[0].split(":")
        module = importlib.import_module(module_name)
        command: click.Command = getattr(module, attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help comes from the table above so `custsync --help` imports nothing heavy.
        rows = [(name, help_text) for name, (_, help_text) in _COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="custsync")
def cli() -> None:
    """custsync: keep Verifone and SumUp customer vaults in step with your CRM.

    \b
    Exit codes:
      0  all done
      1  some records failed or were rejected
      2  bad usage, configuration or input file
      3  a guard stopped the run (nothing was sent)
      4  the provider refused our credentials (401/403); the run stopped
      70 internal error (a bug): one line names its crash file
         ($CUSTSYNC_CRASH_DIR, default: crashes/ beside the state file)
    """


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point.

    The last crash boundary: an internal error no command handled becomes a crash file, one line
    on stderr and exit code 70 (:mod:`pipelines.crash`), never a traceback.
    """
    args = sys.argv[1:] if argv is None else argv
    program = args == sys.argv[1:]  # the process's own command line, not a caller's list
    if program:
        atexit.register(_skip_teardown)  # first registered, so the last handler to run
    try:
        return cli.main(args=argv, prog_name="custsync", standalone_mode=True)
    except SystemExit as exc:
        if program and (exc.code is None or isinstance(exc.code, int)):
            _EXIT.append(int(exc.code or 0))
        raise
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except BaseException as exc:
        if not crash.is_internal(exc):
            raise  # SystemExit carries the exit code of every handled outcome
        report = crash.record_crash(
            exc, run_id=None, state=_state_file(args), argv=["custsync", *args]
        )
        click.echo(report.line(), err=True)
        sys.exit(int(ExitCode.INTERNAL))


_EXIT: list[int] = []
"""The exit code of the command this process ran (set as its ``SystemExit`` leaves main)."""


def _skip_teardown() -> None:
    """End a process that imported Prefect without tearing the interpreter down.

    Registered when main() starts, so it runs after every exit handler registered since
    (Prefect's event and log queues were drained before them, at thread shutdown; its loop
    threads stop in theirs), with the command's own exit code. What is left is freeing the
    ~2,000 modules Prefect and polars import: 0.9-1.8 s per run measured here under load
    (issue 10), for nothing; the run closed its state file. Only when main() parses the
    process's own command line (a caller's ``main([...])`` returns to it); an exit handler a
    wrapper registered before main() does not run.
    """
    if not _EXIT or "prefect" not in sys.modules:
        return
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
            stream.flush()
    os._exit(_EXIT[-1])


def _state_file(args: list[str]) -> str | None:
    """The state file the command was given or configured with: its crash folder is beside it."""
    for index, arg in enumerate(args):
        if arg == "--state" and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith("--state="):
            return arg.partition("=")[2]
    from pipelines.settings import SettingsError, load_settings

    try:
        return str(load_settings().state)
    except SettingsError:
        return None


if __name__ == "__main__":
    main()
