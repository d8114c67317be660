"""The one retry policy: tenacity, transient failures only, full-jitter backoff, Retry-After.

What is transient is decided where the failure is classified (``classify.py`` for responses,
``caller.py`` for transport errors): they raise :class:`TransientError`; everything else
(rejections, auth, a non-idempotent call with an unknown outcome) is never retried here.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.stop import stop_base
from tenacity.wait import wait_base, wait_random_exponential

from connectors.config import Clock, Sleep
from connectors.errors import TransientError, UnknownOutcome


def parse_retry_after(
    value: str | None, *, max_s: float, now: datetime | None = None
) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), clamped.

    Returns ``None`` when the header is absent or unreadable; negative values and dates in the
    past give ``0``; anything above ``max_s`` gives ``max_s``.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; obsolete forms may lack a zone
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), max_s)


def is_retryable(exc: BaseException) -> bool:
    """Retry transient failures; a non-idempotent call with an unknown outcome never."""
    return isinstance(exc, TransientError) and not isinstance(exc, UnknownOutcome)


class wait_retry_after_or_jitter(wait_base):
    """The provider's ``Retry-After`` when it gave one, else exponential backoff, full jitter."""

    def __init__(self, base_s: float, max_s: float, rng: random.Random | None = None) -> None:
        self._jitter = wait_random_exponential(multiplier=base_s, max=max_s)
        self._rng = rng

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return float(retry_after)
        if self._rng is None:
            return self._jitter(retry_state)
        high = min(
            self._jitter.max, self._jitter.multiplier * 2 ** (retry_state.attempt_number - 1)
        )
        return self._rng.uniform(0, high)


class stop_after_elapsed(stop_base):
    """Stop when the next sleep would end past ``max_s`` since the first attempt.

    tenacity measures with ``time.monotonic``; this uses the connector's (injectable) clock.
    """

    def __init__(self, max_s: float, clock: Clock, start: float | None = None) -> None:
        self._max_s = max_s
        self._clock = clock
        self._start = clock() if start is None else start

    def __call__(self, retry_state: RetryCallState) -> bool:
        elapsed = self._clock() - self._start
        return elapsed + retry_state.upcoming_sleep > self._max_s


def make_retry(
    max_attempts: int,
    max_elapsed_s: float,
    sleep: Sleep,
    *,
    clock: Clock = time.monotonic,
    backoff_base_s: float = 0.5,
    backoff_max_s: float = 30.0,
    on_retry: Callable[[RetryCallState], None] | None = None,
    rng: random.Random | None = None,
    started_at: float | None = None,
) -> AsyncRetrying:
    """A fresh ``AsyncRetrying`` for one operation (tenacity's state is per object, so build
    one per call): at most ``max_attempts`` attempts within ``max_elapsed_s`` seconds (from
    ``started_at`` on ``clock``, default now), retrying :func:`is_retryable` failures,
    re-raising the last one when it gives up."""
    return AsyncRetrying(
        sleep=sleep,
        stop=stop_after_attempt(max_attempts)
        | stop_after_elapsed(max_elapsed_s, clock, started_at),
        wait=wait_retry_after_or_jitter(backoff_base_s, backoff_max_s, rng),
        retry=retry_if_exception(is_retryable),
        before_sleep=on_retry,
        reraise=True,
    )
