"""A hook for showing progress while calls run (the CLI attaches a rich progress bar).

Flows report through :func:`listener`; with no listener attached (a scheduled deployment) the
calls are no-ops. Module state, not a flow parameter: a progress bar is not serialisable.
"""

from __future__ import annotations

from typing import Protocol


class ProgressListener(Protocol):
    """Receives the progress of the execute stage."""

    def start(self, description: str, total: int) -> None:
        """Calls are about to be sent for ``total`` planned actions."""

    def advance(self, n: int) -> None:
        """``n`` more actions are finished."""

    def stop(self) -> None:
        """The execute stage ended."""


class _Silent:
    def start(self, description: str, total: int) -> None:
        pass

    def advance(self, n: int) -> None:
        pass

    def stop(self) -> None:
        pass


_listener: ProgressListener = _Silent()


def attach(listener: ProgressListener | None) -> None:
    """Attach ``listener`` (or detach with ``None``)."""
    global _listener
    _listener = listener if listener is not None else _Silent()


def listener() -> ProgressListener:
    """The listener attached now."""
    return _listener
