"""What the pipeline needs from a target, whichever provider it is."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from connectors.limiter import LimiterStats

OwnedHook = Callable[[Sequence[str]], Collection[str]]
"""Given remote ids, returns those another key already owns (a look-up must never adopt them)."""


@dataclass(frozen=True)
class Capabilities:
    """What a target can do (the pipeline plans around what it cannot)."""

    delete: bool
    """Verifone True, SumUp False (closing a SumUp customer deactivates its instruments)."""
    list: bool
    """Verifone True (RSQL search), SumUp False."""
    instruments: bool
    """Verifone False, SumUp True."""
    client_ids: bool
    """SumUp True (client-chosen ``customer_id``), Verifone False (server-assigned UUID)."""
    look_up_creates: bool
    """Verifone True: a create is not safe to repeat, so one whose outcome is unknown is
    settled by a look-up (:meth:`CustomerConnector.equal_matches`), live and after a crash.
    SumUp False: sending the create again is the look-up (409 means it exists)."""


@dataclass(frozen=True)
class CreateResult:
    """How a create ended.

    ``created``: made now. ``adopted``: it already existed (SumUp 409, or a Verifone create
    with an unknown outcome found by the look-up) and we took it. ``ambiguous``: several
    remote records match what was sent; nothing was guessed, a person must choose.
    """

    outcome: Literal["created", "adopted", "ambiguous"]
    remote_id: str | None
    """``None`` only when ambiguous."""
    record: dict[str, Any] | None
    """The provider's body for created/adopted."""
    candidates: tuple[str, ...] = ()
    """Remote ids when ambiguous."""


@dataclass(frozen=True)
class CloseResult:
    """How closing a customer ended."""

    outcome: Literal["deleted", "already_gone", "deactivated"]
    deactivated: tuple[str, ...] = ()
    """SumUp instrument tokens deactivated by this call."""


@dataclass(frozen=True)
class EraseResult:
    """How erasing a customer's personal data at the provider ended (``custsync forget``).

    ``deleted``: the provider deleted the customer. ``already_gone``: it holds no such
    customer. ``overwritten``: the provider cannot delete a customer, so its personal details
    were overwritten with empty values and its payment instruments deactivated (what the API
    allows; :attr:`note` says what is left).
    """

    outcome: Literal["deleted", "already_gone", "overwritten"]
    deactivated: tuple[str, ...] = ()
    """Payment instrument tokens deactivated by this call."""
    note: str = ""
    """What the provider still holds, if anything."""


@runtime_checkable
class CustomerConnector(Protocol):
    """The operations the pipeline drives; both ``VerifoneClient`` and ``SumUpClient`` fit.

    The pipeline never asks which client it holds: what differs is in :class:`Capabilities`.
    """

    target: str
    capabilities: Capabilities

    async def create(
        self, payload: Mapping[str, Any], *, owned: OwnedHook | None = None
    ) -> CreateResult:
        """Create from the provider's exact JSON body; never duplicates on retry. A look-up
        after an unknown outcome never adopts a customer ``owned`` reports as another key's."""
        ...

    async def find_created(
        self, payload: Mapping[str, Any], *, owned: OwnedHook | None = None
    ) -> CreateResult | None:
        """The customer a create of ``payload`` made, if any (``adopted``, or ``ambiguous``
        when several match); ``None`` when creating it is safe. Without ``look_up_creates``:
        always ``None``, without a call (creating again is the look-up)."""
        ...

    async def equal_matches(
        self, payload: Mapping[str, Any], *, owned: OwnedHook | None = None
    ) -> list[dict[str, Any]]:
        """Records equal to ``payload`` that no other key owns, oldest first (only with
        ``look_up_creates``; otherwise :class:`~connectors.errors.NotSupported`)."""
        ...

    def superseded(self, payload: Mapping[str, Any]) -> str | None:
        """Why a create of ``payload`` can no longer be looked up through this client (it went
        to a scope the client is not bound to, such as another Verifone entity), or
        ``None``."""
        ...

    async def fetch_many(self, remote_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Remote id -> provider record; ids not found are absent."""
        ...

    async def update(self, remote_id: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Write the record; return the provider's body."""
        ...

    async def close(self, remote_id: str) -> CloseResult:
        """Delete (Verifone) or deactivate every active instrument (SumUp)."""
        ...

    async def deactivate_instrument(self, remote_id: str, token: str) -> bool:
        """True if deactivated now, False if it was already inactive."""
        ...

    async def erase(self, remote_id: str) -> EraseResult:
        """Remove the customer's personal data as far as the provider's API allows (delete
        it, or overwrite it where there is no delete); repeating it is safe."""
        ...

    async def find(self, criteria: Mapping[str, str]) -> list[dict[str, Any]]:
        """Records whose fields equal ``criteria`` (Verifone only)."""
        ...

    def stats(self) -> LimiterStats:
        """The limiter's live figures (rate, 429s, retries)."""
        ...

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        ...
