"""Request bodies checked exactly as the providers publish them.

Decisions where the documents are silent (see docs/sandbox.md, "Fidelity decisions"):

- Unknown fields are ignored and not stored, as most real APIs do.
- ``null`` is not a string (no schema field is nullable): rejected by both APIs; omit the
  field instead.
- Verifone's documented field restriction "``\\`` is disallowed" applies to every string field.
- Patterns are matched against the whole value (``$`` does not accept a trailing newline).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

_PHONE = re.compile(r"[0-9\s\-+().-]+")
_TITLE = re.compile(r"[a-zA-Z\-\s.]+")
_DIGITS = re.compile(r"[0-9]+")
_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

# field -> (maxLength, pattern, pattern description)
_Rule = tuple[int | None, re.Pattern[str] | None, str]
_PHONE_RULE: _Rule = (25, _PHONE, "digits, spaces and + - ( ) . only")
_ADDRESS: dict[str, _Rule] = {
    "address_1": (40, None, ""),
    "address_2": (40, None, ""),
    "address_3": (40, None, ""),
    "city": (28, None, ""),
    "country_code": (None, None, ""),
    "first_name": (22, None, ""),
    "middle_name": (22, None, ""),
    "last_name": (22, None, ""),
    "phone": _PHONE_RULE,
    "postal_code": (10, None, ""),
    "state": (35, None, ""),
}
VERIFONE_NESTED: dict[str, dict[str, _Rule]] = {
    "billing": _ADDRESS,
    "shipping": _ADDRESS,
    "tax": {"identifier": (9, _DIGITS, "digits only")},
}
VERIFONE_SCALARS: dict[str, _Rule] = {
    "company_name": (100, None, ""),
    "company_registration_number": (24, None, ""),
    "email_address": (255, _EMAIL, "a valid email address"),
    "entity_id": (None, None, ""),
    "phone_number": _PHONE_RULE,
    "title": (120, _TITLE, "letters, spaces, - and . only"),
    "work_phone": _PHONE_RULE,
    "language": (None, None, ""),
}
VERIFONE_FIELDS = (
    "entity_id",
    "company_name",
    "company_registration_number",
    "email_address",
    "phone_number",
    "work_phone",
    "title",
    "language",
    "billing",
    "shipping",
    "tax",
)
"""Stored order of a ``CustomerRequest``'s fields."""

SUMUP_DETAILS = ("first_name", "last_name", "email", "phone", "birth_date", "tax_id", "address")
SUMUP_ADDRESS = ("line_1", "line_2", "city", "state", "postal_code", "country")


class VerifoneInvalid(ValueError):
    """A ``CustomerRequest`` breaks the contract; ``details`` maps field → problem."""

    def __init__(self, details: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in details.items()))
        self.details = details


class SumUpInvalid(ValueError):
    """A SumUp body breaks the contract; ``param`` is the field in dot notation."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


def _check_string(value: Any, rule: _Rule) -> str | None:
    """Return what is wrong with ``value`` under ``rule``, or ``None``."""
    if not isinstance(value, str):
        return "must be a string"
    max_length, pattern, described = rule
    if max_length is not None and len(value) > max_length:
        return f"must be at most {max_length} characters"
    if "\\" in value:
        return "must not contain a backslash"
    if pattern is not None and not pattern.fullmatch(value):
        return f"must be {described}"
    return None


def _present(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def validate_verifone(body: Any) -> dict[str, Any]:
    """Check a ``CustomerRequest``; return it reduced to the known fields, in stored order."""
    if not isinstance(body, dict):
        raise VerifoneInvalid({"body": "must be a JSON object (CustomerRequest)"})
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for name in VERIFONE_FIELDS:
        if name not in body:
            continue
        value = body[name]
        nested = VERIFONE_NESTED.get(name)
        if nested is None:
            problem = _check_string(value, VERIFONE_SCALARS[name])
            if problem:
                errors[name] = problem
            else:
                clean[name] = value
            continue
        if not isinstance(value, dict):
            errors[name] = "must be an object"
            continue
        sub: dict[str, Any] = {}
        for key, rule in nested.items():
            if key in value:
                problem = _check_string(value[key], rule)
                if problem:
                    errors[f"{name}.{key}"] = problem
                else:
                    sub[key] = value[key]
        clean[name] = sub
    if "entity_id" not in body:
        errors["entity_id"] = "is required"
    elif "entity_id" in clean and not clean["entity_id"].strip():
        errors["entity_id"] = "must not be empty"
    if not errors:
        billing = clean.get("billing", {})
        named = _present(billing.get("first_name")) and _present(billing.get("last_name"))
        if not _present(clean.get("company_name")) and not named:
            errors["company_name"] = (
                "is required when billing.first_name and billing.last_name are not provided"
            )
    if errors:
        raise VerifoneInvalid(errors)
    return clean


def _check_sumup_string(value: Any, param: str, max_length: int | None = None) -> str:
    if not isinstance(value, str):
        raise SumUpInvalid(param, "Validation error: must be a string")
    if max_length is not None and len(value) > max_length:
        raise SumUpInvalid(param, f"Validation error: must be at most {max_length} characters")
    return value


def validate_personal_details(details: Any) -> dict[str, Any]:
    """Check ``PersonalDetails``; return it reduced to the known fields, in stored order."""
    if not isinstance(details, dict):
        raise SumUpInvalid("personal_details", "Validation error: must be an object")
    clean: dict[str, Any] = {}
    for name in SUMUP_DETAILS:
        if name not in details:
            continue
        value = details[name]
        param = f"personal_details.{name}"
        if name == "address":
            if not isinstance(value, dict):
                raise SumUpInvalid(param, "Validation error: must be an object")
            clean[name] = {
                key: _check_sumup_string(value[key], f"{param}.{key}")
                for key in SUMUP_ADDRESS
                if key in value
            }
        elif name == "birth_date":
            text = _check_sumup_string(value, param)
            if not _DATE.fullmatch(text):
                raise SumUpInvalid(param, "Validation error: must be a date (YYYY-MM-DD)")
            try:
                date.fromisoformat(text)
            except ValueError as exc:
                raise SumUpInvalid(param, "Validation error: not a calendar date") from exc
            clean[name] = text
        else:
            clean[name] = _check_sumup_string(value, param, 255 if name == "tax_id" else None)
    return clean


def validate_sumup_create(body: Any) -> tuple[str, dict[str, Any] | None]:
    """Check a ``Customer`` create body; return ``(customer_id, personal_details)``."""
    if not isinstance(body, dict):
        raise SumUpInvalid("body", "Validation error: must be a JSON object")
    customer_id = body.get("customer_id")
    if not isinstance(customer_id, str) or not customer_id.strip():
        raise SumUpInvalid("customer_id", "Validation error")
    if "personal_details" not in body:
        return customer_id, None
    return customer_id, validate_personal_details(body["personal_details"])


def validate_sumup_update(body: Any) -> dict[str, Any]:
    """Check an update body; it must carry a ``personal_details`` object."""
    if not isinstance(body, dict):
        raise SumUpInvalid("body", "Validation error: must be a JSON object")
    if "personal_details" not in body:
        raise SumUpInvalid("personal_details", "Validation error: personal_details is required")
    return validate_personal_details(body["personal_details"])
