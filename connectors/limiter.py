"""Per-target rate limiter: evenly spaced emissions (GCRA), a cap on calls in flight, a shared
``Retry-After`` pause and an adaptive mode for limits nobody publishes.

Why GCRA and not a plain token bucket: a server enforcing R req/s with a small burst answers
429 as soon as a client bunches requests, so averaging R is not enough; every emission gets
its own slot ``1/R`` after the previous one (``burst`` slots of tolerance), measured on a
monotonic clock. A slot reserved before a pause or a rate decrease is given up and taken
again, so nobody fires into a pause the target was told to respect.

A limit shared with other processes (several workers running tenants on one credential) is
a :class:`SharedRate`: before its calls, the limiter takes permits from it in groups (one
round trip to whoever grants them per group, not per call), then spaces them locally as
above. The connectors know nothing of who grants them: the pipelines inject the callable
(:data:`shared_rate`, a context variable, as :data:`~connectors.gate.send_gate`).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass

from connectors.config import Clock, Sleep

_PROBE_STEP = 1.03

Permit = Callable[[int], Awaitable[None]]
"""Waits until ``k`` calls are allowed by a limit shared with other processes."""


@dataclass(frozen=True)
class SharedRate:
    """A rate limit shared with other processes: ``permit(group)`` before every ``group``
    attempts (each a round trip to whoever keeps the shared count)."""

    permit: Permit
    group: int = 1

    def __post_init__(self) -> None:
        if self.group < 1:
            raise ValueError("group must be >= 1")


shared_rate: ContextVar[SharedRate | None] = ContextVar("custsync_shared_rate", default=None)
"""The shared limit of the run the current task works for, read when a connector is built
(``None``: the limiter's own rate is the only one)."""


@dataclass(frozen=True)
class LimiterStats:
    """Live figures of one target's limiter (for the run summary)."""

    mode: str
    """``fixed``, ``adaptive`` or ``unlimited``."""
    rate: float | None
    """Current rate in req/s (``None`` when unlimited)."""
    http_429: int
    retries: int
    pauses: int
    paused_s: float
    """Seconds of ``Retry-After`` pauses asked for (overlapping pauses counted once)."""
    decreases: int
    acquired: int
    permits: int = 0
    """Groups of permits taken from a :class:`SharedRate` (round trips to its keeper)."""


class RateLimiter:
    """Schedules the calls of one target.

    ``rate``: req/s, ``None`` for adaptive (starting at ``start_rate``) or ``math.inf`` for no
    rate limit. Use :meth:`acquire` / :meth:`release` around every HTTP attempt and report
    every response with :meth:`on_response`.
    """

    def __init__(
        self,
        *,
        rate: float | None,
        burst: int = 2,
        max_in_flight: int = 8,
        start_rate: float = 50.0,
        decrease: float = 0.7,
        quiet_s: float = 0.5,
        min_rate: float = 1.0,
        clock: Clock,
        sleep: Sleep,
        shared: SharedRate | None = None,
    ) -> None:
        self._adaptive = rate is None
        self._unlimited = rate is not None and math.isinf(rate)
        self._rate = start_rate if rate is None else rate
        self._burst = burst
        self._clock = clock
        self._sleep = sleep
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._decrease = decrease
        self._quiet_s = quiet_s
        self._min_rate = min_rate
        self._set_rate(self._rate)
        self._tat = -math.inf  # theoretical arrival time of the next conforming call
        self._paused_until = -math.inf
        self._epoch = 0  # bumped when reserved slots become invalid (pause, decrease)
        # adaptive state
        # Proving a probe takes long enough for a server burst of ~10 to drain at 1 % excess.
        self._hold_s = max(10 * quiet_s, 5.0)
        self._probe_s = 120.0
        self._good = 0.0  # highest rate held without 429 for hold_s
        self._bad = math.inf  # rate that drew the last 429
        self._last_change = clock()
        self._last_decrease = -math.inf
        # figures
        self._n_429 = 0
        self._n_retries = 0
        self._n_pauses = 0
        self._paused_s = 0.0
        self._n_decreases = 0
        self._n_acquired = 0
        # shared limit: permits taken in groups, spent one per attempt
        self._shared = shared
        self._permits = 0
        self._permit_lock = asyncio.Lock()
        self._n_permits = 0

    def _set_rate(self, rate: float) -> None:
        self._rate = rate
        self._interval = 0.0 if self._unlimited else 1.0 / rate
        self._tau = (self._burst - 1) * self._interval

    @property
    def rate(self) -> float | None:
        """The rate in force now (``None`` when unlimited)."""
        return None if self._unlimited else self._rate

    async def acquire(self) -> float:
        """Wait for a slot in flight and for this call's emission time; return that time."""
        await self._in_flight.acquire()
        try:
            if self._shared is not None:
                await self._take_permit(self._shared)
            return await self._wait_turn()
        except BaseException:
            self._in_flight.release()
            raise

    async def _take_permit(self, shared: SharedRate) -> None:
        # One task refills a group while the others queue on the lock: one round trip per
        # group. A refill cancelled half-way gained nothing, so nothing is counted.
        async with self._permit_lock:
            if self._permits == 0:
                await shared.permit(shared.group)
                self._permits = shared.group
                self._n_permits += 1
            self._permits -= 1

    def release(self) -> None:
        """Give back the in-flight slot taken by :meth:`acquire`."""
        self._in_flight.release()

    async def _wait_turn(self) -> float:
        clock = self._clock
        while True:
            now = clock()
            epoch = self._epoch
            if self._unlimited:
                emit = max(now, self._paused_until)
            else:
                t = max(self._tat, now)
                emit = max(t - self._tau, now, self._paused_until)
                self._tat = max(t, emit) + self._interval
            if emit <= now:
                self._n_acquired += 1
                return now
            await self._sleep(emit - now)
            if self._epoch == epoch:
                self._n_acquired += 1
                return emit
            # A pause or a decrease happened while we slept: our slot is void, queue again.

    def pause(self, seconds: float) -> None:
        """Hold every call of this target for ``seconds`` from now (a ``Retry-After``)."""
        if seconds <= 0:
            return
        now = self._clock()
        until = now + seconds
        if until <= self._paused_until:
            return
        self._paused_s += until - max(now, self._paused_until)
        self._n_pauses += 1
        self._paused_until = until
        self._reschedule(now)

    def _reschedule(self, now: float) -> None:
        self._epoch += 1
        self._tat = max(now, self._paused_until)

    def note_retry(self) -> None:
        """Count one retried attempt (figures only)."""
        self._n_retries += 1

    def on_response(self, status: int | None, emitted_at: float, retry_after: float | None) -> None:
        """Feed back one attempt's result: 429s pause and slow the target, quiet raises it."""
        if status == 429:
            self._n_429 += 1
            if retry_after is not None:
                self.pause(retry_after)
            # A 429 to a call sent before our last decrease says nothing about the new rate.
            if self._adaptive and emitted_at >= self._last_decrease:
                self._decrease_rate()
        elif self._adaptive:
            now = self._clock()
            if now >= self._paused_until and now - self._last_change >= self._quiet_s:
                self._increase_rate(now)

    def _decrease_rate(self) -> None:
        now = self._clock()
        if math.isinf(self._bad):
            # Leaving the slow start: its levels were held too briefly to count as proven.
            self._good = min(self._good, self._rate * self._decrease)
        elif self._good >= self._rate:  # the limit fell below what used to be safe
            self._good = self._rate * 0.95
        self._bad = self._rate
        self._set_rate(max(self._min_rate, self._rate * self._decrease))
        self._last_decrease = now
        self._last_change = max(now, self._paused_until)
        self._n_decreases += 1
        self._reschedule(now)

    def _increase_rate(self, now: float) -> None:
        # ``good``: the highest rate held for ``hold_s`` without a 429; ``bad``: the rate that
        # drew the last 429. After a decrease and one quiet period, go straight back to
        # ``good``; from there probe upwards in steps of 3 %, each held until proven, and stop
        # probing within 3 % of ``bad``: every 429 costs a Retry-After pause of the whole
        # target, so few probes near the limit beat a sawtooth around it. Before the first
        # 429, grow 20 % per quiet period (a slow start), each level counting as proven.
        held = now - self._last_change
        rate = self._rate
        slow_start = math.isinf(self._bad)
        if rate > self._good and held >= (self._quiet_s if slow_start else self._hold_s):
            self._good = rate
        if rate < self._good:
            new = self._good
        elif rate > self._good:
            return  # a probe not proven yet
        elif slow_start:
            new = rate * 1.2
        elif rate * _PROBE_STEP < self._bad:
            new = rate * _PROBE_STEP
        elif held >= self._probe_s:
            # Near the limit for long: it may have been raised since; probe once more.
            self._bad = math.inf
            new = rate * _PROBE_STEP
        else:
            return
        self._set_rate(new)
        self._last_change = now

    def stats(self) -> LimiterStats:
        """A snapshot of the live figures."""
        mode = "unlimited" if self._unlimited else "adaptive" if self._adaptive else "fixed"
        return LimiterStats(
            mode=mode,
            rate=self.rate,
            http_429=self._n_429,
            retries=self._n_retries,
            pauses=self._n_pauses,
            paused_s=self._paused_s,
            decreases=self._n_decreases,
            acquired=self._n_acquired,
            permits=self._n_permits,
        )
