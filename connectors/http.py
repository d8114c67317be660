"""Shared HTTP layer: the ``httpx.AsyncClient`` factory, call records and the call reference.

Every HTTP attempt produces one :class:`CallRecord`, handed to the ``on_call`` callback the
connector was given (the pipeline writes them to DuckDB). ``call_ref`` tags those records with
the plan row being executed: the pipeline sets it inside the asyncio task handling the row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

import httpx

from connectors.config import ClientConfig
from connectors.errors import ConfigError

call_ref: ContextVar[str | None] = ContextVar("custsync_call_ref", default=None)
"""The plan row (or any caller reference) the current asyncio task is making calls for."""


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One HTTP attempt, successful or not. Carries no header, body or credential."""

    target: str
    operation: str
    method: str
    path_template: str
    """The route with placeholders, e.g. ``/v2/customer/{customerId}`` (no ids, no query)."""
    status: int | None
    """``None`` when no response came back (timeout, reset, refused)."""
    error_code: str | None
    """The provider's error code, or the exception's class name when there was no response."""
    attempt: int
    latency_ms: float
    started_at: datetime
    request_id: str
    ref: str | None


OnCall = Callable[[CallRecord], None]


def _aiohttp_transport(config: ClientConfig) -> httpx.AsyncBaseTransport | None:
    try:
        from httpx_aiohttp import AiohttpTransport
    except ImportError:  # the optional "fast" extra is not installed: use httpx's own pool
        return None
    limits = httpx.Limits(
        max_connections=config.max_in_flight, max_keepalive_connections=config.max_in_flight
    )
    transport: httpx.AsyncBaseTransport = AiohttpTransport(limits=limits)
    return transport


def default_transport(config: ClientConfig) -> httpx.AsyncBaseTransport:
    """The transport used when none is injected.

    ``httpx-aiohttp`` when installed: measured here (docs/connectors.md) at several times the
    throughput and a fraction of the CPU per call of httpx's own connection pool, while the
    code keeps httpx's API. Otherwise httpx's ``AsyncHTTPTransport``.
    """
    if config.http_backend == "aiohttp":
        transport = _aiohttp_transport(config)
        if transport is not None:
            return transport
    return httpx.AsyncHTTPTransport(
        limits=httpx.Limits(
            max_connections=config.max_in_flight,
            max_keepalive_connections=config.max_in_flight,
        )
    )


def check_base_url(base_url: str, provider: str = "-") -> httpx.URL:
    """Refuse a base URL that would leak credentials or cannot be used."""

    def refuse(message: str) -> ConfigError:
        return ConfigError(message, provider=provider, operation="configure", code="BASE_URL")

    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL:
        raise refuse("invalid base URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise refuse("base URL must be http(s)://host[:port][/path]")
    if url.userinfo:
        # Credentials in a URL end up in logs and error messages: pass them as settings.
        raise refuse("base URL must not carry credentials")
    return url


def make_http_client(
    base_url: str,
    *,
    config: ClientConfig,
    headers: Mapping[str, str],
    transport: httpx.AsyncBaseTransport | None = None,
    provider: str = "-",
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for one target: timeouts, pool limits, User-Agent, no redirects.

    ``headers`` may hold the ``Authorization`` value: httpx masks it in every repr.
    """
    url = check_base_url(base_url, provider)
    timeout = httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s)
    return httpx.AsyncClient(
        base_url=url,
        headers={"user-agent": config.user_agent, "accept": "application/json", **headers},
        timeout=timeout,
        transport=transport if transport is not None else default_transport(config),
        follow_redirects=False,
        trust_env=False,
    )


def path_segment(value: str) -> str:
    """``value`` escaped as one path segment: ``/``, ``?``, ``#``, ``%`` and spaces encoded,
    and ``.`` / ``..`` encoded too (httpx would otherwise resolve them and climb the path)."""
    if not value:
        raise ValueError("an id in a path must not be empty")
    if value in (".", ".."):
        return value.replace(".", "%2E")
    return quote(value, safe="")
