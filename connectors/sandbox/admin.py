"""Clients for the sandbox's admin surface (``/_sandbox/…``): seed, reset, inspect, tune."""

from __future__ import annotations

from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

_TIMEOUT = httpx.Timeout(120.0, connect=5.0)


class SandboxAdminError(RuntimeError):
    """The admin surface refused a request; ``status`` and ``body`` say why."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"sandbox admin call failed ({status}): {body}")
        self.status = status
        self.body = body


def _result(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if response.status_code >= 400:
        raise SandboxAdminError(response.status_code, body)
    return body


def _instrument_body(instruments: list[dict[str, Any]] | int) -> Any:
    return {"count": instruments} if isinstance(instruments, int) else instruments


def _instrument_path(customer_id: str) -> str:
    return f"/_sandbox/sumup/customers/{quote(customer_id, safe='')}/payment-instruments"


class SandboxAdmin:
    """A small synchronous client: ``SandboxAdmin("http://127.0.0.1:8765").counters()``."""

    def __init__(self, base_url: str, client: httpx.Client | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = client or httpx.Client(base_url=self.base_url, timeout=_TIMEOUT)

    def close(self) -> None:
        """Close the underlying HTTP client."""
        self._client.close()

    def __enter__(self) -> SandboxAdmin:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return _result(self._client.request(method, path, **kwargs))

    def health(self) -> dict[str, Any]:
        """``{"status": "ok", "verifone_customers": n, "sumup_customers": m}``."""
        result: dict[str, Any] = self._call("GET", "/_sandbox/health")
        return result

    def reset(self, *, config: bool = False) -> None:
        """Clear customers, instruments and counters (and the config, with ``config``)."""
        self._call("POST", "/_sandbox/reset", params={"config": "1" if config else "0"})

    def counters(self) -> dict[str, Any]:
        """``{"total": N, "by_route": {"POST /v2/customer": {"200": 3}}, "faults": {…}}``."""
        result: dict[str, Any] = self._call("GET", "/_sandbox/counters")
        return result

    def state(self) -> dict[str, Any]:
        """Every stored customer of both providers and every instrument."""
        result: dict[str, Any] = self._call("GET", "/_sandbox/state")
        return result

    def config(self) -> dict[str, Any]:
        """The knobs in force."""
        result: dict[str, Any] = self._call("GET", "/_sandbox/config")
        return result

    def configure(self, **knobs: Any) -> dict[str, Any]:
        """Change knobs at run time (e.g. ``rate_limit=50, fault_rate=0.1``); new config."""
        result: dict[str, Any] = self._call("PUT", "/_sandbox/config", json=knobs)
        return result

    def seed_verifone(self, customers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store ``CustomerRequest`` bodies; return the ``CustomerResponse`` objects (ids)."""
        result: list[dict[str, Any]] = self._call("POST", "/_sandbox/seed/verifone", json=customers)
        return result

    def seed_sumup(self, customers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store ``Customer`` bodies; return them as the API would."""
        result: list[dict[str, Any]] = self._call("POST", "/_sandbox/seed/sumup", json=customers)
        return result

    def seed_instruments(
        self, customer_id: str, instruments: list[dict[str, Any]] | int
    ) -> list[dict[str, Any]]:
        """Give a SumUp customer cards (a count, or partial objects); return them with tokens."""
        result: list[dict[str, Any]] = self._call(
            "POST", _instrument_path(customer_id), json=_instrument_body(instruments)
        )
        return result

    def generate(
        self, verifone: int = 0, sumup: int = 0, *, entity_id: str | None = None, seed: int = 0
    ) -> dict[str, int]:
        """Add synthetic customers server-side (fast, for scale); return the counts."""
        body: dict[str, Any] = {"verifone": verifone, "sumup": sumup, "seed": seed}
        if entity_id is not None:
            body["entity_id"] = entity_id
        result: dict[str, int] = self._call("POST", "/_sandbox/generate", json=body)
        return result

    def seed_oauth(
        self,
        *,
        clients: list[dict[str, str]] | None = None,
        refresh_tokens: list[dict[str, str]] | None = None,
        api_keys: list[dict[str, str]] | None = None,
    ) -> dict[str, int]:
        """Register SumUp OAuth clients, merchants' refresh tokens and merchants' API keys."""
        body = {
            "clients": clients or [],
            "refresh_tokens": refresh_tokens or [],
            "api_keys": api_keys or [],
        }
        result: dict[str, int] = self._call("POST", "/_sandbox/oauth", json=body)
        return result

    def expire_tokens(self) -> int:
        """Expire every SumUp access token issued so far; how many there were."""
        result: dict[str, int] = self._call("POST", "/_sandbox/oauth/expire")
        return result["expired"]


class AsyncSandboxAdmin:
    """The async twin of :class:`SandboxAdmin` (the same methods, awaited)."""

    def __init__(self, base_url: str, client: httpx.AsyncClient | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = client or httpx.AsyncClient(base_url=self.base_url, timeout=_TIMEOUT)

    async def aclose(self) -> None:
        """Close the underlying HTTP client."""
        await self._client.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return _result(await self._client.request(method, path, **kwargs))

    async def reset(self, *, config: bool = False) -> None:
        """See :meth:`SandboxAdmin.reset`."""
        await self._call("POST", "/_sandbox/reset", params={"config": "1" if config else "0"})

    async def counters(self) -> dict[str, Any]:
        """See :meth:`SandboxAdmin.counters`."""
        result: dict[str, Any] = await self._call("GET", "/_sandbox/counters")
        return result

    async def state(self) -> dict[str, Any]:
        """See :meth:`SandboxAdmin.state`."""
        result: dict[str, Any] = await self._call("GET", "/_sandbox/state")
        return result

    async def configure(self, **knobs: Any) -> dict[str, Any]:
        """See :meth:`SandboxAdmin.configure`."""
        result: dict[str, Any] = await self._call("PUT", "/_sandbox/config", json=knobs)
        return result

    async def seed_verifone(self, customers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """See :meth:`SandboxAdmin.seed_verifone`."""
        result: list[dict[str, Any]] = await self._call(
            "POST", "/_sandbox/seed/verifone", json=customers
        )
        return result

    async def seed_sumup(self, customers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """See :meth:`SandboxAdmin.seed_sumup`."""
        result: list[dict[str, Any]] = await self._call(
            "POST", "/_sandbox/seed/sumup", json=customers
        )
        return result

    async def seed_instruments(
        self, customer_id: str, instruments: list[dict[str, Any]] | int
    ) -> list[dict[str, Any]]:
        """See :meth:`SandboxAdmin.seed_instruments`."""
        result: list[dict[str, Any]] = await self._call(
            "POST", _instrument_path(customer_id), json=_instrument_body(instruments)
        )
        return result
