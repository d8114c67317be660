"""Client settings shared by every connector: rate, concurrency, retries, timeouts."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

USER_AGENT = "custsync/0.1 (+https://github.com/custsync)"


@dataclass(frozen=True)
class ClientConfig:
    """How a connector talks to one target.

    ``rate`` is the request rate per second for the whole target: a number holds that rate
    exactly (evenly spaced, GCRA), ``None`` adapts to an unknown limit (starting at
    ``adaptive_start_rate``, lowered on 429, raised again after quiet periods) and
    ``math.inf`` means no rate limit (only ``max_in_flight`` caps the calls).
    ``burst`` is the client-side burst: keep it at 1–2 so emissions stay evenly spaced and
    the server's own burst allowance absorbs network jitter.
    ``sleep`` and ``clock`` are injectable so tests never wait.
    """

    rate: float | None = None
    adaptive_start_rate: float = 50.0
    burst: int = 2
    max_in_flight: int = 8
    max_attempts: int = 6
    max_elapsed_s: float = 120.0
    timeout_s: float = 30.0
    connect_timeout_s: float = 10.0
    fetch_batch_size: int = 100
    """Verifone bulk fetch: ids per ``search=id=in=(…)`` request (also bounded by URL size)."""
    page_size: int = 100
    """Verifone search page size (``find``, reconciliation)."""
    max_url_bytes: int = 8000
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    max_retry_after_s: float = 120.0
    """``Retry-After`` values above this are clamped (a broken header must not stall a run)."""
    settle_delay_s: float = 1.0
    """After a create timed out, wait this long before searching for it: the server may still
    be working on the request, and a search that runs first would miss the record."""
    adaptive_decrease: float = 0.7
    adaptive_quiet_s: float = 0.5
    adaptive_min_rate: float = 1.0
    user_agent: str = USER_AGENT
    http_backend: str = "aiohttp"
    """``aiohttp`` (the ``httpx-aiohttp`` transport, when installed) or ``httpx``."""
    sleep: Sleep = asyncio.sleep
    clock: Clock = time.monotonic

    def __post_init__(self) -> None:
        if self.rate is not None and not (self.rate > 0):
            raise ValueError("rate must be > 0, None (adaptive) or math.inf (unlimited)")
        if not math.isfinite(self.adaptive_start_rate) or self.adaptive_start_rate <= 0:
            raise ValueError("adaptive_start_rate must be a positive number")
        if self.burst < 1 or self.max_in_flight < 1 or self.max_attempts < 1:
            raise ValueError("burst, max_in_flight and max_attempts must be >= 1")
        if self.fetch_batch_size < 1 or self.page_size < 1:
            raise ValueError("fetch_batch_size and page_size must be >= 1")
        if self.http_backend not in ("aiohttp", "httpx"):
            raise ValueError("http_backend must be 'aiohttp' or 'httpx'")
        if not 0 < self.adaptive_decrease < 1:
            raise ValueError("adaptive_decrease must be between 0 and 1")
