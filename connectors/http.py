"""Shared HTTP layer: the per-target HTTP session, call records and the call reference.

Every HTTP attempt produces one :class:`CallRecord`, handed to the ``on_call`` callback the
connector was given (the pipeline writes them to DuckDB). ``call_ref`` tags those records with
the plan row being executed: the pipeline sets it inside the asyncio task handling the row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from connectors.config import ClientConfig
from connectors.errors import ConfigError
from connectors.operation import Operation

call_ref: ContextVar[str | None] = ContextVar("custsync_call_ref", default=None)
"""The plan row (or any caller reference) the current asyncio task is making calls for."""


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One HTTP attempt, successful or not. Carries no header, body or credential."""

    target: str
    operation: Operation
    """Stored as its value (``calls.operation``)."""
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
        import aiohttp
        from httpx_aiohttp import AiohttpTransport
        from httpx_aiohttp.transport import map_aiohttp_exceptions
    except ImportError:  # the optional "fast" extra is not installed: use httpx's own pool
        return None

    def session() -> aiohttp.ClientSession:
        # Called once, lazily, inside the running event loop.
        connector = aiohttp.TCPConnector(
            limit=config.max_in_flight, keepalive_timeout=5.0, ssl=httpx.create_ssl_context()
        )
        client = aiohttp.ClientSession(connector=connector)
        # aiohttp silently re-sends a GET/PUT/DELETE once after a dropped connection: an
        # attempt the limiter, the call log and the outcome logic would never see. aiohttp's
        # own test client turns it off the same way.
        client._retry_connection = False
        return client

    class ReadingTransport(AiohttpTransport):
        """httpx-aiohttp's transport, reading the whole body before it returns.

        Its own returns a streaming response that ``aread`` then drains through three layers
        of async iterators; a connector reads every body whole anyway. Same aiohttp call, same
        mapping of aiohttp's exceptions to httpx's (what :func:`~connectors.caller.never_sent`
        relies on), about 5 µs less per call.
        """

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._timeouts: dict[tuple[Any, ...], aiohttp.ClientTimeout] = {}

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if not isinstance(self.client, aiohttp.ClientSession):
                self.client = self.get_client()
            limits = request.extensions.get("timeout", {})
            key = (limits.get("connect"), limits.get("read"), limits.get("pool"))
            timeout = self._timeouts.get(key)
            if timeout is None:
                timeout = self._timeouts[key] = aiohttp.ClientTimeout(
                    sock_connect=key[0], sock_read=key[1], connect=key[2]
                )
            with map_aiohttp_exceptions():
                async with self.client.request(
                    method=request.method,
                    url=str(request.url),
                    headers=request.headers,
                    data=request.content or None,
                    allow_redirects=False,
                    auto_decompress=False,
                    compress=False,
                    timeout=timeout,
                ) as response:
                    body = await response.read()
            return httpx.Response(
                status_code=response.status,
                headers=response.raw_headers,
                content=body,  # decoded by httpx per Content-Encoding, as aread would
                request=request,
                extensions={"http_version": b"HTTP/1.1"},
            )

    transport: httpx.AsyncBaseTransport = ReadingTransport(client=session)
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
        return ConfigError(
            message, provider=provider, operation=Operation.CONFIGURE, code="BASE_URL"
        )

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


_VERBATIM = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*")
"""Characters httpx leaves as they are in a path or query (RFC 3986's, ``%`` of escapes)."""


def url_builder(base: httpx.URL) -> Callable[[str, str | None], httpx.URL]:
    """A function ``(path, query) -> httpx.URL`` under ``base``, equal to parsing the text.

    httpx parses every URL it is given, character by character in Python: about 10 µs a
    call, a tenth of a connector call's CPU. Paths here are already escaped
    (:func:`path_segment`) and queries come from ``urlencode``, so for text of characters
    httpx keeps verbatim, with no dot segment, the URL is assembled from the parsed base's
    components instead.
    That reads a private attribute of ``httpx.URL``: the builder checks itself against
    parsing when it is made (and a test for many paths), and parses whenever the shortcut is
    not available or the text holds any other character.
    """
    prefix = str(base).rstrip("/")

    def parse(path: str, query: str | None) -> httpx.URL:
        return httpx.URL(prefix + path + (f"?{query}" if query else ""))

    reference = getattr(base, "_uri_reference", None)
    if reference is None or not hasattr(reference, "_replace"):
        return parse
    base_path = str(reference.path).rstrip("/")

    def build(path: str, query: str | None) -> httpx.URL:
        if (
            _VERBATIM.fullmatch(path) is None
            or "/." in path  # a dot segment, which httpx resolves
            or (query and _VERBATIM.fullmatch(query) is None)
        ):
            return parse(path, query)
        url = httpx.URL.__new__(httpx.URL)
        url._uri_reference = reference._replace(path=base_path + path, query=query or None)
        return url

    probe = ("/v2/customer/a%20b:c@d", "search=id%3Din%3D%28a%2Cb%29&limit=2")
    try:
        if build(*probe) == parse(*probe) and str(build(*probe)) == str(parse(*probe)):
            return build
    except (AttributeError, TypeError, ValueError):
        pass
    return parse


class HttpSession:
    """One target's HTTP stack: base URL, default headers, timeouts and an httpx transport.

    It builds ``httpx.Request`` objects and hands them straight to the transport, without
    ``httpx.AsyncClient``: the client's request building, auth/redirect/cookie machinery cost
    about 0.07 ms of CPU per call here, a third of the whole (docs/connectors.md), and a
    connector needs none of it (auth is a fixed header, redirects are refused, cookies would
    only carry state between calls). Requests, responses and transports are httpx's, so
    ``httpx.MockTransport`` and any httpx transport plug in unchanged.
    """

    def __init__(
        self,
        base_url: str,
        *,
        config: ClientConfig,
        headers: Mapping[str, str],
        transport: httpx.AsyncBaseTransport | None = None,
        provider: str = "-",
    ) -> None:
        url = check_base_url(base_url, provider)
        self.base_url = str(url).rstrip("/")
        self._url = url_builder(url)
        # httpx masks the Authorization value in every repr of these headers.
        self.headers = httpx.Headers(
            {"user-agent": config.user_agent, "accept": "application/json", **headers}
        )
        self._raw_headers = list(self.headers.raw)
        self.timeout = httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s)
        self._extensions = {"timeout": self.timeout.as_dict()}
        self.transport = transport if transport is not None else default_transport(config)

    def build_request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        content: bytes | None = None,
        request_id: str,
        authorization: str | None = None,
    ) -> httpx.Request:
        """A request for ``base_url + path`` (``path`` already escaped, see
        :func:`path_segment`), with the default headers and an ``X-Request-Id``
        (and ``authorization``, for a credential that changes: an OAuth access token)."""
        url = self._url(path, urlencode(params) if params else None)
        headers = [*self._raw_headers, (b"x-request-id", request_id.encode("ascii"))]
        if authorization is not None:
            headers.append((b"authorization", authorization.encode("latin-1")))
        if content is not None:
            headers.append((b"content-type", b"application/json"))
        return httpx.Request(
            method, url, headers=headers, content=content, extensions=self._extensions
        )

    async def send(self, request: httpx.Request) -> httpx.Response:
        """Send and read the whole body (raises ``httpx.TransportError`` subclasses)."""
        response = await self.transport.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    async def aclose(self) -> None:
        """Close the transport's connections."""
        await self.transport.aclose()

    def __repr__(self) -> str:
        return f"HttpSession(base_url={self.base_url!r})"


def path_segment(value: str) -> str:
    """``value`` escaped as one path segment: ``/``, ``?``, ``#``, ``%`` and spaces encoded,
    and ``.`` / ``..`` encoded too (httpx would otherwise resolve them and climb the path)."""
    if not value:
        raise ValueError("an id in a path must not be empty")
    if value in (".", ".."):
        return value.replace(".", "%2E")
    return quote(value, safe="")
