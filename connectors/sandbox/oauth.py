"""SumUp's OAuth2 token endpoint in the sandbox: merchants, their grants, access tokens.

A platform registers its OAuth client; each merchant it acts for has granted a refresh
token (seeded through ``POST /_sandbox/oauth``; there is no authorization page). ``POST
/token`` with ``grant_type=refresh_token`` (form-encoded, RFC 6749 §6) answers
``{access_token, token_type: "Bearer", expires_in, refresh_token, scope}``; the access token
lives ``oauth_token_lifetime_s`` seconds, after which the API answers 401 as for any unknown
token. ``POST /_sandbox/oauth/expire`` ends every access token now. Merchants may also have
API keys of their own. Every merchant credential is its own rate-limit bucket
(``sumup:merchant:<name>``).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from secrets import compare_digest
from typing import Any
from urllib.parse import parse_qsl

from connectors.sandbox.http import Request, Response, json_response

SCOPE = "customers.read customers.write payment_instruments"
"""The scopes every sandbox grant carries."""


@dataclass
class OAuthRegistry:
    """Registered clients, granted refresh tokens, issued access tokens, merchant API keys."""

    clock: Callable[[], float] = time.monotonic
    clients: dict[str, str] = field(default_factory=dict)
    """client_id → client_secret."""
    grants: dict[str, tuple[str, str]] = field(default_factory=dict)
    """refresh token → (client_id, merchant)."""
    access: dict[str, tuple[str, float]] = field(default_factory=dict)
    """access token → (merchant, expiry on ``clock``)."""
    api_keys: dict[str, str] = field(default_factory=dict)
    """API key → merchant."""
    issued: int = 0

    def clear(self) -> None:
        """Forget every client, grant, token and key."""
        self.clients.clear()
        self.grants.clear()
        self.access.clear()
        self.api_keys.clear()
        self.issued = 0

    def seed(self, body: Any) -> dict[str, int]:
        """Register ``{"clients": [...], "refresh_tokens": [...], "api_keys": [...]}``;
        ``ValueError`` on a malformed item (nothing is registered then)."""
        if not isinstance(body, dict) or set(body) - {"clients", "refresh_tokens", "api_keys"}:
            raise ValueError("send {clients: [...], refresh_tokens: [...], api_keys: [...]}")
        clients = _pairs(body.get("clients", []), "client_id", "client_secret")
        grants = _triples(body.get("refresh_tokens", []))
        keys = _pairs(body.get("api_keys", []), "api_key", "merchant")
        known = {**self.clients, **dict(clients)}
        for _token, client_id, _merchant in grants:
            if client_id not in known:
                raise ValueError(f"refresh token for unknown client {client_id!r}")
        self.clients.update(clients)
        self.grants.update({t: (c, m) for t, c, m in grants})
        self.api_keys.update(keys)
        return {"clients": len(clients), "refresh_tokens": len(grants), "api_keys": len(keys)}

    def expire(self) -> int:
        """End every access token now; how many there were."""
        count = len(self.access)
        self.access.clear()
        return count

    def merchant(self, bearer: str) -> str | None:
        """The merchant a live access token or a merchant API key stands for."""
        found = self.access.get(bearer)
        if found is not None:
            merchant, expires = found
            if self.clock() < expires:
                return merchant
            del self.access[bearer]
            return None
        for key, merchant in self.api_keys.items():
            if compare_digest(key.encode(), bearer.encode()):
                return merchant
        return None

    def token(self, request: Request, lifetime_s: float) -> Response:
        """``POST /token``: trade a refresh token for an access token."""
        form = dict(parse_qsl(request.body.decode("latin-1"), keep_blank_values=True))
        if form.get("grant_type") != "refresh_token":
            return _oauth_error(400, "unsupported_grant_type")
        client_id = form.get("client_id", "")
        expected = self.clients.get(client_id)
        given = form.get("client_secret", "")
        if expected is None or not compare_digest(expected.encode(), given.encode()):
            return _oauth_error(401, "invalid_client")
        grant = self.grants.get(form.get("refresh_token", ""))
        if grant is None or grant[0] != client_id:
            return _oauth_error(400, "invalid_grant")
        access = f"sup_at_{secrets.token_hex(16)}"
        self.access[access] = (grant[1], self.clock() + lifetime_s)
        self.issued += 1
        return json_response(
            200,
            {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": max(int(lifetime_s), 0),
                "refresh_token": form["refresh_token"],
                "scope": SCOPE,
            },
        )


def _oauth_error(status: int, error: str) -> Response:
    response = json_response(status, {"error": error})
    response.headers.append((b"cache-control", b"no-store"))
    return response


def _pairs(items: Any, first: str, second: str) -> list[tuple[str, str]]:
    if not isinstance(items, list):
        raise ValueError(f"send a list of {{{first}, {second}}}")
    out = []
    for item in items:
        if not isinstance(item, dict) or set(item) != {first, second}:
            raise ValueError(f"each item must be {{{first}, {second}}}")
        a, b = item[first], item[second]
        if not (isinstance(a, str) and a and isinstance(b, str) and b):
            raise ValueError(f"{first} and {second} must be non-empty strings")
        out.append((a, b))
    return out


def _triples(items: Any) -> list[tuple[str, str, str]]:
    if not isinstance(items, list):
        raise ValueError("send a list of {refresh_token, client_id, merchant}")
    out = []
    for item in items:
        keys = {"refresh_token", "client_id", "merchant"}
        if not isinstance(item, dict) or set(item) != keys:
            raise ValueError("each item must be {refresh_token, client_id, merchant}")
        values = [item["refresh_token"], item["client_id"], item["merchant"]]
        if not all(isinstance(v, str) and v for v in values):
            raise ValueError("refresh_token, client_id and merchant must be non-empty strings")
        out.append((values[0], values[1], values[2]))
    return out
