"""Process exit codes: a contract scripts and schedulers rely on (README, "Exit codes")."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What a ``custsync`` process tells its caller."""

    OK = 0
    """Every planned action succeeded."""
    RECORDS_FAILED = 1
    """Some records failed or were rejected; the rest were done and recorded."""
    BAD_INPUT = 2
    """Bad usage, configuration or input file; nothing was sent."""
    GUARD = 3
    """A safety guard stopped the run before any call (e.g. too many deletes, empty extract)."""
    AUTH = 4
    """The provider refused our credentials (401/403); the run stopped."""
    INTERNAL = 70
    """An internal error (a bug): one line names it and its crash file (``EX_SOFTWARE``)."""
