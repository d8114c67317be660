"""Build a provider connector from :class:`~pipelines.settings.Settings`.

Credentials come from the environment (``CUSTSYNC_*``) or, when a variable is unset, from a Prefect
Secret block of the documented name (:func:`with_secret_blocks`); never from flow parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import httpx

from connectors.config import ClientConfig
from connectors.http import CallRecord
from connectors.protocol import CustomerConnector
from connectors.secret import Secret
from connectors.sumup import SumUpClient
from connectors.verifone import VerifoneClient
from pipelines.settings import Settings, SettingsError

# Prefect Secret blocks consulted when the environment variable is unset.
SECRET_BLOCKS = {
    "verifone_token": "custsync-verifone-token",
    "verifone_api_key": "custsync-verifone-api-key",
    "sumup_api_key": "custsync-sumup-api-key",
}


async def _from_block(setting: str) -> Secret | None:
    """Read a Prefect Secret block, or ``None`` when there is none (or no Prefect API to ask)."""
    try:
        from prefect.blocks.system import Secret as SecretBlock

        block: SecretBlock[str] = await SecretBlock.aload(SECRET_BLOCKS[setting])
    except (ValueError, RuntimeError, OSError, ImportError):
        # ValueError: no such block; RuntimeError/OSError: no reachable Prefect API.
        return None
    value = block.get()
    return Secret(str(value)) if value else None


async def with_secret_blocks(settings: Settings, target: str) -> Settings:
    """``settings`` with the target's unset credentials filled from Prefect Secret blocks."""
    names = {"verifone": ("verifone_token", "verifone_api_key"), "sumup": ("sumup_api_key",)}
    found: dict[str, Secret | None] = {}
    for name in names.get(target, ()):
        if getattr(settings, name) is None:
            found[name] = await _from_block(name)
    return settings.with_overrides(**found)


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
    """The connector for ``target`` (verifone or sumup); :class:`SettingsError` if unusable."""
    config = client_config(settings)
    if target == "verifone":
        token = settings.verifone_token
        api_key = None if token is not None else settings.verifone_api_key
        if token is None and not (settings.verifone_user and api_key):
            raise SettingsError(
                "no Verifone credentials: set CUSTSYNC_VERIFONE_TOKEN (Bearer), or "
                "CUSTSYNC_VERIFONE_USER and CUSTSYNC_VERIFONE_API_KEY (Basic), or a Prefect "
                f"Secret block {SECRET_BLOCKS['verifone_token']!r} "
                "(the sandbox accepts the token 'sandbox-token')"
            )
        return VerifoneClient(
            settings.verifone_base_url,
            entity_id=settings.verifone_entity_id,
            token=token,
            user=settings.verifone_user,
            api_key=api_key,
            config=config,
            transport=transport,
            on_call=on_call,
        )
    if target == "sumup":
        key = settings.sumup_api_key
        if key is None:
            raise SettingsError(
                "no SumUp credentials: set CUSTSYNC_SUMUP_API_KEY or a Prefect Secret block "
                f"{SECRET_BLOCKS['sumup_api_key']!r} (the sandbox accepts 'sup_sk_sandbox')"
            )
        return SumUpClient(
            settings.sumup_base_url,
            api_key=key,
            config=config,
            transport=transport,
            on_call=on_call,
        )
    raise SettingsError(f"unknown target {target!r}: choose verifone or sumup")
