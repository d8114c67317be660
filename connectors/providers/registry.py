"""The provider registry: the one place the CLI, settings, validation, mapping, connector
wiring and deployments learn which providers exist.

The built-in providers (:mod:`connectors.providers.verifone`, :mod:`connectors.providers.sumup`)
are registered on first use; another one is added with :func:`register` (a plug-in, or a test's
fake provider) before a run starts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from connectors.providers.base import Provider
from connectors.providers.description import TargetDescription

_PROVIDERS: dict[str, Provider] = {}
_BUILTINS_LOADED = False
_CODES: dict[str, str] | None = None


class ProviderConflict(ValueError):
    """A provider cannot be registered as declared (the message says why)."""


def _load_builtins() -> None:
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    from connectors.providers import sumup, verifone

    for provider in (verifone.PROVIDER, sumup.PROVIDER):
        register(provider)


def _check(provider: Provider) -> None:
    target = provider.target
    if not re.fullmatch(r"[a-z][a-z0-9]*", target.name):
        raise ProviderConflict(f"provider name {target.name!r}: use lower-case letters and digits")
    declared = {s.name for s in provider.settings}
    if "base_url" not in declared:
        raise ProviderConflict(f"{target.name}: a provider needs a base_url setting")
    undeclared = set(target.constants.values()) - declared
    if undeclared:
        raise ProviderConflict(f"{target.name}: constants read undeclared {sorted(undeclared)}")
    missing = [p for p in target.body_paths() if p not in target.content_codes]
    if missing:
        raise ProviderConflict(f"{target.name}: no content code for {', '.join(missing)}")
    codes = list(target.content_codes.values())
    if len(set(codes)) != len(codes):
        raise ProviderConflict(f"{target.name}: two body paths share a content code")
    # One code table across providers: a path two providers share must keep one code, and a
    # code one provider uses cannot mean another path elsewhere (hashes compare by code).
    for other in _PROVIDERS.values():
        if other.name == target.name:
            continue
        theirs = other.target.content_codes
        by_code = {code: path for path, code in theirs.items()}
        for path, code in target.content_codes.items():
            if path in theirs and theirs[path] != code:
                raise ProviderConflict(
                    f"{target.name}: {path} has code {code}, {other.name} uses {theirs[path]}"
                )
            if by_code.get(code, path) != path:
                raise ProviderConflict(
                    f"{target.name}: code {code} is {other.name}'s {by_code[code]}"
                )


def register(provider: Provider) -> Provider:
    """Add ``provider`` (replacing one of the same name); :class:`ProviderConflict` if it is
    inconsistent with itself or with the providers registered before."""
    _load_builtins()
    global _CODES
    _check(provider)
    _PROVIDERS[provider.name] = provider
    _CODES = None
    return provider


def unregister(name: str) -> None:
    """Remove a provider added with :func:`register` (built-ins cannot be removed)."""
    if name in ("verifone", "sumup"):
        raise ProviderConflict(f"{name} is built in")
    global _CODES
    _PROVIDERS.pop(name, None)
    _CODES = None


@contextmanager
def registered(provider: Provider) -> Iterator[Provider]:
    """Register ``provider`` for the duration of the block (tests, plug-in experiments)."""
    register(provider)
    try:
        yield provider
    finally:
        unregister(provider.name)


def get_provider(name: str) -> Provider:
    """The provider registered as ``name``; :class:`UnknownProvider` names the known ones."""
    _load_builtins()
    try:
        return _PROVIDERS[name]
    except KeyError:
        raise UnknownProvider(name) from None


def describe(name: str) -> TargetDescription:
    """The target description of provider ``name`` (:class:`UnknownProvider` if none)."""
    return get_provider(name).target


def provider_names() -> tuple[str, ...]:
    """Every registered provider's name, built-ins first."""
    _load_builtins()
    return tuple(_PROVIDERS)


def providers() -> tuple[Provider, ...]:
    """Every registered provider."""
    _load_builtins()
    return tuple(_PROVIDERS.values())


class UnknownProvider(KeyError):
    """No provider is registered under the name."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown target {self.name!r}: choose {' or '.join(provider_names())}"


def content_codes() -> Mapping[str, str]:
    """Every registered provider's content codes as one table (path → code)."""
    global _CODES
    _load_builtins()
    if _CODES is None:
        table: dict[str, str] = {}
        for provider in _PROVIDERS.values():
            table.update(provider.target.content_codes)
        _CODES = table
    return _CODES
