"""The one retry policy: what is retried, how long to wait, what an unknown outcome calls for.

Classification says what a failure *is*: ``classify.py`` for a response,
:func:`connectors.caller.no_response` for a call without one (transient, rejected, fatal).
:class:`RetryPolicy` alone decides what follows:

- :func:`settle`: a failed attempt of a call that is not safe to repeat (a Verifone create),
  which the provider may have acted on (it answered 5xx, or the request left and no answer
  came), ends with :class:`~connectors.errors.UnknownOutcome`, whatever its group;
- :func:`is_retryable`: only :class:`~connectors.errors.TransientError` is retried;
- :meth:`RetryPolicy.call`: the attempts of one call (tenacity: full-jitter exponential
  backoff or the provider's ``Retry-After``, at most ``max_attempts`` within
  ``max_elapsed_s``);
- :meth:`RetryPolicy.run`: an operation whose call may end with an unknown outcome, given the
  strategy for one (``on_unknown_outcome``, the look-up of what was sent): found, it took
  effect; not found, it took none, so it is sent again, at most ``max_attempts`` times.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base, wait_random_exponential

from connectors.config import ClientConfig, Clock, Sleep
from connectors.errors import FatalError, ProviderError, TransientError, UnknownOutcome

T = TypeVar("T")

OnRetry = Callable[[RetryCallState], None]
OnUnknownOutcome = Callable[[UnknownOutcome], Awaitable[T | None]]
"""The strategy for an unknown outcome: the result the call had, when a look-up finds its
effect; ``None`` when it certainly took none (sending it again is safe). It raises when it
cannot tell (an :class:`UnknownOutcome` again: nothing may be re-sent)."""


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
    """Retry transient failures only: never a rejection, a fatal error or an unknown outcome
    (that one is no :class:`TransientError`: it goes to ``on_unknown_outcome``)."""
    return isinstance(exc, TransientError)


def settle(failure: ProviderError, *, idempotent: bool, may_have_acted: bool) -> ProviderError:
    """The error a failed attempt ends with: ``failure`` as classified, or an
    :class:`UnknownOutcome` when the call is not safe to repeat (``idempotent=False``) and the
    provider may have acted on it (``may_have_acted``: a 5xx, or no answer to a request that
    left). A fatal error stays fatal: the run stops either way."""
    if idempotent or not may_have_acted or isinstance(failure, FatalError):
        return failure
    # The server may have committed before failing (the sandbox's commit_500 and
    # commit_reset show it): repeating the call could do it twice.
    return UnknownOutcome(
        failure.message,
        provider=failure.provider,
        operation=failure.operation,
        status=failure.status,
        code=failure.code,
        request_id=failure.request_id,
    )


def may_still_be_running(unknown: UnknownOutcome) -> bool:
    """Whether the provider may still be working on the request (it timed out, rather than
    failed): a look-up run at once could miss what it is about to write."""
    return unknown.status is None and bool(unknown.code) and "Timeout" in str(unknown.code)


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
    on_retry: OnRetry | None = None,
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


class _NoEffect(Exception):
    """Internal: a round whose unknown outcome was looked up and found to have had no effect."""

    def __init__(self, error: TransientError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(frozen=True)
class RetryPolicy:
    """The retry policy of one target: built once per client from its :class:`ClientConfig`."""

    max_attempts: int
    max_elapsed_s: float
    backoff_base_s: float
    backoff_max_s: float
    settle_delay_s: float
    """How long to let a timed-out request finish before looking it up."""
    sleep: Sleep
    clock: Clock = time.monotonic
    rng: random.Random | None = None
    """Jitter source (``None``: the ``random`` module); tests fix it."""

    @classmethod
    def of(cls, config: ClientConfig) -> RetryPolicy:
        """The policy ``config`` describes."""
        return cls(
            max_attempts=config.max_attempts,
            max_elapsed_s=config.max_elapsed_s,
            backoff_base_s=config.backoff_base_s,
            backoff_max_s=config.backoff_max_s,
            settle_delay_s=config.settle_delay_s,
            sleep=config.sleep,
            clock=config.clock,
        )

    async def call(self, attempt: Callable[[], Awaitable[T]], *, on_retry: OnRetry) -> T:
        """Run ``attempt`` until it succeeds or fails for good (:func:`make_retry`).

        tenacity costs ~25 µs per call even when nothing fails, a sixth of the whole; the
        first attempt runs outside it, and from the first retryable failure on tenacity runs
        the policy, replaying that failure as its attempt 1 so the attempt count, waits and
        stop are exactly the policy's. ``on_retry`` sees every wait before a retry.
        """
        started = self.clock()
        try:
            return await attempt()
        except ProviderError as exc:
            if not is_retryable(exc) or self.max_attempts <= 1:
                raise
            first_failure = exc
        replayed = False

        async def again() -> T:
            nonlocal replayed
            if not replayed:
                replayed = True
                raise first_failure
            return await attempt()

        retrying = make_retry(
            self.max_attempts,
            self.max_elapsed_s,
            self.sleep,
            clock=self.clock,
            backoff_base_s=self.backoff_base_s,
            backoff_max_s=self.backoff_max_s,
            on_retry=on_retry,
            rng=self.rng,
            started_at=started,
        )
        result: T = await retrying(again)
        return result

    async def run(
        self, send: Callable[[], Awaitable[T]], *, on_unknown_outcome: OnUnknownOutcome[T]
    ) -> T:
        """Run an operation that is not safe to repeat (its :meth:`call` ends with an
        :class:`UnknownOutcome` rather than retry one).

        After an unknown outcome: wait ``settle_delay_s`` if the request timed out, then ask
        ``on_unknown_outcome``. A result: that is the operation's. ``None``: it took no effect,
        so sending it again is as safe as retrying a transient failure: full-jitter backoff,
        then ``send`` again, at most ``max_attempts`` sends in all; then a
        :class:`TransientError` (nothing was done). Anything else ``send`` or the strategy
        raises ends the operation.
        """
        rounds = 0

        async def send_once() -> T:
            nonlocal rounds
            rounds += 1
            try:
                return await send()
            except UnknownOutcome as unknown:
                if may_still_be_running(unknown):
                    await self.sleep(self.settle_delay_s)
                found = await on_unknown_outcome(unknown)
                if found is not None:
                    return found
                raise _NoEffect(
                    TransientError(
                        f"{unknown.operation} failed {rounds} times without effect"
                        " (none was created)",
                        provider=unknown.provider,
                        operation=unknown.operation,
                        status=unknown.status,
                        code=unknown.code,
                        request_id=unknown.request_id,
                    )
                ) from unknown

        # The first round runs outside tenacity, as in :meth:`call` (a migration's creates
        # spent ~60 µs each in tenacity's set-up, issue 14); from a round without effect on,
        # tenacity runs the rounds, replaying that one as its attempt 1.
        try:
            return await send_once()
        except _NoEffect as gave_up:
            if self.max_attempts <= 1:
                raise gave_up.error from gave_up.__cause__
            first_round = gave_up
        replayed = False

        async def again() -> T:
            nonlocal replayed
            if not replayed:
                replayed = True
                raise first_round
            return await send_once()

        # Rounds are not bounded by max_elapsed_s: each send already is, and a look-up that
        # found nothing must be allowed its next send.
        retrying = AsyncRetrying(
            sleep=self.sleep,
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_retry_after_or_jitter(self.backoff_base_s, self.backoff_max_s, self.rng),
            retry=retry_if_exception_type(_NoEffect),
            reraise=True,
        )
        try:
            result: T = await retrying(again)
        except _NoEffect as gave_up:
            raise gave_up.error from gave_up.__cause__
        return result
