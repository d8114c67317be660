"""What a provider's customer API expects of a record: its target description.

A :class:`TargetDescription` is plain data: the fields (a canonical column, where it goes in
the request body, the constraints the provider publishes), the constants every body carries,
the id rule, the content codes and the adoption keys. Each provider package declares its own;
validation (:mod:`transforms.validate`), mapping (:mod:`transforms.mapping`) and twin
detection read it through the registry (:func:`connectors.providers.registry.describe`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import polars as pl

Format = Literal["email", "country", "date"]


@dataclass(frozen=True)
class Field:
    """One canonical column as a target receives it."""

    column: str
    """The canonical extract column."""
    path: str
    """Dotted path in the provider's request body, e.g. ``billing.first_name``."""
    max_length: int | None = None
    """Published ``maxLength`` in characters."""
    pattern: str | None = None
    """Published ``pattern`` (a regex the whole value must match)."""
    format: Format | None = None
    """A published format: an e-mail address, an ISO 3166-1 alpha-2 code, an ISO date."""


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
