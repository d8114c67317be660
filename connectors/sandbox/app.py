"""The sandbox as one raw ASGI application serving both provider APIs.

Per API call, in this order: route → latency → identify the credential (401/403) →
rate limit (429) → maybe a pre-fault (500/502/503/reset, nothing changed) → the handler →
maybe a commit fault (the change is kept, then 500 or a dropped connection) → count.
Admin routes under ``/_sandbox/`` skip all of that.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from connectors.sandbox import admin_routes, sumup, verifone
from connectors.sandbox.auth import Principal, sumup_principal, verifone_principal
from connectors.sandbox.behaviour import FaultInjector, Latency, RateLimiter
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.counters import Counters
from connectors.sandbox.errors import (
    method_not_allowed,
    plain_not_found,
    sumup_error,
    sumup_forbidden,
    sumup_problem,
    sumup_unauthorized,
    verifone_error,
)
from connectors.sandbox.http import Request, Response
from connectors.sandbox.protocol import TRANSPORT_EXTENSION
from connectors.sandbox.state import SandboxState

Scope = Mapping[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]
_MUTATING = frozenset({"POST", "PUT", "DELETE"})


@dataclass(frozen=True, slots=True)
class Route:
    """A path template of one API and its handler per method."""

    api: str
    template: str
    segments: tuple[str | None, ...]
    handlers: Mapping[str, Callable[..., Response]]


def _route(api: str, template: str, handlers: Mapping[str, Callable[..., Response]]) -> Route:
    segments = tuple(
        None if part.startswith("{") else part for part in template.strip("/").split("/")
    )
    return Route(api, template, segments, handlers)


ROUTES = (
    _route(
        "verifone",
        "/v2/customer",
        {"GET": verifone.list_customers, "POST": verifone.create_customer},
    ),
    _route(
        "verifone",
        "/v2/customer/{customerId}",
        {
            "GET": verifone.get_customer,
            "POST": verifone.update_customer,
            "DELETE": verifone.delete_customer,
        },
    ),
    _route("sumup", "/v0.1/customers", {"POST": sumup.create_customer}),
    _route(
        "sumup",
        "/v0.1/customers/{customer_id}",
        {"GET": sumup.get_customer, "PUT": sumup.update_customer},
    ),
    _route(
        "sumup",
        "/v0.1/customers/{customer_id}/payment-instruments",
        {"GET": sumup.list_instruments},
    ),
    _route(
        "sumup",
        "/v0.1/customers/{customer_id}/payment-instruments/{token}",
        {"DELETE": sumup.deactivate_instrument},
    ),
    _route("oauth", "/token", {"POST": lambda app, req: app.token(req)}),
    *(_route("admin", template, handlers) for template, handlers in admin_routes.ROUTES),
)


class SandboxApp:
    """The ASGI callable. ``state`` is public so a benchmark can seed in-process."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.initial_config = config or SandboxConfig()
        self.state = SandboxState(self.initial_config)
        self.counters = Counters()
        self.apply_config(self.initial_config)
        self._by_length: dict[int, list[Route]] = {}
        for route in ROUTES:
            self._by_length.setdefault(len(route.segments), []).append(route)

    @property
    def config(self) -> SandboxConfig:
        """The configuration in force."""
        return self.state.config

    def apply_config(self, config: SandboxConfig) -> None:
        """Put ``config`` in force: new buckets, fault and latency generators from its seed."""
        reseed = config.seed != self.state.config.seed
        self.state.config = config
        if reseed:
            self.state.reseed()
        self.limiter = RateLimiter(config.rate_limit, config.burst)
        self.faults = FaultInjector(config)
        self.latency = Latency(config)

    def reset(self, *, config: bool = False) -> None:
        """Clear data and counters; with ``config``, also go back to the start-up config."""
        self.apply_config(self.initial_config if config else self.state.config)
        self.state.clear()
        self.counters.clear()

    def token(self, request: Request) -> Response:
        """``POST /token``: SumUp's OAuth2 refresh grant (:mod:`connectors.sandbox.oauth`)."""
        return self.state.oauth.token(request, self.config.oauth_token_lifetime_s)

    def match(self, path: str) -> tuple[Route, tuple[str, ...]] | None:
        """The route for a raw (still percent-encoded) path and its decoded parameters."""
        parts = path.split("/")[1:]
        for route in self._by_length.get(len(parts), ()):
            params: list[str] = []
            for want, got in zip(route.segments, parts, strict=True):
                if want is None:
                    if not got:
                        break
                    params.append(unquote(got))
                elif want != got:
                    break
            else:
                return route, tuple(params)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method: str = scope["method"]
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        path = raw_path.decode("latin-1")
        found = self.match(path)
        if found is None:
            if not path.startswith("/_sandbox/"):
                self.counters.count(f"{method} *", "404")
            await send_response(send, plain_not_found(path))
            return
        route, params = found
        request = Request(method, path, params, scope.get("query_string", b""), scope["headers"])
        handler = route.handlers.get(method)
        if route.api == "oauth" and handler is not None:
            # The token endpoint: no bearer credential (the client authenticates in the
            # form), counted, never rate limited or faulted.
            request.body = await read_body(receive)
            await self._finish(send, f"{method} {route.template}", handler(self, request))
            return
        if route.api == "admin":
            if handler is None:
                response = method_not_allowed(path, sorted(route.handlers))
            else:
                request.body = await read_body(receive)
                response = handler(self, request)
            await send_response(send, response)
            return
        key = f"{method} {route.template}"
        if handler is None:
            response = method_not_allowed(path, sorted(route.handlers))
            self.counters.count(key, str(response.status))
            await send_response(send, response)
            return
        await self._api_call(scope, receive, send, route, handler, request, key)

    async def _api_call(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: Route,
        handler: Callable[..., Response],
        request: Request,
        key: str,
    ) -> None:
        delay = self.latency.draw()
        if delay > 0:
            await asyncio.sleep(delay)
        is_verifone = route.api == "verifone"
        who = _identify(self.state, is_verifone, request)
        if isinstance(who, Response):
            await self._finish(send, key, who)
            return
        retry_after = self.limiter.check(who.name)
        if retry_after is not None:
            await self._finish(send, key, _too_many(is_verifone, retry_after))
            return
        fault = self.faults.draw(request.method in _MUTATING)
        if fault is not None and not FaultInjector.is_commit(fault):
            await self._inject(scope, send, key, fault, is_verifone)
            return
        request.body = await read_body(receive)
        response = handler(self.state, request, who)
        if fault is not None and 200 <= response.status < 300:
            await self._inject(scope, send, key, fault, is_verifone)
            return
        await self._finish(send, key, response)

    async def _finish(self, send: Send, key: str, response: Response) -> None:
        self.counters.count(key, str(response.status))
        await send_response(send, response)

    async def _inject(self, scope: Scope, send: Send, key: str, kind: str, verifone: bool) -> None:
        self.counters.fault(kind)
        if kind.endswith("reset"):
            self.counters.count(key, "reset")
            await drop_connection(scope)
            return
        status = int(kind.removeprefix("commit_"))
        await self._finish(send, key, _server_error(verifone, status))


def _identify(state: SandboxState, is_verifone: bool, request: Request) -> Principal | Response:
    config = state.config
    header = request.header(b"authorization")
    if is_verifone:
        who = verifone_principal(config, header)
        if who is None:
            response = verifone_error(401, "Unauthorized: missing or invalid credentials")
            response.headers.append(
                (b"www-authenticate", b'Bearer realm="verifone", Basic realm="verifone"')
            )
            return response
        return who
    who = sumup_principal(config, header, state.oauth)
    if who is None:
        response = sumup_unauthorized()
        response.headers.append((b"www-authenticate", b'Bearer realm="sumup"'))
        return response
    if not who.read or (request.method in _MUTATING and not who.write):
        return sumup_forbidden()
    return who


def _too_many(is_verifone: bool, retry_after: int) -> Response:
    if is_verifone:
        response = verifone_error(429, "Too Many Requests", {"retry_after": retry_after})
    else:
        response = sumup_problem(
            429, "too-many-requests", "Too many requests, please try again later."
        )
    response.headers.append((b"retry-after", str(retry_after).encode()))
    return response


def _server_error(is_verifone: bool, status: int) -> Response:
    if is_verifone:
        response = verifone_error(
            status,
            {500: "Internal Server Error", 502: "Bad Gateway"}.get(status, "Service Unavailable"),
        )
    elif status == 500:
        response = sumup_error(500, "INTERNAL_SERVER_ERROR", "Internal server error")
    else:
        slug = "bad-gateway" if status == 502 else "service-unavailable"
        response = sumup_problem(status, slug, "The upstream service did not answer.")
    if status == 503:
        response.headers.append((b"retry-after", b"1"))
    return response


async def read_body(receive: Receive) -> bytes:
    """The whole request body (empty if the client went away)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def send_response(send: Send, response: Response) -> None:
    """Send ``response``; 204/304 carry neither a body nor a content length."""
    headers: list[tuple[bytes, bytes]] = []
    if response.status not in (204, 304):
        headers.append((b"content-length", str(len(response.body)).encode()))
    if response.content_type is not None:
        headers.append((b"content-type", response.content_type))
    headers.extend(response.headers)
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


async def drop_connection(scope: Scope) -> None:
    """Abort the TCP connection with a RST and no response bytes at all.

    ASGI has no way to do this; :mod:`connectors.sandbox.protocol` puts the transport into
    the scope. Without it (an in-process ASGI client) the app raises instead, which such a
    client also sees as a failed request.
    """
    holder = (scope.get("extensions") or {}).get(TRANSPORT_EXTENSION) or {}
    transport = holder.get("transport")
    if transport is None:
        raise ConnectionResetError("sandbox fault: connection reset")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # SO_LINGER 0: close() sends RST instead of FIN, like a crashed upstream.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    # Let the protocol see connection_lost before the ASGI cycle ends, so uvicorn does not
    # try to answer on our behalf.
    await asyncio.sleep(0)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
