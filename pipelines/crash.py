"""What custsync does about its own bugs: a crash file and one line, never a traceback.

An *internal error* is an exception no stage expected: not a bad file, setting or state file,
not a provider's answer (those stop the run with exit code 1-4), but a bug in custsync or in a
library it drives. It is written to a crash file and the process exits with
:data:`~pipelines.exit_codes.ExitCode.INTERNAL` (70, ``EX_SOFTWARE``).

The crash file holds what a developer needs and nothing a customer or an operator would not
want copied into a bug report:

- the exception's qualified type, and the chain of exceptions that led to it;
- the traceback frames (file, line, function, and the line of source code), but no local
  variable values: a frame's locals hold customer rows and credentials;
- no exception messages and no notes: they quote data (polars: ``conversion from `str` to
  `i64` failed ... ["01234", ...]``; DuckDB: ``Could not convert string 'Ann' to INT32``; httpx:
  a URL whose query holds an e-mail address). Only their length is kept. Scrubbing a message
  would need to know every way a value can appear in it; the type and the frames locate a bug;
- the versions of custsync, Python, its main libraries and the OS, the run id, and the command
  line with every value that could be free text (paths, ids, a future secret option) replaced by
  ``<…>``: option names, numbers and the closed choices (targets, modes, formats) stay.

Where: ``$CUSTSYNC_CRASH_DIR``, else a ``crashes/`` folder next to the state file, else (when that
cannot be written) ``custsync-crashes/`` in the system's temporary directory. It is read from the
environment only, not from ``custsync.toml``: the crash handler must work when the settings are
what cannot be loaded.
"""

from __future__ import annotations

import os
import platform
import secrets
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

CRASH_DIR_ENV = "CUSTSYNC_CRASH_DIR"
"""Environment variable naming the crash file folder."""

_PACKAGES = ("custsync", "polars", "duckdb", "prefect", "httpx", "pyarrow")
# Values of the command line that are never free text: the CLI's closed choices.
_CHOICES = frozenset(
    {"sync", "migrate", "report", "sandbox", "demo"}
    | {"mirror", "upsert", "update-only", "create-only", "table", "json", "csv"}
)


def is_internal(exc: BaseException) -> bool:
    """Whether ``exc`` is a bug to report rather than a request to stop.

    Every :class:`Exception` is (the expected ones are caught before this is asked). Of the
    other :class:`BaseException` s only a Rust panic is: pyo3 raises
    ``pyo3_runtime.PanicException`` (polars, orjson, polars-hash...) as a ``BaseException`` so
    that ``except Exception`` does not swallow it, and each extension module defines its own
    class, so it is matched by name. ``KeyboardInterrupt``, ``SystemExit``, ``GeneratorExit``,
    ``asyncio.CancelledError`` and Prefect's cancellation signals are not bugs and pass through.
    """
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


@dataclass(frozen=True)
class CrashReport:
    """A crash file written (or not: ``path`` is ``None`` when no folder could be written)."""

    error: str
    """The exception's type name, e.g. ``PanicException``."""
    path: Path | None
    run_id: str | None

    @property
    def message(self) -> str:
        """What the run row and the summary say: the error and where its details are."""
        where = f"details in {self.path}" if self.path else "no crash file could be written"
        return f"internal error ({self.error}); {where}"

    def line(self) -> str:
        """The one line printed on stderr."""
        return crash_line(self.message, self.run_id)


def crash_line(message: str, run_id: str | None) -> str:
    """The one line on stderr for a crash :attr:`CrashReport.message` describes."""
    run = f" (run {run_id})" if run_id else ""
    return f"custsync: {message}{run}; please report it"


def crash_dir(state: str | Path | None) -> Path:
    """Where crash files go: ``$CUSTSYNC_CRASH_DIR``, else ``crashes/`` beside ``state``."""
    configured = os.environ.get(CRASH_DIR_ENV)
    if configured:
        return Path(configured)
    state_path = Path(state) if state else Path("data/custsync.duckdb")
    return state_path.parent / "crashes"


def record_crash(
    exc: BaseException,
    *,
    run_id: str | None,
    state: str | Path | None,
    argv: Sequence[str] | None = None,
) -> CrashReport:
    """Write the crash file for ``exc`` and return what to tell the user.

    Never raises for a folder it cannot write: it tries the fallback, then gives up on the file
    (the one line still names the error).
    """
    text = crash_text(exc, run_id=run_id, argv=sys.argv if argv is None else argv)
    now = datetime.now(UTC)
    name = f"{now:%Y%m%dT%H%M%S}Z-{secrets.token_hex(3)}-crash.txt"
    for folder in (crash_dir(state), Path(tempfile.gettempdir()) / "custsync-crashes"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            # 0600: nothing secret is in it, but a traceback is nobody else's business
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
        except OSError:
            continue
        return CrashReport(type(exc).__name__, path, run_id)
    return CrashReport(type(exc).__name__, None, run_id)


@contextmanager
def reporting(on_crash: Callable[[BaseException], None]) -> Iterator[None]:
    """Hand an internal error raised in the block to ``on_crash`` instead of raising it.

    The one place besides the CLI entry where everything is caught: a crash boundary. Anything
    that is not :func:`is_internal` (Ctrl-C, exit, cancellation) is raised on.
    """
    try:
        yield
    except BaseException as exc:
        if not is_internal(exc):
            raise
        on_crash(exc)


def crash_text(exc: BaseException, *, run_id: str | None, argv: Sequence[str]) -> str:
    """The crash file's content (see the module's docstring for what is left out, and why)."""
    lines = [
        "custsync crash report: please attach this file to a bug report.",
        "It holds no exception message, no local variable and no credential.",
        "",
        f"time:    {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}",
        f"run id:  {run_id or 'none (no run was recorded)'}",
        f"error:   {_qualified(exc)}",
        f"command: {' '.join(safe_argv(argv))}",
        "",
        "versions:",
        *(f"  {name:<8} {version}" for name, version in versions().items()),
        "",
        "traceback (frames only; messages withheld as they can quote customer data):",
        *_chain(exc),
    ]
    return "\n".join(lines) + "\n"


def versions() -> dict[str, str]:
    """custsync's, Python's, the main libraries' and the OS's versions (none is imported)."""
    found = {"python": f"{platform.python_version()} ({platform.python_implementation()})"}
    for package in _PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    found["os"] = platform.platform()
    return found


def safe_argv(argv: Sequence[str]) -> list[str]:
    """The command line with every value that could be free text replaced by ``<…>``."""
    if not argv:
        return []
    kept = [Path(argv[0]).name]
    for arg in argv[1:]:
        if arg.startswith("-"):
            name, sep, value = arg.partition("=")
            kept.append(name + (sep + _safe_value(value) if sep else ""))
        else:
            kept.append(_safe_value(arg))
    return kept


def _safe_value(value: str) -> str:
    from connectors.providers.registry import provider_names

    if value in _CHOICES or value in provider_names() or _is_number(value):
        return value
    return "<…>"


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _qualified(exc: BaseException) -> str:
    kind = type(exc)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def _chain(exc: BaseException) -> list[str]:
    """Every exception that led to ``exc``, oldest first, as Python prints them, minus
    messages."""
    chain: list[tuple[BaseException, str | None]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    link: str | None = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, "direct cause"
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, "context"
        else:
            current = None
    lines: list[str] = []
    for index, (item, _) in enumerate(reversed(chain)):
        if index:
            # the link stored with the *later* exception says how it relates to this one
            later_link = chain[len(chain) - index][1]
            lines += [
                "",
                "The above exception was the direct cause of the following exception:"
                if later_link == "direct cause"
                else "During handling of the above exception, another exception occurred:",
                "",
            ]
        lines += _one(item)
    return lines


def _one(exc: BaseException) -> list[str]:
    frames = traceback.extract_tb(exc.__traceback__)
    lines = ["Traceback (most recent call last):"]
    lines += [line.rstrip("\n") for line in frames.format()]
    length = _message_length(exc)
    lines.append(_qualified(exc) + (f" (message withheld: {length} characters)" if length else ""))
    if isinstance(exc, BaseExceptionGroup):
        for number, inner in enumerate(exc.exceptions, start=1):
            lines += ["", f"  sub-exception {number} of {len(exc.exceptions)}:"]
            lines += [f"  {line}" for line in _chain(inner)]
    return lines


def _message_length(exc: BaseException) -> int:
    """How long the withheld message is (0 when there is none, or it cannot be computed)."""
    try:
        return len(str(exc))
    except Exception:  # noqa: BLE001 - a broken foreign __str__ must not hide the crash
        return 0
