"""SumUp: the Customers API (client-chosen ids, no delete, payment instruments).

Everything custsync knows of SumUp is declared here: the fields of ``Customer`` with their
published limits, the ``customer_id`` rule, the content codes, the settings and credentials,
and the connector. SumUp has no customer delete: closing a customer deactivates its payment
instruments (:meth:`~connectors.providers.sumup.client.SumUpClient.close`).
"""

from __future__ import annotations

import hashlib

import httpx
import polars as pl
import polars_hash as plh

from connectors.config import ClientConfig
from connectors.http import OnCall
from connectors.oauth import OAuthCredentials
from connectors.providers.base import (
    SANDBOX_URL,
    MissingCredentials,
    Provider,
    ProviderSetting,
    ProviderSettings,
)
from connectors.providers.description import ClientId, Field, TargetDescription
from connectors.providers.sumup.client import SumUpClient

CUSTOMER_ID_LENGTH = 32


def customer_id(external_id: str) -> str:
    """SumUp ``customer_id`` for a CRM key: the first 32 hex digits of SHA-256(external_id).

    SumUp lets the client choose the id. A digest is stable (the same key always finds the
    same customer, so a repeated create is a 409, never a duplicate), URL-safe whatever the
    CRM key holds, and does not put the CRM key (often an e-mail address) into URLs and logs.
    128 bits make a collision between two keys practically impossible.
    """
    return hashlib.sha256(external_id.encode()).hexdigest()[:CUSTOMER_ID_LENGTH]


def customer_id_expr(external_id: pl.Expr) -> pl.Expr:
    """:func:`customer_id` of every row."""
    return plh.CryptographicHashingNameSpace(external_id).sha2_256().str.head(CUSTOMER_ID_LENGTH)


FIELDS: tuple[Field, ...] = (
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

CONTENT_CODES: dict[str, str] = {
    "customer_id": "002",
    "personal_details.first_name": "033",
    "personal_details.last_name": "034",
    "personal_details.email": "035",
    "personal_details.phone": "036",
    "personal_details.birth_date": "037",
    "personal_details.tax_id": "038",
    "personal_details.address.line_1": "039",
    "personal_details.address.line_2": "040",
    "personal_details.address.city": "041",
    "personal_details.address.state": "042",
    "personal_details.address.postal_code": "043",
    "personal_details.address.country": "044",
}
"""Body path → frozen content code (Verifone holds 001 and 003–032)."""

TARGET = TargetDescription(
    name="sumup",
    title="SumUp",
    fields=FIELDS,
    content_codes=CONTENT_CODES,
    client_id=ClientId("customer_id", customer_id_expr, customer_id),
)

SETTINGS = (
    ProviderSetting("base_url", SANDBOX_URL, help="SumUp API base URL."),
    ProviderSetting(
        "api_key",
        secret=True,
        secret_block="custsync-sumup-api-key",
        help="API key (the sandbox accepts 'sup_sk_sandbox').",
    ),
    ProviderSetting(
        "refresh_token",
        secret=True,
        secret_block="custsync-sumup-refresh-token",
        help="OAuth2 refresh token a merchant granted (instead of api_key; with client_id "
        "and client_secret).",
    ),
    ProviderSetting("client_id", help="The platform's OAuth2 client id."),
    ProviderSetting(
        "client_secret",
        secret=True,
        secret_block="custsync-sumup-client-secret",
        help="The platform's OAuth2 client secret.",
    ),
)


def connect(
    settings: ProviderSettings,
    config: ClientConfig,
    transport: httpx.AsyncBaseTransport | None,
    on_call: OnCall | None,
) -> SumUpClient:
    """A :class:`SumUpClient` from the settings' API key or, without one, their OAuth2
    refresh token (with the platform's client id and secret)."""
    key = settings.secret("api_key")
    refresh = settings.secret("refresh_token")
    oauth = None
    if key is None and refresh is not None:
        client_id = settings.text("client_id")
        client_secret = settings.secret("client_secret")
        if not client_id or client_secret is None:
            raise MissingCredentials(
                "a SumUp refresh token needs the OAuth client: set CUSTSYNC_SUMUP_CLIENT_ID "
                "and CUSTSYNC_SUMUP_CLIENT_SECRET (or the Secret block "
                "'custsync-sumup-client-secret')"
            )
        oauth = OAuthCredentials(client_id, client_secret, refresh)
    elif key is None:
        raise MissingCredentials(
            "no SumUp credentials: set CUSTSYNC_SUMUP_API_KEY or a Prefect Secret block "
            "'custsync-sumup-api-key' (the sandbox accepts 'sup_sk_sandbox'), or an OAuth "
            "refresh token (CUSTSYNC_SUMUP_REFRESH_TOKEN)"
        )
    return SumUpClient(
        settings.base_url,
        api_key=key,
        oauth=oauth,
        config=config,
        transport=transport,
        on_call=on_call,
    )


PROVIDER = Provider(
    target=TARGET,
    settings=SETTINGS,
    capabilities=SumUpClient.capabilities,
    connect=connect,
)
