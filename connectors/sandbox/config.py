"""The sandbox's knobs: credentials it accepts, rate limit, latency and fault injection.

Every field has a ``CUSTSYNC_SANDBOX_<FIELD>`` environment variable (see
:meth:`SandboxConfig.from_env`). The credentials are the sandbox's own, printed by
``custsync sandbox`` on start: they are not secrets, so they are plain strings here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

ENV_PREFIX = "CUSTSYNC_SANDBOX_"

PRE_FAULTS = ("500", "502", "503", "reset")
"""Faults that happen before the request is handled: nothing is changed."""
COMMIT_FAULTS = ("commit_500", "commit_reset")
"""Faults that happen after a mutating request was applied: the change is kept."""
FAULT_KINDS = PRE_FAULTS + COMMIT_FAULTS

MAX_PAGE_SIZE = 1000
"""Largest ``page_size`` the Verifone list accepts; larger asks get 400 (never a silent cap)."""


class ConfigError(ValueError):
    """A knob has a value the sandbox cannot use."""


@dataclass(frozen=True)
class SandboxConfig:
    """How the sandbox behaves. Frozen: change it at run time with :meth:`updated`.

    ``rate_limit`` is requests per second *per credential* (``None``: unlimited) with a
    token bucket of ``burst`` tokens. Faults are drawn from ``random.Random(seed)`` with
    probability ``fault_rate`` per API request, the kind uniformly among ``fault_kinds``
    that apply (commit faults only apply to successful POST/PUT/DELETE).
    """

    sumup_api_key: str = "sup_sk_sandbox"
    verifone_token: str = "sandbox-token"
    verifone_user: str = "sandbox-user"
    verifone_api_key: str = "sandbox-key"
    verifone_entity: str = "sandbox-entity"
    rate_limit: float | None = None
    burst: int = 10
    latency_ms: float = 0
    jitter_ms: float = 0
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = FAULT_KINDS
    seed: int | None = None
    verifone_scoped_token: str = "sandbox-scoped-token"
    """A Bearer token limited to ``verifone_scoped_entities``: 403 on any other entity."""
    verifone_scoped_entities: tuple[str, ...] = ("sandbox-entity",)
    sumup_readonly_api_key: str = "sup_sk_sandbox_readonly"
    """A SumUp key without the write scope: reads work, writes get 403."""
    sumup_forbidden_api_key: str = "sup_sk_sandbox_forbidden"
    """A SumUp key without the customer scopes: every call gets 403."""
    oauth_token_lifetime_s: float = 3600.0
    """How long an access token from ``POST /token`` is accepted (SumUp's: an hour)."""

    def __post_init__(self) -> None:
        if self.rate_limit is not None and not self.rate_limit > 0:
            raise ConfigError(f"rate_limit must be > 0 or None, not {self.rate_limit!r}")
        if self.burst < 1:
            raise ConfigError(f"burst must be >= 1, not {self.burst!r}")
        if not self.oauth_token_lifetime_s >= 0:
            raise ConfigError("oauth_token_lifetime_s must be >= 0")
        if self.latency_ms < 0 or self.jitter_ms < 0:
            raise ConfigError("latency_ms and jitter_ms must be >= 0")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ConfigError(f"fault_rate must be within [0, 1], not {self.fault_rate!r}")
        unknown = set(self.fault_kinds) - set(FAULT_KINDS)
        if unknown:
            raise ConfigError(
                f"unknown fault kind(s) {sorted(unknown)}; choose from {', '.join(FAULT_KINDS)}"
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def updated(self, changes: Mapping[str, Any]) -> SandboxConfig:
        """Return a copy with ``changes`` applied; values are coerced as from JSON or env."""
        types = _field_types()
        unknown = set(changes) - types.keys()
        if unknown:
            raise ConfigError(f"unknown knob(s): {', '.join(sorted(unknown))}")
        coerced = {name: _coerce(name, value, types[name]) for name, value in changes.items()}
        return replace(self, **coerced)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> SandboxConfig:
        """Defaults, then ``CUSTSYNC_SANDBOX_*`` variables, then non-``None`` ``overrides``."""
        env = os.environ if env is None else env
        changes: dict[str, Any] = {}
        for name in _field_types():
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is not None and raw != "":
                changes[name] = raw
        changes.update({k: v for k, v in overrides.items() if v is not None})
        return cls().updated(changes)


def _field_types() -> dict[str, str]:
    return {f.name: str(f.type) for f in fields(SandboxConfig)}


def _coerce(name: str, value: Any, annotation: str) -> Any:
    """Coerce a JSON or environment value to the field's type."""
    try:
        if value is None:
            if "None" in annotation:
                return None
            raise ConfigError(f"{name} cannot be null")
        if annotation.startswith("tuple"):
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(str(item).strip() for item in items if str(item).strip())
        blank = isinstance(value, str) and value.strip().lower() in ("none", "null", "off")
        if blank and "None" in annotation:
            return None
        if annotation.startswith("float"):
            if isinstance(value, bool):
                raise ConfigError(f"{name} must be a number")
            return float(value)
        if annotation.startswith("int"):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ConfigError(f"{name} must be an integer")
            return int(value)
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string")
        return value
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{name}: {value!r} is not a valid {annotation}") from exc
