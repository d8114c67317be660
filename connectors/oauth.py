"""OAuth2 refresh-token credentials: short-lived access tokens, refreshed when refused.

A platform acting for a merchant holds the merchant's refresh token and its own OAuth client
(id and secret). :class:`TokenSource` trades them at the token endpoint
(``grant_type=refresh_token``, form-encoded, RFC 6749 §6) for an access token, sent as
``Authorization: Bearer``. When the provider answers 401 (the access token expired or was
revoked) the caller asks for a refresh once and repeats that call once
(:class:`~connectors.caller.Caller`); a refused refresh is an
:class:`~connectors.errors.AuthError`, which stops the run like any refused credential.

Many calls in flight see the same expired token at once: :meth:`TokenSource.refresh` is
single-flight. Each caller says which token generation it was refused with; only the first
of them trades, the others reuse the new token.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx
import orjson

from connectors.errors import AuthError, TransientError
from connectors.http import CallRecord, HttpSession, OnCall, call_ref
from connectors.operation import Operation
from connectors.secret import Secret

TOKEN_PATH = "/token"
"""SumUp's token endpoint, on the API host (``https://api.sumup.com/token``)."""


@dataclass(frozen=True)
class OAuthCredentials:
    """A merchant's grant: the platform's OAuth client and the merchant's refresh token."""

    client_id: str
    client_secret: Secret
    refresh_token: Secret
    token_path: str = TOKEN_PATH

    def __post_init__(self) -> None:
        for name in ("client_secret", "refresh_token"):
            if not isinstance(getattr(self, name), Secret):
                raise TypeError(f"{name} must be a connectors.secret.Secret")


class TokenSource:
    """The current access token of one grant, traded for on demand and on refusal."""

    def __init__(
        self,
        credentials: OAuthCredentials,
        *,
        session: HttpSession,
        provider: str,
        on_call: OnCall | None = None,
    ) -> None:
        self._credentials = credentials
        self._refresh_token = credentials.refresh_token  # rotated if the server issues a new one
        self._session = session
        self._provider = provider
        self._on_call = on_call
        self._access: Secret | None = None
        self._generation = 0
        self._refused: AuthError | None = None
        self._lock = asyncio.Lock()
        self.refreshes = 0
        """How many trades were made (tests and stats read it)."""

    @property
    def generation(self) -> int:
        """Increases with every new access token; a refusal names the one it refused."""
        return self._generation

    async def header(self) -> tuple[int, str]:
        """The generation and ``Authorization`` value to send now (trading for a first token
        if there is none yet)."""
        if self._access is None:
            await self.refresh(self._generation)
        assert self._access is not None  # refresh raised otherwise
        return self._generation, f"Bearer {self._access.reveal()}"

    async def refresh(self, refused: int) -> None:
        """Trade the refresh token for a new access token, unless one newer than generation
        ``refused`` was obtained meanwhile. Raises :class:`AuthError` when refused."""
        async with self._lock:
            if self._access is not None and self._generation != refused:
                return  # another call traded after this one was refused
            if self._refused is not None:
                raise self._refused  # refused once: every waiter stops, no second attempt
            try:
                self._access = await self._trade()
            except AuthError as exc:
                self._refused = exc
                raise
            self._generation += 1
            self.refreshes += 1

    def secrets(self) -> tuple[str, ...]:
        """Every credential string this source holds, for scrubbing error messages."""
        held = (self._credentials.client_secret, self._refresh_token, self._access)
        return tuple(s.reveal() for s in held if s)

    async def _trade(self) -> Secret:
        form = urlencode(
            {
                "grant_type": "refresh_token",
                "client_id": self._credentials.client_id,
                "client_secret": self._credentials.client_secret.reveal(),
                "refresh_token": self._refresh_token.reveal(),
            }
        ).encode()
        request_id = os.urandom(16).hex()
        request = self._session.build_request(
            "POST", self._credentials.token_path, content=form, request_id=request_id
        )
        # The session's default content type is JSON's: the token endpoint takes a form.
        request.headers["content-type"] = "application/x-www-form-urlencoded"
        started_at = datetime.now(UTC)
        t0 = time.perf_counter()
        try:
            response = await self._session.send(request)
        except httpx.TransportError as exc:
            self._record(None, type(exc).__name__, started_at, t0, request_id)
            raise TransientError(
                f"no response from the token endpoint: {type(exc).__name__}",
                provider=self._provider,
                operation=Operation.REFRESH_TOKEN,
                code=type(exc).__name__,
                request_id=request_id,
            ) from None
        body = _json(response)
        error = body.get("error")
        code = error if isinstance(error, str) else None
        self._record(response.status_code, code, started_at, t0, request_id)
        access = body.get("access_token")
        if response.status_code != 200 or not isinstance(access, str) or not access:
            # RFC 6749 §5.2: 400 invalid_grant (refresh token expired or revoked), 401
            # invalid_client. The body's description is not echoed: it may quote a token.
            status = response.status_code
            raise AuthError(
                f"the provider refused the OAuth refresh ({code or 'no access token'})",
                provider=self._provider,
                operation=Operation.REFRESH_TOKEN,
                status=status,
                code=code or "BAD_BODY",
                request_id=request_id,
            )
        rotated = body.get("refresh_token")
        if isinstance(rotated, str) and rotated:
            self._refresh_token = Secret(rotated)
        return Secret(access)

    def _record(
        self,
        status: int | None,
        code: str | None,
        started_at: datetime,
        t0: float,
        request_id: str,
    ) -> None:
        if self._on_call is None:
            return
        self._on_call(
            CallRecord(
                target=self._provider,
                operation=Operation.REFRESH_TOKEN,
                method="POST",
                path_template=self._credentials.token_path,
                status=status,
                error_code=code,
                attempt=1,
                latency_ms=(time.perf_counter() - t0) * 1000,
                started_at=started_at,
                request_id=request_id,
                ref=call_ref.get(),
            )
        )

    def __repr__(self) -> str:
        return (
            f"TokenSource(client_id={self._credentials.client_id!r}, generation={self._generation})"
        )


def _json(response: httpx.Response) -> dict[str, object]:
    try:
        data = orjson.loads(response.content) if response.content else {}
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}
