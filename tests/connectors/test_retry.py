"""Retry decisions, Retry-After parsing and the retry factory (sleep injected: no waiting)."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import aiohttp
import httpx
import pytest

from connectors.caller import never_sent, transport_failure
from connectors.errors import (
    AuthError,
    ConfigError,
    ProviderError,
    RecordRejected,
    TransientError,
    UnknownOutcome,
)
from connectors.retry import is_retryable, make_retry, parse_retry_after

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("  ", None),
        ("0", 0.0),
        ("5", 5.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("99999", 120.0),
        ("Sun, 01 Mar 2026 12:00:30 GMT", 30.0),
        ("Sun, 01 Mar 2026 11:59:00 GMT", 0.0),
        ("Mon, 02 Mar 2026 12:00:00 GMT", 120.0),
        ("Sunday, 01-Mar-26 12:00:10 GMT", 10.0),  # RFC 850, obsolete but allowed
        ("Sun Mar  1 12:00:20 2026", 20.0),  # asctime, no zone: GMT
        ("soon", None),
        ("nan", None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, max_s=120, now=NOW) == expected


def _err(cls: type[ProviderError], status: int | None = 500) -> ProviderError:
    return cls("x", provider="p", operation="o", status=status)


@pytest.mark.parametrize(
    ("exc", "retry"),
    [
        (_err(TransientError, 429), True),
        (_err(TransientError, 503), True),
        (_err(TransientError, None), True),
        (_err(UnknownOutcome, None), False),
        (_err(RecordRejected, 400), False),
        (_err(AuthError, 401), False),
        (_err(ConfigError, 404), False),
        (ValueError("bug"), False),
    ],
)
def test_is_retryable(exc: BaseException, retry: bool) -> None:
    assert is_retryable(exc) is retry


def _wrapped(httpx_exc: type[httpx.TransportError], cause: BaseException) -> httpx.TransportError:
    exc = httpx_exc("wrapped")
    exc.__cause__ = cause
    return exc


def _server_disconnected() -> BaseException:
    return aiohttp.ServerDisconnectedError()


def _connector_error() -> BaseException:
    key = aiohttp.client_reqrep.ConnectionKey("h", 1, False, True, None, None, None)
    return aiohttp.ClientConnectorError(key, OSError(111, "refused"))


@pytest.mark.parametrize(
    ("exc", "idempotent", "expected", "sent"),
    [
        # httpx's own transport
        (httpx.ConnectError("refused"), False, TransientError, False),
        (httpx.ConnectTimeout("slow"), False, TransientError, False),
        (httpx.PoolTimeout("pool"), False, TransientError, False),
        (httpx.ReadTimeout("slow"), True, TransientError, True),
        (httpx.ReadTimeout("slow"), False, UnknownOutcome, True),
        (httpx.WriteTimeout("slow"), False, UnknownOutcome, True),
        (httpx.RemoteProtocolError("reset"), True, TransientError, True),
        (httpx.RemoteProtocolError("reset"), False, UnknownOutcome, True),
        (httpx.ReadError("reset"), False, UnknownOutcome, True),
        (httpx.UnsupportedProtocol("ftp"), True, ConfigError, True),
        # httpx-aiohttp maps a reset after the request was written to ConnectTimeout
        (_wrapped(httpx.ConnectTimeout, _server_disconnected()), False, UnknownOutcome, True),
        (_wrapped(httpx.ConnectTimeout, _server_disconnected()), True, TransientError, True),
        (_wrapped(httpx.ConnectTimeout, _connector_error()), False, TransientError, False),
    ],
)
def test_transport_failures(
    exc: httpx.TransportError, idempotent: bool, expected: type, sent: bool
) -> None:
    failure = transport_failure(
        exc, provider="verifone", operation="create", request_id="r1", idempotent=idempotent
    )
    assert type(failure) is expected
    assert failure.status is None and failure.request_id == "r1"
    assert never_sent(exc) is (not sent)


def test_aiohttp_cause_names_the_error_code() -> None:
    exc = _wrapped(httpx.ConnectTimeout, _server_disconnected())
    failure = transport_failure(exc, provider="p", operation="o", request_id="r", idempotent=True)
    assert failure.code == "ServerDisconnectedError"


class Flaky:
    def __init__(self, failures: list[BaseException]) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


class Sleeps:
    def __init__(self) -> None:
        self.slept: list[float] = []
        self.now = 0.0

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def _run(failures: list[BaseException], **kwargs: float) -> tuple[Flaky, Sleeps, object]:
    fn, sleeps = Flaky(failures), Sleeps()
    retrying = make_retry(
        int(kwargs.get("max_attempts", 4)),
        kwargs.get("max_elapsed_s", 1000.0),
        sleeps,
        clock=sleeps.clock,
        backoff_base_s=1.0,
        backoff_max_s=8.0,
        rng=random.Random(1),
    )
    try:
        result: object = asyncio.run(retrying(fn))
    except ProviderError as exc:
        result = exc
    return fn, sleeps, result


def test_transient_failures_are_retried_until_success() -> None:
    fn, sleeps, result = _run([_err(TransientError, 503), _err(TransientError, None)])
    assert result == "ok" and fn.calls == 3 and len(sleeps.slept) == 2


def test_rejections_and_unknown_outcomes_are_not_retried() -> None:
    for cls in (RecordRejected, AuthError, UnknownOutcome):
        fn, sleeps, result = _run([_err(cls)])
        assert isinstance(result, cls) and fn.calls == 1 and sleeps.slept == []


def test_gives_up_after_max_attempts_with_the_last_error() -> None:
    last = _err(TransientError, 502)
    fn, sleeps, result = _run([_err(TransientError)] * 3 + [last], max_attempts=4)
    assert result is last and fn.calls == 4 and len(sleeps.slept) == 3


def test_backoff_is_full_jitter_exponential_and_capped() -> None:
    _fn, sleeps, _ = _run([_err(TransientError)] * 7, max_attempts=8)
    caps = [1, 2, 4, 8, 8, 8, 8]
    assert len(sleeps.slept) == 7
    assert all(0 <= s <= cap for s, cap in zip(sleeps.slept, caps, strict=True))
    assert len(set(sleeps.slept)) == 7  # jittered, not fixed


def test_retry_after_sets_the_wait() -> None:
    throttled = TransientError("slow down", provider="p", operation="o", status=429, retry_after=7)
    _fn, sleeps, result = _run([throttled])
    assert result == "ok" and sleeps.slept == [7]


def test_max_elapsed_stops_before_a_sleep_that_would_overrun_it() -> None:
    throttled = [
        TransientError("slow", provider="p", operation="o", status=429, retry_after=4)
        for _ in range(5)
    ]
    fn, sleeps, result = _run(throttled, max_attempts=10, max_elapsed_s=10)
    assert isinstance(result, TransientError)
    assert sleeps.slept == [4, 4] and fn.calls == 3
