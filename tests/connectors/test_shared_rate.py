"""A limiter under a shared limit (virtual time): permits taken in groups, one round trip per
group, and several limiters sharing one keeper stay under its rate together."""

from __future__ import annotations

import asyncio
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.limiter import RateLimiter, SharedRate
from tests.connectors.fakes import VirtualTime


class Keeper:
    """A decaying slot count, as a Prefect global concurrency limit with slot decay keeps it:
    ``permit(k)`` waits until ``active + k <= limit``; active slots decay at ``rate``/s."""

    def __init__(self, vt: VirtualTime, limit: int, rate: float) -> None:
        self.vt, self.limit, self.rate = vt, limit, rate
        self.active = 0.0
        self.at = 0.0
        self.round_trips = 0
        self.granted: list[tuple[float, int]] = []

    async def permit(self, k: int) -> None:
        while True:
            self.round_trips += 1
            now = self.vt.clock()
            self.active = max(0.0, self.active - (now - self.at) * self.rate)
            self.at = now
            if self.active + k <= self.limit + 1e-9:
                self.active += k
                self.granted.append((now, k))
                return
            await self.vt.sleep((self.active + k - self.limit) / self.rate)


async def _calls(vt: VirtualTime, limiter: RateLimiter, n: int, out: list[float]) -> None:
    async def one() -> None:
        at = await limiter.acquire()
        out.append(at)
        await vt.sleep(0.01)
        limiter.release()

    await asyncio.gather(*(one() for _ in range(n)))


@settings(max_examples=40, deadline=None)
@given(
    calls=st.integers(1, 60),
    group=st.integers(1, 12),
    in_flight=st.integers(1, 8),
)
def test_permits_come_in_groups_one_round_trip_each(calls: int, group: int, in_flight: int) -> None:
    vt = VirtualTime()
    asked: list[int] = []

    async def permit(k: int) -> None:
        asked.append(k)
        await vt.sleep(0.05)  # a round trip

    limiter = RateLimiter(
        rate=50.0,
        max_in_flight=in_flight,
        clock=vt.clock,
        sleep=vt.sleep,
        shared=SharedRate(permit, group),
    )
    emitted: list[float] = []
    asyncio.run(vt.run(_calls(vt, limiter, calls, emitted)))
    assert len(emitted) == calls
    assert asked == [group] * math.ceil(calls / group)
    assert limiter.stats().permits == len(asked)


@settings(max_examples=25, deadline=None)
@given(
    workers=st.integers(2, 4),
    rate=st.sampled_from([2.0, 5.0, 10.0]),
    calls=st.integers(20, 60),
)
def test_limiters_sharing_a_keeper_stay_under_its_rate_together(
    workers: int, rate: float, calls: int
) -> None:
    vt = VirtualTime()
    limit = max(1, math.ceil(rate))
    keeper = Keeper(vt, limit=limit, rate=rate)
    group = max(1, limit // 2)
    emitted: list[float] = []

    async def main() -> None:
        limiters = [
            RateLimiter(
                rate=rate,  # each alone would take the whole rate
                clock=vt.clock,
                sleep=vt.sleep,
                shared=SharedRate(keeper.permit, group),
            )
            for _ in range(workers)
        ]
        await asyncio.gather(*(_calls(vt, lim, calls, emitted) for lim in limiters))

    asyncio.run(vt.run(main()))
    emitted.sort()
    assert len(emitted) == workers * calls
    # In any window, no more than the keeper's capacity plus its rate over the window
    # (plus one group each, taken but not yet spent when the window opened).
    for i, start in enumerate(emitted):
        for end in emitted[i:]:
            n = sum(1 for t in emitted[i:] if t <= end)
            assert n <= limit + rate * (end - start) + workers * group + 1e-6
    # ... and the keeper was asked once per group, not once per call (plus its refusals).
    granted = sum(k for _, k in keeper.granted)
    assert granted >= workers * calls
    assert len(keeper.granted) == sum(math.ceil(calls / group) for _ in range(workers))
