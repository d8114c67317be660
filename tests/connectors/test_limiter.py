"""The limiter on virtual time: spacing, burst, in-flight cap, shared pauses, adaptive mode."""

from __future__ import annotations

import asyncio
import itertools
import math
from typing import Any

import pytest

from connectors.limiter import RateLimiter
from tests.connectors.fakes import VirtualTime


def _limiter(vt: VirtualTime, **kwargs: Any) -> RateLimiter:
    kwargs.setdefault("rate", 100.0)
    kwargs.setdefault("burst", 1)
    kwargs.setdefault("max_in_flight", 8)
    return RateLimiter(clock=vt.clock, sleep=vt.sleep, **kwargs)


async def _worker(
    vt: VirtualTime, limiter: RateLimiter, n: int, emitted: list[float], hold_s: float = 0.001
) -> None:
    for _ in range(n):
        at = await limiter.acquire()
        emitted.append(at)
        await vt.sleep(hold_s)
        limiter.release()
        limiter.on_response(200, at, None)


def _run_workers(vt: VirtualTime, limiter: RateLimiter, workers: int, each: int) -> list[float]:
    emitted: list[float] = []

    async def main() -> None:
        await asyncio.gather(*(_worker(vt, limiter, each, emitted) for _ in range(workers)))

    asyncio.run(vt.run(main()))
    return sorted(emitted)


def test_emissions_are_evenly_spaced_at_the_rate() -> None:
    vt = VirtualTime()
    times = _run_workers(vt, _limiter(vt, rate=100.0), workers=8, each=25)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) == 200
    assert min(gaps) == pytest.approx(0.01)
    assert times[-1] - times[0] == pytest.approx(1.99)


def test_burst_allows_that_many_at_once_then_spaces() -> None:
    vt = VirtualTime()
    times = _run_workers(vt, _limiter(vt, rate=10.0, burst=3), workers=8, each=2)
    assert times[:3] == [0.0, 0.0, 0.0]
    # then one per 0.1 s: never more than rate*window + burst in any window
    for i, t in enumerate(times):
        in_window = sum(1 for u in times[i:] if u < t + 0.5)
        assert in_window <= 5 + 3


def test_in_flight_cap_holds() -> None:
    vt = VirtualTime()
    limiter = _limiter(vt, rate=math.inf, max_in_flight=3)
    active = 0
    peak = 0

    async def one() -> None:
        nonlocal active, peak
        await limiter.acquire()
        active += 1
        peak = max(peak, active)
        await vt.sleep(0.05)
        active -= 1
        limiter.release()

    async def main() -> None:
        await asyncio.gather(*(one() for _ in range(12)))

    asyncio.run(vt.run(main()))
    assert peak == 3
    assert vt.now == pytest.approx(0.2)  # 12 calls, 3 at a time, 50 ms each
    assert limiter.stats().mode == "unlimited" and limiter.rate is None


def test_retry_after_pauses_every_worker_of_the_target() -> None:
    vt = VirtualTime()
    limiter = _limiter(vt, rate=100.0)
    emitted: list[float] = []

    async def main() -> None:
        async def throttled_once() -> None:
            await vt.sleep(0.105)
            limiter.on_response(429, vt.now, 2.0)

        await asyncio.gather(
            throttled_once(), *(_worker(vt, limiter, 10, emitted) for _ in range(4))
        )

    asyncio.run(vt.run(main()))
    emitted.sort()
    assert not [t for t in emitted if 0.105 < t < 2.105]
    assert sum(1 for t in emitted if t >= 2.105) > 20
    stats = limiter.stats()
    assert (stats.http_429, stats.pauses, stats.paused_s) == (1, 1, 2.0)


def test_overlapping_pauses_count_once_and_shorter_ones_do_not_shorten() -> None:
    vt = VirtualTime()
    limiter = _limiter(vt)
    limiter.pause(3.0)
    limiter.pause(1.0)
    assert limiter.stats().paused_s == 3.0
    vt.now = 2.0
    limiter.pause(2.0)  # until 4.0: one more second
    assert limiter.stats().paused_s == 4.0 and limiter.stats().pauses == 2


def test_adaptive_decreases_once_per_event_and_ignores_stale_429s() -> None:
    vt = VirtualTime()
    limiter = _limiter(vt, rate=None, start_rate=100.0, decrease=0.7)
    vt.now = 1.0
    limiter.on_response(429, 0.9, None)
    assert limiter.rate == pytest.approx(70.0)
    limiter.on_response(429, 0.95, None)  # sent before the decrease: no new information
    assert limiter.rate == pytest.approx(70.0)
    vt.now = 1.2
    limiter.on_response(429, 1.1, None)
    assert limiter.rate == pytest.approx(49.0)
    assert limiter.stats().decreases == 2 and limiter.stats().http_429 == 3


def test_adaptive_increases_after_quiet_periods_only() -> None:
    vt = VirtualTime()
    limiter = _limiter(vt, rate=None, start_rate=10.0, quiet_s=0.5)
    limiter.on_response(200, 0.0, None)
    assert limiter.rate == 10.0
    vt.now = 0.6
    limiter.on_response(200, 0.5, None)
    assert limiter.rate == pytest.approx(12.0)  # slow start: +20 % per quiet period
    vt.now = 0.7
    limiter.on_response(200, 0.6, None)
    assert limiter.rate == pytest.approx(12.0)


class ServerBucket:
    """The provider: a token bucket of ``rate``/s and ``burst``; Retry-After = ceil(wait)."""

    def __init__(self, vt: VirtualTime, rate: float, burst: int) -> None:
        self.vt, self.rate, self.burst = vt, rate, burst
        self.tokens = float(burst)
        self.last = 0.0
        self.ok = 0
        self.refused = 0

    def take(self) -> float | None:
        now = self.vt.now
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            self.ok += 1
            return None
        self.refused += 1
        return float(max(1, math.ceil((1 - self.tokens) / self.rate)))


def _against_server(limiter: RateLimiter, vt: VirtualTime, calls: int) -> ServerBucket:
    server = ServerBucket(vt, rate=200.0, burst=10)
    remaining = calls

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            while True:  # retry 429s until accepted, like the caller does
                at = await limiter.acquire()
                retry_after = server.take()
                await vt.sleep(0.002)
                limiter.release()
                limiter.on_response(429 if retry_after else 200, at, retry_after)
                if retry_after is None:
                    break

    async def main() -> None:
        await asyncio.gather(*(worker() for _ in range(8)))

    asyncio.run(vt.run(main()))
    return server


def test_fixed_rate_meets_the_server_limit_without_429() -> None:
    vt = VirtualTime()
    server = _against_server(_limiter(vt, rate=200.0, burst=2), vt, 2000)
    assert server.refused == 0
    assert server.ok / vt.now >= 0.99 * 200


def test_a_too_high_fixed_rate_is_held_back_by_retry_after() -> None:
    vt = VirtualTime()
    limiter = _limiter(vt, rate=400.0, burst=2)
    server = _against_server(limiter, vt, 2000)
    # Every 429 pauses the whole target for a second: few of them, and the work gets done.
    assert server.ok == 2000
    assert server.refused == limiter.stats().http_429


@pytest.mark.parametrize("start", [400.0, 50.0])
def test_adaptive_converges_below_the_limit_with_few_429(start: float) -> None:
    vt = VirtualTime()
    limiter = _limiter(vt, rate=None, start_rate=start, burst=2, decrease=0.7, quiet_s=0.5)
    server = _against_server(limiter, vt, 10_000)
    assert server.ok == 10_000
    assert server.refused / (server.ok + server.refused) <= 0.05
    achieved = server.ok / vt.now
    print(f"adaptive: {achieved / 200:.3f} R, {server.refused} x 429, rate {limiter.rate:.1f}")
    assert achieved >= 0.9 * 200
    assert limiter.rate is not None and 0.95 * 200 <= limiter.rate <= 1.0 * 200
