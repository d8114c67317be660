"""Helpers shared by the transforms tests: canonical frames from a few dicts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl
import pytest

from transforms.schema import EXTRACT_SCHEMA

ENTITY = "entity-1"


def extract(rows: Iterable[Mapping[str, Any]]) -> pl.LazyFrame:
    """A canonical extract (every column, all text) from partial rows."""
    return pl.DataFrame(list(rows), schema=EXTRACT_SCHEMA).lazy()


def person(external_id: str | None, **fields: Any) -> dict[str, Any]:
    """A row valid for both targets, with ``fields`` overriding it."""
    row: dict[str, Any] = {
        "external_id": external_id,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": f"{(external_id or '').strip().lower() or 'nobody'}@example.com",
        "billing_city": "London",
        "billing_country_code": "GB",
    }
    row.update(fields)
    return row


@pytest.fixture
def entity() -> str:
    return ENTITY
