"""The sandbox's misbehaviour: a rate limit per credential, latency and seeded faults."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable

from connectors.sandbox.config import COMMIT_FAULTS, PRE_FAULTS, SandboxConfig


class TokenBucket:
    """A precise token bucket: ``rate`` tokens/s, at most ``burst`` banked.

    A refused request takes no token, so a client that waits ``Retry-After`` is served.
    """

    __slots__ = ("_clock", "_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def take(self) -> float:
        """Take a token; return 0.0 if granted, else the seconds until one is available."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate


class RateLimiter:
    """One :class:`TokenBucket` per credential (``None`` rate: everything passes)."""

    def __init__(
        self, rate: float | None, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def check(self, credential: str) -> int | None:
        """``None`` if the call may proceed, else the ``Retry-After`` in whole seconds (≥ 1).

        RFC 9110 only allows whole seconds; rounding up means a client honouring it is
        never refused again for the same shortfall.
        """
        if self.rate is None:
            return None
        bucket = self._buckets.get(credential)
        if bucket is None:
            bucket = self._buckets[credential] = TokenBucket(self.rate, self.burst, self._clock)
        wait = bucket.take()
        if wait == 0.0:
            return None
        return max(1, math.ceil(wait))


class FaultInjector:
    """Draws faults from ``random.Random(seed)``, so a seeded run fails the same way.

    One draw per API request when ``fault_rate > 0``. A pre-fault (500/502/503/reset) happens
    before the request is handled; a commit fault (``commit_500``/``commit_reset``) only
    on a mutating request, after its change has been applied.
    """

    def __init__(self, config: SandboxConfig) -> None:
        self.rate = config.fault_rate
        self._rng = random.Random(config.seed)
        self._pre = tuple(k for k in config.fault_kinds if k in PRE_FAULTS)
        self._any = tuple(config.fault_kinds)

    def draw(self, mutating: bool) -> str | None:
        """The fault for this request, or ``None``."""
        if self.rate <= 0.0:
            return None
        kinds = self._any if mutating else self._pre
        if self._rng.random() >= self.rate or not kinds:
            return None
        return self._rng.choice(kinds)

    @staticmethod
    def is_commit(kind: str) -> bool:
        """Whether ``kind`` strikes after the change is applied."""
        return kind in COMMIT_FAULTS


class Latency:
    """Fixed latency plus uniform jitter, from its own seeded generator."""

    def __init__(self, config: SandboxConfig) -> None:
        self.fixed_s = config.latency_ms / 1000.0
        self.jitter_s = config.jitter_ms / 1000.0
        seed = None if config.seed is None else config.seed + 1
        self._rng = random.Random(seed)

    def draw(self) -> float:
        """Seconds to wait before answering (0.0 when both knobs are 0)."""
        if self.jitter_s <= 0.0:
            return self.fixed_s
        return self.fixed_s + self._rng.uniform(0.0, self.jitter_s)
