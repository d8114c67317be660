"""Settings: ``CUSTSYNC_*`` environment variables over an optional ``custsync.toml``.

Secrets (tokens, API keys) come from the environment or a Prefect Secret block, never from
flow parameters, and are held as :class:`~connectors.secret.Secret` so they cannot leak into
logs, DuckDB or artifacts.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from connectors.secret import Secret

SANDBOX_URL = "http://127.0.0.1:8765"
PREFIX = "CUSTSYNC_"


class SettingsError(ValueError):
    """A setting is missing or malformed (CLI exit code 2)."""


@dataclass(frozen=True)
class Settings:
    """Everything a run needs that is not an input file.

    Every field maps to ``CUSTSYNC_<FIELD NAME IN UPPER CASE>`` and to the key of the same
    name in ``custsync.toml``; the environment wins.
    """

    state: Path = Path("data/custsync.duckdb")
    verifone_base_url: str = SANDBOX_URL
    verifone_token: Secret | None = None
    verifone_user: str | None = None
    verifone_api_key: Secret | None = None
    verifone_entity_id: str = "sandbox-entity"
    sumup_base_url: str = SANDBOX_URL
    sumup_api_key: Secret | None = None
    rate_limit: float | None = None
    """Requests per second per target; ``None`` = adaptive (start at ``adaptive_start_rate``)."""
    adaptive_start_rate: float = 50.0
    concurrency: int = 8
    batch_size: int = 500
    max_attempts: int = 6
    max_delete_fraction: float = 0.10
    quarantine_after: int = 5
    """A record whose action failed in this many runs is quarantined (planned no more)."""

    def with_overrides(self, **overrides: Any) -> Settings:
        """Return a copy with the given non-``None`` fields replaced."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


_SECRET_FIELDS = {"verifone_token", "verifone_api_key", "sumup_api_key"}


def _coerce(name: str, raw: Any, annotation: str) -> Any:
    if name in _SECRET_FIELDS:
        return Secret(str(raw)) if raw not in (None, "") else None
    try:
        if "Path" in annotation:
            return Path(str(raw))
        if annotation.startswith("float"):
            return float(raw)
        if annotation.startswith("int"):
            return int(raw)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"setting {name}: {raw!r} is not a valid {annotation}") from exc
    return str(raw)


def load_settings(
    env: Mapping[str, str] | None = None, config_file: Path | None = None
) -> Settings:
    """Build :class:`Settings` from ``custsync.toml`` (if present) and the environment.

    ``config_file`` defaults to ``$CUSTSYNC_CONFIG`` or ``./custsync.toml``.
    """
    env = os.environ if env is None else env
    path = config_file or Path(env.get(f"{PREFIX}CONFIG", "custsync.toml"))
    values: dict[str, Any] = {}
    if path.exists():
        try:
            values.update(tomllib.loads(path.read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"cannot read {path}: {exc}") from exc
        leaked = _SECRET_FIELDS & values.keys()
        if leaked:
            raise SettingsError(
                f"{path}: {', '.join(sorted(leaked))} must come from the environment "
                "or a Prefect Secret block, not from a file"
            )
    known = {f.name: str(f.type) for f in fields(Settings)}
    unknown = set(values) - set(known)
    if unknown:
        raise SettingsError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))}")
    for name in known:
        raw = env.get(PREFIX + name.upper())
        if raw is not None and raw != "":
            values[name] = raw
    coerced = {name: _coerce(name, raw, known[name]) for name, raw in values.items()}
    return Settings(**coerced)
