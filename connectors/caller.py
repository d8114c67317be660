"""Runs one provider operation: limiter slot, request, call record, classification, retries."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
import orjson
from tenacity import RetryCallState

from connectors.config import ClientConfig
from connectors.errors import (
    ConfigError,
    FatalError,
    ProviderError,
    RecordRejected,
    TransientError,
    UnknownOutcome,
)
from connectors.gate import send_gate
from connectors.http import CallRecord, HttpSession, OnCall, call_ref
from connectors.limiter import RateLimiter
from connectors.retry import is_retryable, make_retry

try:  # aiohttp maps every connection failure to httpx.ConnectTimeout; look at the cause
    from aiohttp import ClientConnectorError as _AiohttpConnectorError
    from aiohttp import ConnectionTimeoutError as _AiohttpConnectTimeout

    _AIOHTTP_NEVER_SENT: tuple[type[BaseException], ...] = (
        _AiohttpConnectorError,
        _AiohttpConnectTimeout,
    )
except ImportError:  # pragma: no cover - aiohttp is optional
    _AIOHTTP_NEVER_SENT = ()


class Classifier(Protocol):
    def __call__(
        self,
        response: httpx.Response,
        operation: str,
        *,
        sent_request_id: str,
        max_retry_after_s: float,
    ) -> ProviderError | None: ...


@dataclass
class CallState:
    """What happened across the attempts of one operation (read by the connectors)."""

    attempts: int = 0
    unknown_outcome: bool = False
    """An earlier attempt may have taken effect (no response, or a 5xx)."""


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


def transport_failure(
    exc: httpx.TransportError, *, provider: str, operation: str, request_id: str, idempotent: bool
) -> ProviderError:
    """Group a failure without response: retry it, or report an unknown outcome."""
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
    if idempotent or never_sent(exc):
        # Connect errors, read timeouts and resets of a call that is safe to repeat.
        return TransientError(f"no response: {detail}", **kwargs)
    return UnknownOutcome(f"no response, the call may have taken effect: {detail}", **kwargs)


class Caller:
    """Sends the requests of one target through its limiter, retry policy and classifier."""

    def __init__(
        self,
        *,
        target: str,
        session: HttpSession,
        limiter: RateLimiter,
        config: ClientConfig,
        classify: Classifier,
        on_call: OnCall | None,
        secrets: tuple[str, ...] = (),
    ) -> None:
        self.target = target
        # Credential strings to scrub from error messages, should a server echo one back.
        self._secrets = tuple(s for s in secrets if s)
        self._session = session
        self._limiter = limiter
        self._config = config
        self._classify = classify
        self._on_call = on_call

    async def call(
        self,
        operation: str,
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
        cfg = self._config
        content = orjson.dumps(body) if body is not None else None
        state = state if state is not None else CallState()
        args = (operation, method, path_template, path, params, content, idempotent, state)
        started = cfg.clock()
        # tenacity costs ~25 µs per call even when nothing fails, a sixth of the whole; the
        # first attempt runs outside it, and from the first retryable failure on tenacity
        # runs the policy, replaying that failure as its attempt 1 so the attempt count,
        # waits and stop are exactly the policy's.
        try:
            return await self._attempt(*args)
        except ProviderError as exc:
            if not is_retryable(exc) or cfg.max_attempts <= 1:
                raise
            first_failure = exc
        replayed = False

        async def attempt() -> httpx.Response:
            nonlocal replayed
            if not replayed:
                replayed = True
                raise first_failure
            return await self._attempt(*args)

        retrying = make_retry(
            cfg.max_attempts,
            cfg.max_elapsed_s,
            cfg.sleep,
            clock=cfg.clock,
            backoff_base_s=cfg.backoff_base_s,
            backoff_max_s=cfg.backoff_max_s,
            on_retry=self._count_retry,
            started_at=started,
        )
        response: httpx.Response = await retrying(attempt)
        return response

    def _count_retry(self, _state: RetryCallState) -> None:
        self._limiter.note_retry()

    async def _attempt(
        self,
        operation: str,
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
        request_id = os.urandom(16).hex()  # 128 random bits, as uuid4 (which costs 6x)
        request = self._session.build_request(
            method, path, params=params, content=content, request_id=request_id
        )
        started_at = datetime.now(UTC)
        t0 = time.perf_counter()
        if gate is not None:
            gate.sent()
        try:
            response = await self._session.send(request)
        except asyncio.CancelledError:
            # Cancelled in flight: the request may have reached the provider and been acted
            # on. It is a call made all the same, logged as one without a response.
            state.unknown_outcome = True
            self._record(
                operation,
                method,
                path_template,
                None,
                "CancelledError",
                state.attempts,
                (time.perf_counter() - t0) * 1000,
                started_at,
                request_id,
            )
            raise
        except httpx.TransportError as exc:
            latency = (time.perf_counter() - t0) * 1000
            limiter.on_response(None, emitted, None)
            failure = transport_failure(
                exc,
                provider=self.target,
                operation=operation,
                request_id=request_id,
                idempotent=idempotent,
            )
            self._scrub(failure)
            if not never_sent(exc):
                state.unknown_outcome = True
            self._record(
                operation,
                method,
                path_template,
                None,
                failure.code,
                state.attempts,
                latency,
                started_at,
                request_id,
            )
            raise failure from exc
        finally:
            limiter.release()
            if gate is not None:
                # A waiter on the gate runs only when this task next yields: the call is
                # logged by then, on every path.
                gate.done()
        latency = (time.perf_counter() - t0) * 1000
        error = self._classify(
            response,
            operation,
            sent_request_id=request_id,
            max_retry_after_s=self._config.max_retry_after_s,
        )
        status = response.status_code
        if error is not None:
            self._scrub(error)
            if gate is not None and isinstance(error, FatalError):
                # Closed before any other task runs: none sends after the provider refused us.
                gate.close(str(error))
        limiter.on_response(status, emitted, error.retry_after if error is not None else None)
        self._record(
            operation,
            method,
            path_template,
            status,
            error.code if error is not None else None,
            state.attempts,
            latency,
            started_at,
            error.request_id if error is not None and error.request_id else request_id,
        )
        if error is None:
            return response
        if status >= 500:
            state.unknown_outcome = True
            if not idempotent:
                # The server may have committed before failing (Verifone create): reconcile.
                raise UnknownOutcome(
                    error.message,
                    provider=error.provider,
                    operation=operation,
                    status=status,
                    code=error.code,
                    request_id=error.request_id,
                )
        raise error

    def _scrub(self, error: ProviderError) -> None:
        for secret in self._secrets:
            if secret in error.message:
                error.message = error.message.replace(secret, "**********")
                error.args = (error.message,)
            if error.code and secret in error.code:
                error.code = error.code.replace(secret, "**********")

    def _record(
        self,
        operation: str,
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


def json_body(response: httpx.Response, *, provider: str, operation: str) -> Any:
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
