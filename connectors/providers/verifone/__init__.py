"""Verifone: the Customer API (server-assigned UUIDs, RSQL search, real deletes).

Everything custsync knows of Verifone is declared here: the fields of ``CustomerRequest`` with
their published limits, the ``entity_id`` every body carries (a setting), the content codes,
the adoption keys of a migration, the settings and credentials, and the connector.
"""

from __future__ import annotations

import httpx

from connectors.config import ClientConfig
from connectors.http import OnCall
from connectors.providers.base import (
    SANDBOX_URL,
    MissingCredentials,
    Provider,
    ProviderSetting,
    ProviderSettings,
)
from connectors.providers.description import Field, Requirement, TargetDescription
from connectors.providers.verifone.client import VerifoneClient

PHONE_PATTERN = r"^[0-9\s\-+().-]+$"
"""``phone_number``, ``work_phone``, ``billing.phone``, ``shipping.phone``."""
TITLE_PATTERN = r"^[a-zA-Z\-\s.]+$"
TAX_IDENTIFIER_PATTERN = r"^[0-9]+$"
"""``tax.identifier``."""
FORBIDDEN_CHARACTERS = "\\"
"""Verifone's field restrictions page disallows ``\\`` in customer fields."""

ADOPT_BY = ("email_address", "company_registration_number")
"""A migration adopts an existing customer by e-mail address, then registration number."""


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


FIELDS: tuple[Field, ...] = (
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

_SIDE = ("address_1", "address_2", "address_3", "city", "state", "postal_code", "country_code")
_CODED_PATHS = (
    ("001", "entity_id"),
    ("003", "title"),
    ("004", "billing.first_name"),
    ("005", "billing.middle_name"),
    ("006", "billing.last_name"),
    ("007", "company_name"),
    ("008", "company_registration_number"),
    ("009", "email_address"),
    ("010", "phone_number"),
    ("011", "work_phone"),
    ("012", "tax.identifier"),
    ("013", "language"),
    *((f"{14 + i:03d}", f"billing.{part}") for i, part in enumerate((*_SIDE, "phone"))),
    *(
        (f"{22 + i:03d}", f"shipping.{part}")
        for i, part in enumerate(("first_name", "middle_name", "last_name", *_SIDE, "phone"))
    ),
)
CONTENT_CODES: dict[str, str] = {path: code for code, path in _CODED_PATHS}
"""Body path → frozen content code (001–032, 002 being SumUp's ``customer_id``)."""

TARGET = TargetDescription(
    name="verifone",
    title="Verifone",
    fields=FIELDS,
    content_codes=CONTENT_CODES,
    constants={"entity_id": "entity_id"},
    forbidden_characters=FORBIDDEN_CHARACTERS,
    forbidden_message="Verifone does not allow a backslash in customer fields",
    requirements=(
        Requirement(
            "company_name",
            "name_or_company",
            (("company_name",), ("first_name", "last_name")),
            "Verifone needs company_name, or both first_name and last_name",
        ),
    ),
    adopt_by=ADOPT_BY,
)

SETTINGS = (
    ProviderSetting("base_url", SANDBOX_URL, help="Verifone API base URL."),
    ProviderSetting(
        "token",
        secret=True,
        secret_block="custsync-verifone-token",
        help="Bearer token (the sandbox accepts 'sandbox-token').",
    ),
    ProviderSetting("user", help="User for Basic authentication, with api_key."),
    ProviderSetting(
        "api_key",
        secret=True,
        secret_block="custsync-verifone-api-key",
        help="API key for Basic authentication, with user.",
    ),
    ProviderSetting("entity_id", "sandbox-entity", help="The entity every customer belongs to."),
)


def connect(
    settings: ProviderSettings,
    config: ClientConfig,
    transport: httpx.AsyncBaseTransport | None,
    on_call: OnCall | None,
) -> VerifoneClient:
    """A :class:`VerifoneClient` from the settings: a Bearer token, or user and API key."""
    token = settings.secret("token")
    api_key = None if token is not None else settings.secret("api_key")
    user = settings.text("user")
    if token is None and not (user and api_key):
        raise MissingCredentials(
            "no Verifone credentials: set CUSTSYNC_VERIFONE_TOKEN (Bearer), or "
            "CUSTSYNC_VERIFONE_USER and CUSTSYNC_VERIFONE_API_KEY (Basic), or a Prefect "
            "Secret block 'custsync-verifone-token' (the sandbox accepts the token 'sandbox-token')"
        )
    return VerifoneClient(
        settings.base_url,
        entity_id=str(settings.text("entity_id")),
        token=token,
        user=user,
        api_key=api_key,
        config=config,
        transport=transport,
        on_call=on_call,
    )


PROVIDER = Provider(
    target=TARGET,
    settings=SETTINGS,
    capabilities=VerifoneClient.capabilities,
    connect=connect,
)
