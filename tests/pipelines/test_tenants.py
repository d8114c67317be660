"""The tenants file: generated valid files load as written; every broken one is refused with
an error naming the file, the tenant and the field (and never repeating a secret)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.tenants import TenantsError, load_tenants, parse_tenants
from transforms.schema import MODES

FILE = Path("/platform/tenants.toml")

env_names = st.from_regex(r"[A-Z_][A-Z0-9_]{0,20}", fullmatch=True)
block_names = st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}", fullmatch=True)
references = st.one_of(env_names, block_names.map(lambda n: f"block:{n}"))
# A valid setting's value: printable, and not blank (a blank value is refused on its own).
plain = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=20).filter(
    str.strip
)
tenant_ids = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,15}", fullmatch=True)


def _toml(value: Any) -> str:
    """A TOML value (inline tables and arrays; JSON's string escapes are TOML's)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"


def dumps(doc: dict[str, Any]) -> str:
    """A TOML document of ``doc``'s top-level keys."""
    return "\n".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in doc.items()) + "\n"


@st.composite
def sumup_tables(draw: st.DrawFn) -> dict[str, str]:
    if draw(st.booleans()):
        return {"api_key": draw(references)}
    return {"refresh_token": draw(references), "client_id": draw(plain)}


@st.composite
def verifone_tables(draw: st.DrawFn) -> dict[str, str]:
    table = {"entity_id": draw(plain)}
    if draw(st.booleans()):
        table["token"] = draw(references)
    else:
        table.update(user=draw(plain), api_key=draw(references))
    return table


@st.composite
def tenant_entries(draw: st.DrawFn, tenant_id: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": tenant_id}
    source = draw(st.sampled_from(["extract", "landing", "landing+processed"]))
    if source == "extract":
        entry["extract"] = draw(
            st.sampled_from(
                [f"exports/{tenant_id}/*.csv", [f"in/{tenant_id}.csv", "/abs/shared.parquet"]]
            )
        )
    else:
        entry["landing"] = draw(
            st.sampled_from([f"landing/{tenant_id}", f"/srv/landing/{tenant_id}/*.parquet"])
        )
        if source == "landing+processed":
            entry["processed"] = f"processed/{tenant_id}"
    targets = draw(st.sets(st.sampled_from(["sumup", "verifone"]), min_size=1))
    if "sumup" in targets:
        entry["sumup"] = draw(sumup_tables())
    if "verifone" in targets:
        entry["verifone"] = draw(verifone_tables())
    if draw(st.booleans()):
        entry["mode"] = draw(st.sampled_from(MODES))
    if draw(st.booleans()):
        entry["rate_limit"] = draw(
            st.one_of(st.integers(0, 1000), st.floats(0, 1000, allow_nan=False))
        )
    return entry


@st.composite
def tenants_docs(draw: st.DrawFn) -> dict[str, Any]:
    ids = draw(st.lists(tenant_ids, min_size=1, max_size=6, unique=True))
    doc: dict[str, Any] = {"tenants": [draw(tenant_entries(i)) for i in ids]}
    if draw(st.booleans()):
        doc["state_dir"] = "fleet-state"
    if draw(st.booleans()):
        doc["audit_dir"] = draw(st.sampled_from(["fleet-audit", "/shared/audit"]))
    if draw(st.booleans()):
        doc["defaults"] = {"mode": draw(st.sampled_from(MODES)), "rate_limit": 5}
    return doc


@given(tenants_docs())
@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow])
def test_a_valid_file_loads_as_written(doc: dict[str, Any]) -> None:
    loaded = parse_tenants(dumps(doc), FILE)
    entries = doc["tenants"]
    assert [t.id for t in loaded.tenants] == [e["id"] for e in entries]
    defaults = doc.get("defaults", {})
    for tenant, entry in zip(loaded.tenants, entries, strict=True):
        assert tenant.mode == entry.get("mode", defaults.get("mode", "upsert"))
        rate = entry.get("rate_limit", defaults.get("rate_limit"))
        assert tenant.rate_limit == (None if rate is None else float(rate))
        assert all(Path(p).is_absolute() for p in tenant.extract)
        assert tenant.landing == ("landing" in entry)
        if "landing" in entry:
            given_ = FILE.parent / entry["landing"]
            wildcard = "*" in entry["landing"]
            assert tenant.extract == (str(given_ if wildcard else given_ / "*"),)
            processed = entry.get("processed")
            assert tenant.processed == (processed and str(FILE.parent / processed))
        else:
            assert tenant.processed is None
        assert set(tenant.targets) == {"sumup", "verifone"} & set(entry)
        for name, config in tenant.targets.items():
            written = {**config.settings, **{k: str(r) for k, r in config.credentials.items()}}
            assert written == entry[name]
    runs = loaded.runs()
    assert len(runs) == sum(len(t.targets) for t in loaded.tenants)
    files = {loaded.state_file(t.id, target) for t, target in runs}
    assert len(files) == len(runs)  # one state file (one writer) per tenant and target
    state_dir = FILE.parent / doc.get("state_dir", "state")
    assert all(f.parent == state_dir for f in files)
    audit_dir = FILE.parent / doc["audit_dir"] if "audit_dir" in doc else state_dir.parent / "audit"
    assert loaded.audit_folder() == audit_dir


def _first(doc: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = doc["tenants"][0]
    return entry


def _target(doc: dict[str, Any]) -> tuple[str, dict[str, str]]:
    entry = _first(doc)
    name = "sumup" if "sumup" in entry else "verifone"
    return name, entry[name]


def _unknown_top(doc: dict[str, Any]) -> tuple[str | None, str]:
    doc["tenant"] = []
    return None, "tenant"


def _unknown_key(doc: dict[str, Any]) -> tuple[str | None, str]:
    _first(doc)["extracts"] = "x.csv"
    return _first(doc)["id"], "extracts"


def _missing_id(doc: dict[str, Any]) -> tuple[str | None, str]:
    del _first(doc)["id"]
    return "#1", "id"


def _missing_extract(doc: dict[str, Any]) -> tuple[str | None, str]:
    for key in ("extract", "landing", "processed"):
        _first(doc).pop(key, None)
    return _first(doc)["id"], "extract"


def _extract_and_landing(doc: dict[str, Any]) -> tuple[str | None, str]:
    _first(doc).update(extract="x.csv", landing="landing/x")
    return _first(doc)["id"], "landing"


def _processed_without_landing(doc: dict[str, Any]) -> tuple[str | None, str]:
    _first(doc).pop("landing", None)
    _first(doc).update(extract="x.csv", processed="done/")
    return _first(doc)["id"], "processed"


def _blank_landing(doc: dict[str, Any]) -> tuple[str | None, str]:
    _first(doc).pop("extract", None)
    _first(doc)["landing"] = [" "]
    return _first(doc)["id"], "landing"


def _bad_audit_dir(doc: dict[str, Any]) -> tuple[str | None, str]:
    doc["audit_dir"] = 7
    return None, "audit_dir"


def _duplicate_id(doc: dict[str, Any]) -> tuple[str | None, str]:
    doc["tenants"].append(dict(_first(doc)))
    return _first(doc)["id"], "id"


def _unknown_target(doc: dict[str, Any]) -> tuple[str | None, str]:
    _first(doc)["stripe"] = {"api_key": "STRIPE_KEY"}
    return _first(doc)["id"], "stripe"


def _no_target(doc: dict[str, Any]) -> tuple[str | None, str]:
    _first(doc).pop("sumup", None)
    _first(doc).pop("verifone", None)
    return _first(doc)["id"], "targets"


def _unknown_setting(doc: dict[str, Any]) -> tuple[str | None, str]:
    name, table = _target(doc)
    table["entity"] = "x"
    return _first(doc)["id"], f"{name}.entity"


def _negative_rate(doc: dict[str, Any]) -> tuple[str | None, str]:
    _first(doc)["rate_limit"] = -1
    return _first(doc)["id"], "rate_limit"


def _bad_mode(doc: dict[str, Any]) -> tuple[str | None, str]:
    _first(doc)["mode"] = "sync"
    return _first(doc)["id"], "mode"


def _bad_id(doc: dict[str, Any]) -> tuple[str | None, str]:
    _first(doc)["id"] = "Acme Corp"
    return "#1", "id"


def _bad_default(doc: dict[str, Any]) -> tuple[str | None, str]:
    doc["defaults"] = {"rate_limit": "fast"}
    return None, "defaults.rate_limit"


MUTATIONS = (
    _unknown_top,
    _unknown_key,
    _missing_id,
    _missing_extract,
    _duplicate_id,
    _unknown_target,
    _no_target,
    _unknown_setting,
    _negative_rate,
    _bad_mode,
    _bad_id,
    _bad_default,
    _extract_and_landing,
    _processed_without_landing,
    _blank_landing,
    _bad_audit_dir,
)


@given(tenants_docs(), st.sampled_from(MUTATIONS))
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
def test_a_broken_file_is_refused_naming_file_tenant_and_field(
    doc: dict[str, Any], mutate: Any
) -> None:
    tenant, field = mutate(doc)
    with pytest.raises(TenantsError) as refused:
        parse_tenants(dumps(doc), FILE)
    error = refused.value
    assert (error.tenant, error.field) == (tenant, field)
    where = [str(FILE), *([f"tenant {tenant}"] if tenant else []), field]
    assert str(error).startswith(": ".join(where) + ": ")


secrets = st.one_of(
    st.from_regex(r"sup_sk_[A-Za-z0-9]{8,32}", fullmatch=True),
    st.from_regex(r"eyJ[A-Za-z0-9_-]{10,40}\.[A-Za-z0-9_-]{10,40}", fullmatch=True),
    st.from_regex(r"[a-f0-9]{32,64}", fullmatch=True),
    st.from_regex(r"block:[A-Z][A-Za-z0-9 ]{3,20}", fullmatch=True),
)


@given(tenants_docs(), secrets)
@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow])
def test_a_secret_in_the_file_is_refused_and_never_repeated(
    doc: dict[str, Any], secret: str
) -> None:
    name, table = _target(doc)
    key = next(k for k in ("api_key", "token", "refresh_token") if k in table)
    table[key] = secret
    with pytest.raises(TenantsError) as refused:
        parse_tenants(dumps(doc), FILE)
    assert refused.value.field == f"{name}.{key}"
    assert "reference" in str(refused.value)
    assert secret not in str(refused.value) and secret not in repr(refused.value)


def test_defaults_give_every_tenant_the_platform_oauth_client() -> None:
    text = """
[defaults.sumup]
client_id = "cc_platform"
client_secret = "PLATFORM_SUMUP_CLIENT_SECRET"

[[tenants]]
id = "acme"
extract = "landing/acme/*.csv"
[tenants.sumup]
refresh_token = "block:acme-sumup"

[[tenants]]
id = "bolt"
extract = "landing/bolt/*.csv"
[tenants.verifone]
token = "BOLT_VERIFONE_TOKEN"
"""
    loaded = parse_tenants(text, FILE)
    acme = loaded.tenant("acme").targets["sumup"]
    assert acme.settings == {"client_id": "cc_platform"}
    assert {k: str(v) for k, v in acme.credentials.items()} == {
        "client_secret": "PLATFORM_SUMUP_CLIENT_SECRET",
        "refresh_token": "block:acme-sumup",
    }
    assert set(loaded.tenant("bolt").targets) == {"verifone"}  # defaults add no target


def test_an_unreadable_or_malformed_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TenantsError, match=r"tenants.toml: cannot read"):
        load_tenants(tmp_path / "tenants.toml")
    bad = tmp_path / "tenants.toml"
    bad.write_text("[[tenants]\nid=", encoding="utf-8")
    with pytest.raises(TenantsError, match=r"tenants.toml: not valid TOML"):
        load_tenants(bad)
    with pytest.raises(TenantsError, match=r"tenants: list at least one"):
        parse_tenants("state_dir = 'x'\n", FILE)
