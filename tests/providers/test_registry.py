"""The provider registry: built-ins, consistency checks, and what reads it."""

from __future__ import annotations

import dataclasses

import pytest

from connectors.providers import sumup, verifone
from connectors.providers.base import ProviderSetting
from connectors.providers.description import Field, TargetDescription
from connectors.providers.registry import (
    ProviderConflict,
    UnknownProvider,
    content_codes,
    describe,
    get_provider,
    provider_names,
    register,
    registered,
)


def _provider(name: str, codes: dict[str, str], **target: object) -> object:
    description = TargetDescription(
        name=name,
        title=name.title(),
        fields=(Field("email", "email", 200, format="email"),),
        content_codes=codes,
        **target,  # type: ignore[arg-type]
    )
    return dataclasses.replace(
        verifone.PROVIDER,
        target=description,
        settings=(ProviderSetting("base_url", "http://127.0.0.1:1"),),
    )


def test_the_built_ins_are_registered_in_order() -> None:
    assert provider_names()[:2] == ("verifone", "sumup")
    assert get_provider("verifone") is verifone.PROVIDER
    assert describe("sumup") is sumup.TARGET


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(UnknownProvider, match="choose verifone or sumup"):
        get_provider("stripe")


def test_the_content_codes_are_the_frozen_ones() -> None:
    codes = content_codes()
    assert codes["entity_id"] == "001" and codes["customer_id"] == "002"
    assert codes["personal_details.address.country"] == "044"
    assert len(set(codes.values())) == len(codes) == 44


def test_a_registered_provider_is_known_then_forgotten() -> None:
    fake = _provider("fakepay", {"email": "901"})
    with registered(fake):  # type: ignore[arg-type]
        assert "fakepay" in provider_names()
        assert content_codes()["email"] == "901"
    assert "fakepay" not in provider_names()
    assert "email" not in content_codes()


@pytest.mark.parametrize(
    ("name", "codes", "message"),
    [
        ("Fake Pay", {"email": "901"}, "lower-case"),
        ("fakepay", {}, "no content code for email"),
        ("fakepay", {"email": "009"}, "code 009 is verifone's email_address"),
        ("fakepay", {"email": "901", "title": "902"}, "title has code 902, verifone uses 003"),
        ("fakepay", {"email": "901", "title": "003"}, None),
    ],
)
def test_inconsistent_declarations_are_refused(
    name: str, codes: dict[str, str], message: str | None
) -> None:
    fake = _provider(name, codes)
    if message is None:
        with registered(fake):  # type: ignore[arg-type]
            pass
        return
    with pytest.raises(ProviderConflict, match=message):
        register(fake)  # type: ignore[arg-type]
    assert name not in provider_names()


def test_a_constant_must_read_a_declared_setting() -> None:
    fake = _provider("fakepay", {"email": "901", "account": "902"}, constants={"account": "acct"})
    with pytest.raises(ProviderConflict, match="undeclared"):
        register(fake)  # type: ignore[arg-type]
