"""Realistic synthetic customers, generated straight into the stores.

Every generated Verifone record passes :func:`~connectors.sandbox.validation.validate_verifone`
(a test checks a sample), so a million of them measure the memory of realistic records.
"""

from __future__ import annotations

import random
from typing import Any

from connectors.sandbox.state import SandboxState

MAX_GENERATE = 5_000_000
_FIRST = ("Anna", "Ben", "Chloé", "David", "Emma", "Farid", "Greta", "Hugo", "Ines", "Jonas")
_LAST = ("Müller", "Smith", "García", "Rossi", "Dubois", "Kowalski", "Jensen", "Silva", "Novak")
_CITIES = (("Berlin", "DE", "10115"), ("London", "GB", "EC1A 1BB"), ("Paris", "FR", "75001"))
_STREETS = ("Hauptstraße", "High Street", "Rue de Rivoli", "Main Street", "Via Roma")


def _count(body: dict[str, Any], name: str) -> int:
    value = body.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_GENERATE:
        raise ValueError(f"{name} must be an integer between 0 and {MAX_GENERATE}")
    return value


def verifone_customer(rng: random.Random, n: int, entity_id: str) -> dict[str, Any]:
    """The ``n``-th synthetic ``CustomerRequest`` (valid, about 450 bytes as JSON)."""
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    city, country, postal = rng.choice(_CITIES)
    phone = f"+{rng.randrange(1, 99)} {rng.randrange(100, 999)} {rng.randrange(1000000, 9999999)}"
    address = {
        "address_1": f"{rng.randrange(1, 300)} {rng.choice(_STREETS)}",
        "city": city,
        "country_code": country,
        "first_name": first,
        "last_name": last,
        "phone": phone,
        "postal_code": postal,
    }
    customer: dict[str, Any] = {
        "entity_id": entity_id,
        "email_address": f"{first.lower()}.{n}@example.com".replace("é", "e").replace("ü", "u"),
        "phone_number": phone,
        "billing": address,
    }
    if n % 5 == 0:
        customer["company_name"] = f"{last} & Partner {n}"
        customer["company_registration_number"] = f"HRB{n:09d}"
    if n % 2 == 0:
        customer["shipping"] = dict(address, address_2="Floor 2")
    if n % 3 == 0:
        customer["tax"] = {"identifier": f"{n % 1_000_000_000:09d}"}
    return customer


def sumup_details(rng: random.Random, n: int) -> dict[str, Any]:
    """The ``n``-th synthetic ``PersonalDetails``."""
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    city, country, postal = rng.choice(_CITIES)
    return {
        "first_name": first,
        "last_name": last,
        "email": f"{first.lower()}.{n}@example.com".replace("é", "e"),
        "phone": f"+49{rng.randrange(1000000000, 9999999999)}",
        "birth_date": f"{rng.randrange(1940, 2005)}-{rng.randrange(1, 13):02d}"
        f"-{rng.randrange(1, 29):02d}",
        "address": {
            "line_1": f"{rng.choice(_STREETS)} {rng.randrange(1, 300)}",
            "city": city,
            "postal_code": postal,
            "country": country,
        },
    }


def generate(state: SandboxState, body: dict[str, Any]) -> dict[str, int]:
    """Add ``body["verifone"]`` and ``body["sumup"]`` synthetic customers; return the counts."""
    n_verifone, n_sumup = _count(body, "verifone"), _count(body, "sumup")
    entity_id = body.get("entity_id", state.config.verifone_entity)
    if not isinstance(entity_id, str) or not entity_id:
        raise ValueError("entity_id must be a non-empty string")
    seed = body.get("seed", state.config.seed or 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError("seed must be an integer")
    rng = random.Random(seed)
    start = len(state.verifone)
    for n in range(start, start + n_verifone):
        state.verifone.create(verifone_customer(rng, n, entity_id))
    made = 0
    n = len(state.sumup.customers)
    while made < n_sumup:
        customer_id = f"synthetic-{seed}-{n}"
        n += 1
        if state.sumup.create(customer_id, sumup_details(rng, n)) is not None:
            made += 1
    return {"verifone": n_verifone, "sumup": made}
