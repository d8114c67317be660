"""What a provider package declares: its target description, settings and connector factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from connectors.config import ClientConfig
from connectors.http import OnCall
from connectors.protocol import Capabilities, CustomerConnector
from connectors.providers.description import TargetDescription
from connectors.secret import Secret

SANDBOX_URL = "http://127.0.0.1:8765"
"""Where ``custsync sandbox`` answers: every provider's default ``base_url``."""


class MissingCredentials(ValueError):
    """The settings hold no usable credentials for the provider (the message says which)."""


@dataclass(frozen=True)
class ProviderSetting:
    """One setting of a provider: ``CUSTSYNC_<PROVIDER>_<NAME>`` or ``<provider>_<name>`` in
    ``custsync.toml`` (never a secret there)."""

    name: str
    """The setting's name within the provider, e.g. ``base_url``."""
    default: str | None = None
    secret: bool = False
    """Held as :class:`~connectors.secret.Secret`; from the environment or a Prefect Secret
    block only."""
    secret_block: str | None = None
    """The Prefect Secret block consulted when the environment leaves a secret unset."""
    help: str = ""


class ProviderSettings(Mapping[str, Any]):
    """A provider's setting values by name (``str``, :class:`Secret` or ``None``)."""

    def __init__(self, provider: str, values: Mapping[str, Any]) -> None:
        self.provider = provider
        self._values = dict(values)

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def text(self, name: str) -> str | None:
        """A plain setting's value."""
        value = self._values.get(name)
        return None if value is None else str(value)

    def secret(self, name: str) -> Secret | None:
        """A secret setting's value."""
        value = self._values.get(name)
        return value if isinstance(value, Secret) else None

    @property
    def base_url(self) -> str:
        """Where the provider's API answers (every provider has the setting)."""
        return str(self._values["base_url"])

    def replace(self, **values: Any) -> ProviderSettings:
        """A copy with ``values`` replaced."""
        return ProviderSettings(self.provider, {**self._values, **values})

    def __repr__(self) -> str:
        shown = {k: ("***" if isinstance(v, Secret) else v) for k, v in self._values.items()}
        return f"ProviderSettings({self.provider!r}, {shown!r})"


ConnectorFactory = Callable[
    [ProviderSettings, ClientConfig, httpx.AsyncBaseTransport | None, OnCall | None],
    CustomerConnector,
]
"""Builds the provider's connector; raises :class:`MissingCredentials` when it cannot."""


@dataclass(frozen=True)
class Provider:
    """Everything custsync knows of one provider, registered under ``target.name``."""

    target: TargetDescription
    settings: tuple[ProviderSetting, ...]
    """Its settings; one must be ``base_url``."""
    capabilities: Capabilities
    connect: ConnectorFactory

    @property
    def name(self) -> str:
        """The registry name (``--target``)."""
        return self.target.name

    def setting(self, name: str) -> ProviderSetting:
        """The declared setting ``name``."""
        for setting in self.settings:
            if setting.name == name:
                return setting
        raise KeyError(f"{self.name} has no setting {name!r}")
