"""A canonical column as a provider receives it: where in the body, under which constraints.

Each provider package (:mod:`connectors.providers`) declares its table of :class:`Field` s
with the constraints its provider publishes (a test checks every ``maxLength`` and
``pattern`` against the published OpenAPI documents). One table per target drives both
validation and mapping, so a column is validated exactly when it is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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


MAX_FIELD_CHARS = 4096
"""custsync's own limit for any value sent to a provider (SumUp publishes none for most
fields): a longer value is a broken export, not a name."""
