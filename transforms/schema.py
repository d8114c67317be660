"""The canonical extract format: the columns a CRM extract is read into.

Every column is text. Nothing is inferred from the data (a postal code ``01099`` stays
``01099``); dates and statuses are parsed deliberately by :mod:`transforms.validate`.
"""

from __future__ import annotations

from typing import Literal, get_args

import polars as pl

Mode = Literal["mirror", "upsert", "update-only", "create-only"]
"""How a sync treats the difference between extract and snapshot (see :mod:`transforms.diff`)."""

MODES: tuple[Mode, ...] = get_args(Mode)

_ADDRESS = ("address_1", "address_2", "address_3", "city", "state", "postal_code", "country_code")

CANONICAL_COLUMNS: tuple[str, ...] = (
    "external_id",
    "status",
    "title",
    "first_name",
    "middle_name",
    "last_name",
    "company_name",
    "company_registration_number",
    "email",
    "phone",
    "work_phone",
    "birth_date",
    "tax_id",
    "language",
    *(f"billing_{part}" for part in (*_ADDRESS, "phone")),
    *(
        f"shipping_{part}"
        for part in ("first_name", "middle_name", "last_name", *_ADDRESS, "phone")
    ),
)
"""Every column of the canonical extract, in the documented order."""

REQUIRED_COLUMNS: tuple[str, ...] = ("external_id",)
"""Columns a file must have; every other canonical column is optional (read as null)."""

EXTRACT_SCHEMA: pl.Schema = pl.Schema({name: pl.String for name in CANONICAL_COLUMNS})
"""The schema of every extract frame: all canonical columns, all ``pl.String``."""

INSTRUMENT_COLUMNS: tuple[str, ...] = ("external_id", "token")
"""The instruments extract: one payment instrument to deactivate per row."""

INSTRUMENT_SCHEMA: pl.Schema = pl.Schema({name: pl.String for name in INSTRUMENT_COLUMNS})

STATUSES: tuple[str, ...] = ("active", "closed")
"""Allowed values of ``status``; an empty status means ``active``."""
