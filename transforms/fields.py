"""Which canonical column goes where in each provider's request body, under which constraints.

The constraints are those the providers publish (``tests/contracts/*.json``; a test checks
that every ``maxLength`` and ``pattern`` of Verifone's ``CustomerRequest`` and SumUp's
``Customer`` is here). One table per target drives both validation and mapping, so a column
is validated exactly when it is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from transforms.schema import Target

Format = Literal["email", "country", "date"]

PHONE_PATTERN = r"^[0-9\s\-+().-]+$"
"""Verifone ``phone_number``, ``work_phone``, ``billing.phone``, ``shipping.phone``."""
TITLE_PATTERN = r"^[a-zA-Z\-\s.]+$"
"""Verifone ``title``."""
TAX_IDENTIFIER_PATTERN = r"^[0-9]+$"
"""Verifone ``tax.identifier``."""


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


def _address(prefix: str, path: str) -> tuple[Field, ...]:
    return (
        Field(f"{prefix}_address_1", f"{path}.address_1", 40),
        Field(f"{prefix}_address_2", f"{path}.address_2", 40),
        Field(f"{prefix}_address_3", f"{path}.address_3", 40),
        Field(f"{prefix}_city", f"{path}.city", 28),
        Field(f"{prefix}_state", f"{path}.state", 35),
        Field(f"{prefix}_postal_code", f"{path}.postal_code", 10),
        Field(f"{prefix}_country_code", f"{path}.country_code", format="country"),
        Field(f"{prefix}_phone", f"{path}.phone", 25, PHONE_PATTERN),
    )


VERIFONE_FIELDS: tuple[Field, ...] = (
    Field("title", "title", 120, TITLE_PATTERN),
    Field("first_name", "billing.first_name", 22),
    Field("middle_name", "billing.middle_name", 22),
    Field("last_name", "billing.last_name", 22),
    Field("company_name", "company_name", 100),
    Field("company_registration_number", "company_registration_number", 24),
    Field("email", "email_address", 255, format="email"),
    Field("phone", "phone_number", 25, PHONE_PATTERN),
    Field("work_phone", "work_phone", 25, PHONE_PATTERN),
    Field("tax_id", "tax.identifier", 9, TAX_IDENTIFIER_PATTERN),
    Field("language", "language"),
    *_address("billing", "billing"),
    Field("shipping_first_name", "shipping.first_name", 22),
    Field("shipping_middle_name", "shipping.middle_name", 22),
    Field("shipping_last_name", "shipping.last_name", 22),
    *_address("shipping", "shipping"),
)
"""Canonical column → Verifone ``CustomerRequest`` (``entity_id`` comes from settings)."""

SUMUP_FIELDS: tuple[Field, ...] = (
    Field("first_name", "personal_details.first_name"),
    Field("last_name", "personal_details.last_name"),
    Field("email", "personal_details.email", format="email"),
    Field("phone", "personal_details.phone"),
    Field("birth_date", "personal_details.birth_date", format="date"),
    Field("tax_id", "personal_details.tax_id", 255),
    Field("billing_address_1", "personal_details.address.line_1"),
    Field("billing_address_2", "personal_details.address.line_2"),
    Field("billing_city", "personal_details.address.city"),
    Field("billing_state", "personal_details.address.state"),
    Field("billing_postal_code", "personal_details.address.postal_code"),
    Field("billing_country_code", "personal_details.address.country", format="country"),
)
"""Canonical column → SumUp ``Customer`` (``customer_id`` is derived from ``external_id``)."""

TARGET_FIELDS: dict[Target, tuple[Field, ...]] = {
    "verifone": VERIFONE_FIELDS,
    "sumup": SUMUP_FIELDS,
}

VERIFONE_FORBIDDEN_CHARACTERS = "\\"
"""Verifone's field restrictions page disallows ``\\`` in customer fields."""

MAX_FIELD_CHARS = 4096
"""custsync's own limit for any value sent to a provider (SumUp publishes none for most
fields): a longer value is a broken export, not a name."""
