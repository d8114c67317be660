"""What both provider clients share: construction of the HTTP stack, stats, closing."""

from __future__ import annotations

from types import TracebackType
from typing import Self

import httpx

from connectors.caller import Caller, Classifier
from connectors.config import ClientConfig
from connectors.http import HttpSession, OnCall
from connectors.limiter import LimiterStats, RateLimiter, shared_rate
from connectors.oauth import OAuthCredentials, TokenSource
from connectors.retry import RetryPolicy


class BaseClient:
    """An async context manager owning one target's HTTP session, limiter, retry policy and
    caller."""

    target: str

    def __init__(
        self,
        base_url: str,
        *,
        auth_header: str | None,
        secrets: tuple[str, ...],
        classify: Classifier,
        config: ClientConfig,
        transport: httpx.AsyncBaseTransport | None,
        on_call: OnCall | None,
        oauth: OAuthCredentials | None = None,
    ) -> None:
        """``auth_header`` is a fixed ``Authorization`` value; ``None`` with ``oauth``: an
        access token traded for and refreshed by a :class:`~connectors.oauth.TokenSource`."""
        self.config = config
        self.base_url = base_url
        self._http = HttpSession(
            base_url,
            config=config,
            headers={"authorization": auth_header} if auth_header is not None else {},
            transport=transport,
            provider=self.target,
        )
        self.tokens = (
            None
            if oauth is None
            else TokenSource(oauth, session=self._http, provider=self.target, on_call=on_call)
        )
        self.limiter = RateLimiter(
            rate=config.rate,
            burst=config.burst,
            max_in_flight=config.max_in_flight,
            start_rate=config.adaptive_start_rate,
            decrease=config.adaptive_decrease,
            quiet_s=config.adaptive_quiet_s,
            min_rate=config.adaptive_min_rate,
            clock=config.clock,
            sleep=config.sleep,
            shared=shared_rate.get(),
        )
        self.retry_policy = RetryPolicy.of(config)
        self._caller = Caller(
            target=self.target,
            session=self._http,
            limiter=self.limiter,
            config=config,
            policy=self.retry_policy,
            classify=classify,
            on_call=on_call,
            secrets=(*((auth_header,) if auth_header else ()), *secrets),
            tokens=self.tokens,
        )

    def stats(self) -> LimiterStats:
        """The limiter's live figures: current rate, 429s seen, retries, pauses."""
        return self.limiter.stats()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"
