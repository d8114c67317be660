"""Runs one provider operation: limiter slot, request, call record, classification, retries."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from tenacity import RetryCallState

from connectors.classify import Classifier
from connectors.config import ClientConfig
from connectors.errors import (
    AuthError,
    ConfigError,
    FatalError,
    ProviderError,
    RecordRejected,
    TransientError,
)
from connectors.gate import send_gate
from connectors.http import CallRecord, HttpSession, OnCall, call_ref
from connectors.limiter import RateLimiter
from connectors.oauth import TokenSource
from connectors.operation import Operation
from connectors.retry import RetryPolicy, settle

try:  # aiohttp maps every connection failure to httpx.ConnectTimeout; look at the cause
    from aiohttp import ClientConnectorError as _AiohttpConnectorError
    from aiohttp import ConnectionTimeoutError as _AiohttpConnectTimeout

    _AIOHTTP_NEVER_SENT: tuple[type[BaseException], ...] = (
        _AiohttpConnectorError,
        _AiohttpConnectTimeout,
    )
except ImportError:  # pragma: no cover - aiohttp is optional
    _AIOHTTP_NEVER_SENT = ()


@dataclass
class CallState:
    """What happened across the attempts of one operation (read by the connectors)."""

    attempts: int = 0
    unknown_outcome: bool = False
    """An earlier attempt may have taken effect (no response, or a 5xx)."""
    token_generation: int = 0
    """The OAuth access token the last attempt was sent with (:mod:`connectors.oauth`)."""
    refreshed: bool = False
    """A 401 already led to one refresh of the access token: another 401 stops the run."""


def never_sent(exc: httpx.TransportError) -> bool:
    """True when the request certainly did not reach the server (so resending is safe)."""
    if isinstance(exc, httpx.PoolTimeout):
        return True
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        cause = exc.__cause__
        # httpx's own transport raises these only before a byte was sent; the aiohttp
        # transport raises ConnectTimeout for every connection failure, even a reset after
        # the request was written, so only a connector-level cause counts.
        return (
            cause is None
            or isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout)
            or (bool(_AIOHTTP_NEVER_SENT) and isinstance(cause, _AIOHTTP_NEVER_SENT))
            or type(cause).__module__.startswith("httpcore")
        )
    return False


def transport_error_code(exc: httpx.TransportError) -> str:
    """The most telling class name for a transport failure (aiohttp's, when wrapped)."""
    cause = exc.__cause__
    if cause is not None and type(cause).__module__.startswith("aiohttp"):
        return type(cause).__name__
    return type(exc).__name__


def no_response(
    exc: httpx.TransportError, *, provider: str, operation: Operation, request_id: str
) -> ProviderError:
    """Classify a failure without response, as ``classify.py`` does a response."""
    code = transport_error_code(exc)
    detail = str(exc)[:200] or code
    kwargs: dict[str, Any] = {
        "provider": provider,
        "operation": operation,
        "status": None,
        "code": code,
        "request_id": request_id,
    }
    if isinstance(exc, httpx.UnsupportedProtocol):
        return ConfigError(f"unsupported URL: {detail}", **kwargs)
    # Connect errors, timeouts and resets: another try may get through.
    return TransientError(f"no response: {detail}", **kwargs)


def transport_failure(
    exc: httpx.TransportError,
    *,
    provider: str,
    operation: Operation,
    request_id: str,
    idempotent: bool,
) -> ProviderError:
    """The error a call without response ends with: retry it, or report an unknown outcome
    (the policy's :func:`~connectors.retry.settle` of :func:`no_response`)."""
    failure = no_response(exc, provider=provider, operation=operation, request_id=request_id)
    return settle(failure, idempotent=idempotent, may_have_acted=not never_sent(exc))


class Caller:
    """Sends the requests of one target through its limiter, retry policy and classifier."""

    def __init__(
        self,
        *,
        target: str,
        session: HttpSession,
        limiter: RateLimiter,
        config: ClientConfig,
        policy: RetryPolicy,
        classify: Classifier,
        on_call: OnCall | None,
        secrets: tuple[str, ...] = (),
        tokens: TokenSource | None = None,
    ) -> None:
        self.target = target
        self._tokens = tokens
        # Credential strings to scrub from error messages, should a server echo one back.
        self._secrets = tuple(s for s in secrets if s)
        self._session = session
        self._limiter = limiter
        self._config = config
        self._policy = policy
        self._classify = classify
        self._on_call = on_call

    async def call(
        self,
        operation: Operation,
        method: str,
        path_template: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Any = None,
        idempotent: bool = True,
        state: CallState | None = None,
    ) -> httpx.Response:
        """Send one operation, retrying transient failures; return the successful response.

        A non-idempotent call (``idempotent=False``) is retried only when the provider
        certainly did not act on it (429, connection never made); otherwise it raises
        :class:`UnknownOutcome`.
        """
        content = orjson.dumps(body) if body is not None else None
        state = state if state is not None else CallState()
        args = (operation, method, path_template, path, params, content, idempotent, state)
        try:
            return await self._policy.call(lambda: self._attempt(*args), on_retry=self._count_retry)
        except AuthError as refused:
            if not self._may_refresh(refused.status, state):
                raise
        # The access token expired (or was revoked): trade for a new one once, then repeat
        # this call once. A refused trade, or a second 401, stops the run.
        assert self._tokens is not None
        state.refreshed = True
        try:
            await self._tokens.refresh(state.token_generation)
        except AuthError as exc:
            self._scrub(exc)
            gate = send_gate.get()
            if gate is not None:
                gate.close(str(exc))
            raise
        return await self._policy.call(lambda: self._attempt(*args), on_retry=self._count_retry)

    def _may_refresh(self, status: int | None, state: CallState) -> bool:
        return self._tokens is not None and status == 401 and not state.refreshed

    def _count_retry(self, _state: RetryCallState) -> None:
        self._limiter.note_retry()

    async def _attempt(
        self,
        operation: Operation,
        method: str,
        path_template: str,
        path: str,
        params: Mapping[str, str | int] | None,
        content: bytes | None,
        idempotent: bool,
        state: CallState,
    ) -> httpx.Response:
        limiter = self._limiter
        gate = send_gate.get()
        if gate is not None:
            gate.check(self.target, operation)
        emitted = await limiter.acquire()
        if gate is not None and gate.closed:  # the run stopped while this call waited its turn
            limiter.release()
            gate.check(self.target, operation)
        state.attempts += 1
        authorization = None
        if self._tokens is not None:
            try:
                state.token_generation, authorization = await self._tokens.header()
            except BaseException as exc:
                limiter.release()
                if isinstance(exc, AuthError):
                    self._scrub(exc)
                    state.refreshed = True  # the first trade was refused: nothing to retry
                    if gate is not None:
                        gate.close(str(exc))
                raise
        request_id = os.urandom(16).hex()  # 128 random bits, as uuid4 (which costs 6x)
        request = self._session.build_request(
            method,
            path,
            params=params,
            content=content,
            request_id=request_id,
            authorization=authorization,
        )
        started_at = datetime.now(UTC)
        t0 = time.perf_counter()
        if gate is not None:
            gate.sent()
        unanswered: asyncio.CancelledError | httpx.TransportError | None = None
        try:
            response = await self._session.send(request)
        except (asyncio.CancelledError, httpx.TransportError) as exc:
            # Held, not raised: every ending is logged below, before this task next yields.
            unanswered = exc
        finally:
            limiter.release()
            if gate is not None:
                # A waiter on the gate runs only when this task next yields: the call is
                # logged by then, on every path.
                gate.done()
        latency = (time.perf_counter() - t0) * 1000
        failure: ProviderError | None
        if unanswered is None:
            status: int | None = response.status_code
            failure = self._classify(
                response,
                operation,
                sent_request_id=request_id,
                max_retry_after_s=self._config.max_retry_after_s,
            )
            may_have_acted = response.status_code >= 500
        elif isinstance(unanswered, httpx.TransportError):
            status = None
            failure = no_response(
                unanswered, provider=self.target, operation=operation, request_id=request_id
            )
            may_have_acted = not never_sent(unanswered)
        else:
            # Cancelled in flight: the request may have reached the provider and been acted
            # on. It is a call made all the same, logged as one without a response.
            status, failure, may_have_acted = None, None, True
        if may_have_acted:
            state.unknown_outcome = True
        code: str | None = None  # the provider's error code, or why no response came
        if failure is not None:
            self._scrub(failure)
            code = failure.code
            refreshable = self._may_refresh(failure.status, state)
            if gate is not None and isinstance(failure, FatalError) and not refreshable:
                # Closed before any other task runs: none sends after the provider refused us.
                gate.close(str(failure))
        elif unanswered is not None:
            code = type(unanswered).__name__  # CancelledError
        if not isinstance(unanswered, asyncio.CancelledError):
            limiter.on_response(status, emitted, None if failure is None else failure.retry_after)
        self._record(
            operation,
            method,
            path_template,
            status,
            code,
            state.attempts,
            latency,
            started_at,
            failure.request_id if failure is not None and failure.request_id else request_id,
        )
        if isinstance(unanswered, asyncio.CancelledError):
            raise unanswered
        if failure is None:
            return response
        raise settle(failure, idempotent=idempotent, may_have_acted=may_have_acted) from unanswered

    def _scrub(self, error: ProviderError) -> None:
        held = self._tokens.secrets() if self._tokens is not None else ()
        for secret in (*self._secrets, *held):
            if secret in error.message:
                error.message = error.message.replace(secret, "**********")
                error.args = (error.message,)
            if error.code and secret in error.code:
                error.code = error.code.replace(secret, "**********")

    def _record(
        self,
        operation: Operation,
        method: str,
        path_template: str,
        status: int | None,
        error_code: str | None,
        attempt: int,
        latency_ms: float,
        started_at: datetime,
        request_id: str,
    ) -> None:
        if self._on_call is None:
            return
        self._on_call(
            CallRecord(
                target=self.target,
                operation=operation,
                method=method,
                path_template=path_template,
                status=status,
                error_code=error_code,
                attempt=attempt,
                latency_ms=latency_ms,
                started_at=started_at,
                request_id=request_id,
                ref=call_ref.get(),
            )
        )


def json_body(response: httpx.Response, *, provider: str, operation: Operation) -> Any:
    """The decoded JSON body of a successful response (orjson: faster than ``json``)."""
    if not response.content:
        return None
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise RecordRejected(
            "the provider answered with a body that is not JSON",
            provider=provider,
            operation=operation,
            status=response.status_code,
            code="BAD_BODY",
        ) from None
