"""Build a provider connector from :class:`~pipelines.settings.Settings`.

Which connector, with which settings, is the provider's own (:mod:`connectors.providers`).
Credentials come from the environment (``CUSTSYNC_*``) or, when a variable is unset, from a
Prefect Secret block of the name the provider declares (:func:`with_secret_blocks`); never
from flow parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import httpx

from connectors.config import ClientConfig
from connectors.http import CallRecord
from connectors.protocol import CustomerConnector
from connectors.providers.base import MissingCredentials
from connectors.providers.registry import UnknownProvider, get_provider
from connectors.secret import Secret
from pipelines.settings import Settings, SettingsError


async def read_secret_block(name: str) -> Secret | None:
    """Read a Prefect Secret block, or ``None`` when there is none (or no Prefect API to ask)."""
    try:
        from prefect.blocks.system import Secret as SecretBlock

        block: SecretBlock[str] = await SecretBlock.aload(name)
    except (ValueError, RuntimeError, OSError, ImportError):
        # ValueError: no such block; RuntimeError/OSError: no reachable Prefect API.
        return None
    value = block.get()
    return Secret(str(value)) if value else None


async def with_secret_blocks(settings: Settings, target: str) -> Settings:
    """``settings`` with the target's unset credentials filled from Prefect Secret blocks."""
    try:
        provider = get_provider(target)
    except UnknownProvider:
        return settings  # build_connector says so
    current = settings.provider(target)
    found: dict[str, Secret | None] = {}
    for setting in provider.settings:
        if setting.secret_block and current.get(setting.name) is None:
            found[setting.name] = await read_secret_block(setting.secret_block)
    return settings.with_provider(target, **found)


def client_config(settings: Settings) -> ClientConfig:
    """Translate settings into the connectors' :class:`ClientConfig`."""
    rate = settings.rate_limit
    if rate is not None and rate <= 0:
        rate = math.inf  # 0 or negative in settings means "no client-side limit"
    return ClientConfig(
        rate=rate,
        adaptive_start_rate=settings.adaptive_start_rate,
        max_in_flight=settings.concurrency,
        max_attempts=settings.max_attempts,
    )


def build_connector(
    settings: Settings,
    target: str,
    *,
    on_call: Callable[[CallRecord], None] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> CustomerConnector:
    """The connector for ``target`` (a registered provider); :class:`SettingsError` if unusable."""
    try:
        provider = get_provider(target)
    except UnknownProvider as exc:
        raise SettingsError(str(exc)) from None
    try:
        return provider.connect(
            settings.provider(target), client_config(settings), transport, on_call
        )
    except MissingCredentials as exc:
        raise SettingsError(str(exc)) from None
