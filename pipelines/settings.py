"""Settings: ``CUSTSYNC_*`` environment variables over an optional ``custsync.toml``.

Secrets (tokens, API keys) come from the environment or a Prefect Secret block, never from
flow parameters, and are held as :class:`~connectors.secret.Secret` so they cannot leak into
logs, DuckDB or artifacts.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from connectors.config import ClientConfig
from connectors.providers.base import Provider, ProviderSettings
from connectors.providers.registry import UnknownProvider, get_provider, providers
from connectors.secret import Secret

PREFIX = "CUSTSYNC_"


class SettingsError(ValueError):
    """A setting is missing or malformed (CLI exit code 2)."""


_CLIENT = ClientConfig()


@dataclass(frozen=True)
class Settings:
    """Everything a run needs that is not an input file.

    Every field maps to ``CUSTSYNC_<FIELD NAME IN UPPER CASE>`` and to the key of the same
    name in ``custsync.toml``; the environment wins. Each registered provider's settings
    (:class:`~connectors.providers.base.ProviderSetting`) map the same way, under the
    provider's name: ``CUSTSYNC_VERIFONE_ENTITY_ID``, ``verifone_entity_id``.
    """

    state: Path = Path("data/custsync.duckdb")
    rate_limit: float | None = None
    """Requests per second per target; ``None`` = adaptive (start at ``adaptive_start_rate``)."""
    adaptive_start_rate: float = _CLIENT.adaptive_start_rate
    concurrency: int = _CLIENT.max_in_flight
    batch_size: int = 500
    max_attempts: int = _CLIENT.max_attempts
    max_delete_fraction: float = 0.10
    max_reject_fraction: float = 0.05
    """A run whose extract has more rejected rows than this fraction sends nothing (exit 3)."""
    state_wait: float = 60.0
    """Seconds a report (or a run reopening the state file between batches) waits for another
    process's hold on the state file before giving up (exit code 2)."""
    state_memory_limit: str = "64MB"
    """DuckDB's memory limit while a run holds the state file (its ``memory_limit``: what it
    caches of the file, sorts and joins; the rest it spills to ``<state>.tmp``). Bounded, a
    run's memory does not grow with the state file (issue 14). A size as DuckDB spells it
    (``64MB``, ``1GiB``) or a share of the machine's memory (``10%``); at least 16 MB."""
    landing_settle_s: float = 1.0
    """A landing-folder file whose size or modification time changes within this many seconds
    is still being written: its night waits (:mod:`pipelines.landing`)."""
    quarantine_after: int = 5
    """A record whose action failed in this many runs is quarantined (planned no more)."""
    retain_personal_days: int | None = None
    """Personal values in plan, reject (and change) rows older than this many days are redacted
    at the end of every run (:mod:`pipelines.retention`); ``None``: kept (off)."""
    providers: Mapping[str, ProviderSettings] = field(default_factory=dict)
    """Provider name → its settings (a provider absent here has its defaults)."""

    def __post_init__(self) -> None:
        _check_memory_size("state_memory_limit", self.state_memory_limit)

    def with_overrides(self, **overrides: Any) -> Settings:
        """Return a copy with the given non-``None`` fields replaced."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def provider(self, name: str) -> ProviderSettings:
        """The settings of provider ``name``; :class:`SettingsError` if none is registered."""
        found = self.providers.get(name)
        if found is not None:
            return found
        try:
            return _defaults(get_provider(name))
        except UnknownProvider as exc:
            raise SettingsError(str(exc)) from None

    def constants(self, name: str) -> dict[str, str]:
        """Provider ``name``'s constant body values (body path → its setting's value)."""
        values = self.provider(name)
        constants = get_provider(name).target.constants
        return {path: str(values.get(setting) or "") for path, setting in constants.items()}

    def with_provider(self, name: str, **values: Any) -> Settings:
        """A copy whose provider ``name`` has ``values`` replaced (``None`` values skipped)."""
        given = {k: v for k, v in values.items() if v is not None}
        merged = {**self.providers, name: self.provider(name).replace(**given)}
        return replace(self, providers=merged)


_MEMORY_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%|[kmgt]i?b)\s*$", re.IGNORECASE)
_MEMORY_UNIT = {"k": 1, "m": 2, "g": 3, "t": 4}
_MEMORY_MIN = 16 * 10**6  # DuckDB fails to open a state file with much less


def _check_memory_size(name: str, value: str) -> None:
    """A memory size DuckDB's ``memory_limit`` takes and runs with, or :class:`SettingsError`."""
    found = _MEMORY_SIZE.match(value)
    if found is None:
        raise SettingsError(
            f"setting {name}: {value!r} is not a memory size (e.g. 64MB, 1GiB, 10%)"
        )
    number, unit = float(found.group(1)), found.group(2).lower()
    if unit == "%":
        if not 0 < number <= 100:
            raise SettingsError(f"setting {name}: {value!r} is not a share between 0 and 100 %")
        return
    size = number * (1024 if "i" in unit else 1000) ** _MEMORY_UNIT[unit[0]]
    if size < _MEMORY_MIN:
        raise SettingsError(f"setting {name}: {value!r} is less than the 16 MB DuckDB needs")


def _defaults(provider: Provider) -> ProviderSettings:
    return ProviderSettings(provider.name, {s.name: s.default for s in provider.settings})


def _provider_keys() -> dict[str, tuple[Provider, str, bool]]:
    """``custsync.toml`` key → (provider, setting name, secret) for every provider setting."""
    return {f"{p.name}_{s.name}": (p, s.name, s.secret) for p in providers() for s in p.settings}


def _coerce(name: str, raw: Any, annotation: str) -> Any:
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
    provider_keys = _provider_keys()
    if path.exists():
        try:
            values.update(tomllib.loads(path.read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"cannot read {path}: {exc}") from exc
        leaked = {key for key in values if key in provider_keys and provider_keys[key][2]}
        if leaked:
            raise SettingsError(
                f"{path}: {', '.join(sorted(leaked))} must come from the environment "
                "or a Prefect Secret block, not from a file"
            )
    known = {f.name: str(f.type) for f in fields(Settings) if f.name != "providers"}
    unknown = set(values) - set(known) - set(provider_keys)
    if unknown:
        raise SettingsError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))}")
    for name in (*known, *provider_keys):
        raw = env.get(PREFIX + name.upper())
        if raw is not None and raw != "":
            values[name] = raw
    common = {n: _coerce(n, raw, known[n]) for n, raw in values.items() if n in known}
    by_provider: dict[str, dict[str, Any]] = {}
    for provider in providers():
        by_provider[provider.name] = dict(_defaults(provider))
    for key, raw in values.items():
        if key not in provider_keys:
            continue
        provider, name, secret = provider_keys[key]
        if secret:
            by_provider[provider.name][name] = Secret(str(raw)) if raw not in (None, "") else None
        else:
            by_provider[provider.name][name] = str(raw)
    common["providers"] = {n: ProviderSettings(n, v) for n, v in by_provider.items()}
    return Settings(**common)
