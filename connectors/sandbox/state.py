"""Everything the route handlers read and change: the config and both providers' data."""

from __future__ import annotations

from dataclasses import dataclass, field

from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.oauth import OAuthRegistry
from connectors.sandbox.store import IdSource, SumUpStore, VerifoneStore


@dataclass
class SandboxState:
    """The live data of one sandbox. Not thread-safe: touch it from the server's loop only."""

    config: SandboxConfig
    ids: IdSource = field(init=False)
    verifone: VerifoneStore = field(init=False)
    sumup: SumUpStore = field(init=False)
    oauth: OAuthRegistry = field(init=False)
    """SumUp merchants' OAuth grants, access tokens and API keys."""
    merchants: dict[str, SumUpStore] = field(init=False)
    """Each merchant's own SumUp account (its customers and instruments), by merchant name;
    the sandbox's own keys use :attr:`sumup`."""

    def __post_init__(self) -> None:
        self.ids = IdSource(self.config.seed)
        self.verifone = VerifoneStore(self.ids)
        self.sumup = SumUpStore(self.ids)
        self.oauth = OAuthRegistry()
        self.merchants = {}

    def sumup_of(self, merchant: str | None) -> SumUpStore:
        """The SumUp account a credential reaches: its merchant's (made on first use), or the
        sandbox's own."""
        if merchant is None:
            return self.sumup
        store = self.merchants.get(merchant)
        if store is None:
            store = self.merchants[merchant] = SumUpStore(self.ids)
        return store

    def reseed(self) -> None:
        """Restart the id and token sequence from ``config.seed``; data is kept."""
        self.ids = IdSource(self.config.seed)
        self.verifone.ids = self.ids
        self.sumup.ids = self.ids
        for store in self.merchants.values():
            store.ids = self.ids

    def clear(self) -> None:
        """Forget all customers and instruments; restart the id sequence from the seed."""
        self.verifone.clear()
        self.sumup.clear()
        self.oauth.clear()
        self.merchants.clear()
        self.reseed()
