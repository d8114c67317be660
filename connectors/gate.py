"""The send gate: once a run stops, no new request leaves, and those in flight are waited for.

A run that stops (401/403, unreachable provider, ...) must still log every call it made and
know the outcome of every request that reached the provider. Cancelling the calls in flight
loses both: the provider may have acted on a request whose answer nobody read. So a stop
closes the gate instead: :class:`~connectors.caller.Caller` refuses to send any new request
(:class:`CallHalted`, certainly not made), the requests in flight finish (bounded by their
timeouts) and are recorded, and only then is the remaining work cancelled, when none of it is
sending (:meth:`SendGate.idle`).

The gate is found through the :data:`send_gate` context variable, as the plan row is through
:data:`~connectors.http.call_ref`: set it before the tasks of a batch are created and every
task, and every task those create, sees the same gate.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar

from connectors.errors import FatalError
from connectors.operation import Operation


class CallHalted(FatalError):
    """The run stopped before this request was sent: it was not made."""


class SendGate:
    """Open until :meth:`close`; counts the requests in flight."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self._in_flight = 0
        self._idle: asyncio.Event | None = None  # made by the first waiter, in its loop

    @property
    def closed(self) -> bool:
        """Whether new requests are refused."""
        return self.reason is not None

    @property
    def in_flight(self) -> int:
        """Requests sent and not yet answered (or failed)."""
        return self._in_flight

    def close(self, reason: str) -> None:
        """Refuse every request not yet sent from now on (the first reason is kept)."""
        if self.reason is None:
            self.reason = reason

    def check(self, provider: str, operation: Operation) -> None:
        """Raise :class:`CallHalted` when the gate is closed."""
        if self.reason is not None:
            raise CallHalted(
                f"not sent: the run stopped ({self.reason})",
                provider=provider,
                operation=operation,
                code="HALTED",
            )

    def sent(self) -> None:
        """Count one request in flight (call :meth:`done` when it is answered or failed)."""
        self._in_flight += 1

    def done(self) -> None:
        """One request in flight less."""
        self._in_flight -= 1
        if not self._in_flight and self._idle is not None:
            self._idle.set()
            self._idle = None

    async def idle(self) -> None:
        """Wait until no request is in flight (each is bounded by its timeouts)."""
        while self._in_flight:
            if self._idle is None:
                self._idle = asyncio.Event()
            await self._idle.wait()


send_gate: ContextVar[SendGate | None] = ContextVar("custsync_send_gate", default=None)
"""The gate of the run the current asyncio task works for (``None``: always open)."""
