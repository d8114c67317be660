"""Test doubles: virtual time for the limiter and retries, a recording MockTransport."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson

from connectors.config import ClientConfig
from connectors.http import CallRecord


class VirtualTime:
    """A clock and a sleep that never wait: time jumps to the next sleeper's deadline once
    every task is blocked (``run`` drives it)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, (self.now + seconds, next(self._seq), fut))
        await fut

    async def run(self, coro: Awaitable[Any]) -> Any:
        task = asyncio.ensure_future(coro)
        while True:
            for _ in range(30):  # let every runnable task reach its next sleep
                await asyncio.sleep(0)
                if task.done():
                    return task.result()
            if not self._heap:
                return await task
            deadline, _, fut = heapq.heappop(self._heap)
            self.now = max(self.now, deadline)
            if not fut.cancelled():
                fut.set_result(None)

    def config(self, **overrides: Any) -> ClientConfig:
        base: dict[str, Any] = {
            "rate": float("inf"),
            "sleep": self.sleep,
            "clock": self.clock,
            "backoff_base_s": 0.5,
        }
        base.update(overrides)
        return ClientConfig(**base)


Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler answering from a function, keeping every request."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def json_response(status: int, body: Any = None, **headers: str) -> httpx.Response:
    content = b"" if body is None else orjson.dumps(body)
    hdrs = {"content-type": "application/json", **headers} if body is not None else headers
    return httpx.Response(status, content=content, headers=hdrs)


def body_of(request: httpx.Request) -> Any:
    return orjson.loads(request.content)


class Calls(list[CallRecord]):
    """An ``on_call`` sink."""

    def __call__(self, record: CallRecord) -> None:
        self.append(record)
