"""What a provider's customer API expects of a record: its target description.

A :class:`TargetDescription` is plain data (fields and their published constraints, the shape
of the request body, the id rule, the content codes, the adoption keys). Validation
(:mod:`transforms.validate`), mapping (:mod:`transforms.mapping`) and twin detection read it;
each provider package under :mod:`connectors.providers` declares its own, and the registry
(:mod:`connectors.providers.registry`) hands it out by name (:func:`describe`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import polars as pl

from transforms.fields import Field


@dataclass(frozen=True)
class ClientId:
    """A remote id the client chooses, derived from the CRM key (SumUp's ``customer_id``).

    A provider without one has its ids assigned by the server (Verifone's UUIDs).
    """

    path: str
    """Where the id goes in the request body, e.g. ``customer_id``."""
    expr: Callable[[pl.Expr], pl.Expr]
    """The id of every row, from the ``external_id`` column (vectorised)."""
    of: Callable[[str], str]
    """The id of one key: equal to :attr:`expr` of that key."""


@dataclass(frozen=True)
class Requirement:
    """A rule over several columns: at least one group of ``any_of`` is fully present."""

    field: str
    """The column a reject names."""
    rule: str
    """The reject's rule name, e.g. ``name_or_company``."""
    any_of: tuple[tuple[str, ...], ...]
    message: str


@dataclass(frozen=True)
class TargetDescription:
    """One provider's request body and its rules, as custsync sends it."""

    name: str
    """The registry name: ``--target``, the ``target`` column of every state table."""
    title: str
    """The provider's name in messages, e.g. ``Verifone``."""
    fields: tuple[Field, ...]
    """Canonical column → request body path, with the published constraints."""
    content_codes: Mapping[str, str]
    """Body path → its frozen code in the content text (:mod:`transforms.mapping`). Append
    only: a code, once used, keeps its path for ever, or every stored content hash changes.
    A path two providers share has the same code in both (the registry checks it)."""
    constants: Mapping[str, str] = field(default_factory=dict)
    """Body path → the provider setting whose value it always holds (Verifone ``entity_id``)."""
    client_id: ClientId | None = None
    """The client-chosen id rule, or ``None`` when the server assigns ids."""
    forbidden_characters: str = ""
    """Characters the provider refuses in any customer field."""
    forbidden_message: str = ""
    """The reject message for a value holding one of :attr:`forbidden_characters`."""
    requirements: tuple[Requirement, ...] = ()
    adopt_by: tuple[str, ...] = ()
    """Body paths a migration adopts an existing remote customer by, in order (a provider
    with client-chosen ids adopts by id and needs none)."""

    def body_paths(self) -> tuple[str, ...]:
        """Every path of the request body custsync sends: fields, constants, the client id."""
        paths = [f.path for f in self.fields]
        paths.extend(self.constants)
        if self.client_id is not None:
            paths.append(self.client_id.path)
        return tuple(paths)


def describe(target: str) -> TargetDescription:
    """The registered description of ``target``; ``KeyError`` names the registered ones."""
    # The registry imports the provider packages, which import this module: look it up late.
    from connectors.providers.registry import get_provider

    return get_provider(target).target
