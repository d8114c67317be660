"""Who is calling: the sandbox's credentials and what each may do.

Verifone takes ``Authorization: Bearer <token>`` or ``Basic base64(user:api key)``; SumUp
takes ``Bearer <api key>``. A call is identified *before* it is rate limited, as real
gateways do: the bucket belongs to the credential, and an unidentified caller gets 401
without touching (or creating) any bucket.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from secrets import compare_digest

from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.oauth import OAuthRegistry


@dataclass(frozen=True, slots=True)
class Principal:
    """An identified caller. ``name`` keys its rate-limit bucket (never the secret itself)."""

    name: str
    entities: frozenset[str] | None = None
    """Verifone entities this credential may touch (``None``: any)."""
    read: bool = True
    write: bool = True
    merchant: str | None = None
    """The SumUp merchant whose account the credential reaches (``None``: the sandbox's own)."""

    def may_use(self, entity_id: str) -> bool:
        """Whether this credential may act on ``entity_id``."""
        return self.entities is None or entity_id in self.entities


def _scheme(header: bytes | None) -> tuple[str, str] | None:
    if not header:
        return None
    try:
        text = header.decode("latin-1").strip()
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes any byte
        return None
    scheme, _, credentials = text.partition(" ")
    if not credentials.strip():
        return None
    return scheme.lower(), credentials.strip()


def _same(given: str, expected: str) -> bool:
    return bool(expected) and compare_digest(given.encode(), expected.encode())


def verifone_principal(config: SandboxConfig, header: bytes | None) -> Principal | None:
    """The caller behind a Verifone ``Authorization`` header, or ``None`` (401)."""
    parsed = _scheme(header)
    if parsed is None:
        return None
    scheme, credentials = parsed
    if scheme == "bearer":
        if _same(credentials, config.verifone_token):
            return Principal("verifone:bearer")
        if _same(credentials, config.verifone_scoped_token):
            return Principal("verifone:scoped", frozenset(config.verifone_scoped_entities))
        return None
    if scheme == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, sep, key = decoded.partition(":")
        if sep and _same(user, config.verifone_user) and _same(key, config.verifone_api_key):
            return Principal("verifone:basic")
    return None


def sumup_principal(
    config: SandboxConfig, header: bytes | None, oauth: OAuthRegistry | None = None
) -> Principal | None:
    """The caller behind a SumUp ``Authorization`` header, or ``None`` (401): the sandbox's
    API keys, or a merchant's live access token or API key (``oauth``)."""
    parsed = _scheme(header)
    if parsed is None or parsed[0] != "bearer":
        return None
    key = parsed[1]
    if oauth is not None:
        merchant = oauth.merchant(key)
        if merchant is not None:
            return Principal(f"sumup:merchant:{merchant}", merchant=merchant)
    if _same(key, config.sumup_api_key):
        return Principal("sumup:key")
    if _same(key, config.sumup_readonly_api_key):
        return Principal("sumup:readonly", write=False)
    if _same(key, config.sumup_forbidden_api_key):
        return Principal("sumup:forbidden", read=False, write=False)
    return None
