"""The admin surface: seeding, counters, state, config, generation."""

from __future__ import annotations

import random

import httpx
import pytest

from connectors.sandbox.admin import SandboxAdminError
from connectors.sandbox.server import SandboxServer
from connectors.sandbox.synthetic import sumup_details, verifone_customer
from connectors.sandbox.validation import validate_sumup_create, validate_verifone
from tests.connectors.sandbox.conftest import SUMUP, VERIFONE, person

FIXED_ID = "11111111-2222-4333-8444-555555555555"


def test_seed_verifone_with_ids_and_history(sb: SandboxServer, client: httpx.Client) -> None:
    seeded = sb.admin.seed_verifone(
        [
            person(id=FIXED_ID.upper(), created_at="2023-01-02T03:04:05.678Z"),
            person(created_at="2023-02-01", updated_at="2024-01-01T00:00:00Z"),
        ]
    )
    assert seeded[0]["id"] == FIXED_ID
    assert seeded[0]["created_at"] == seeded[0]["updated_at"] == "2023-01-02T03:04:05.678Z"
    assert seeded[1]["updated_at"] == "2024-01-01T00:00:00.000Z"
    assert client.get(f"/v2/customer/{FIXED_ID}", headers=VERIFONE).json() == seeded[0]
    found = client.get(
        "/v2/customer", params={"search": "updated_at=ge=2024-01-01"}, headers=VERIFONE
    )
    assert [c["id"] for c in found.json()] == [seeded[1]["id"]]


def test_seed_is_all_or_nothing(sb: SandboxServer) -> None:
    with pytest.raises(SandboxAdminError) as caught:
        sb.admin.seed_verifone([person(), {"entity_id": "e"}])
    assert caught.value.status == 400 and caught.value.body["index"] == 1
    assert "company_name" in caught.value.body["details"]
    with pytest.raises(SandboxAdminError) as caught:
        sb.admin.seed_verifone([person(id=FIXED_ID), person(id=FIXED_ID)])
    assert caught.value.status == 409
    with pytest.raises(SandboxAdminError):
        sb.admin.seed_verifone([person(id="not-a-uuid")])
    with pytest.raises(SandboxAdminError):
        sb.admin.seed_verifone([person(created_at="soon")])
    assert sb.admin.state()["verifone"]["customers"] == []


def test_seed_sumup_and_instruments(sb: SandboxServer) -> None:
    seeded = sb.admin.seed_sumup(
        [{"customer_id": "a"}, {"customer_id": "b", "personal_details": {"first_name": "B"}}]
    )
    assert seeded == [
        {"customer_id": "a"},
        {"customer_id": "b", "personal_details": {"first_name": "B"}},
    ]
    with pytest.raises(SandboxAdminError) as caught:
        sb.admin.seed_sumup([{"customer_id": "c"}, {"customer_id": "a"}])
    assert caught.value.status == 409 and caught.value.body["index"] == 1
    with pytest.raises(SandboxAdminError) as caught:
        sb.admin.seed_sumup([{"customer_id": ""}])
    assert caught.value.status == 400

    cards = sb.admin.seed_instruments("a", 3)
    assert len({card["token"] for card in cards}) == 3
    assert all(card["active"] and card["type"] == "card" for card in cards)
    inactive = sb.admin.seed_instruments("a", [{"token": "t-1", "active": False}])[0]
    assert inactive["mandate"]["status"] == "inactive"
    assert [i["token"] for i in sb.admin.state()["sumup"]["instruments"]["a"]][-1] == "t-1"
    for bad in (
        [{"token": "t-1"}],
        [{"card": {"type": "NOPE"}}],
        [{"card": {"last_4_digits": "12"}}],
        -1,
    ):
        with pytest.raises(SandboxAdminError):
            sb.admin.seed_instruments("a", bad)
    with pytest.raises(SandboxAdminError) as caught:
        sb.admin.seed_instruments("nobody", 1)
    assert caught.value.status == 404


def test_counters_by_template_and_status(sb: SandboxServer, client: httpx.Client) -> None:
    created = client.post("/v2/customer", json=person(), headers=VERIFONE).json()
    client.get(f"/v2/customer/{created['id']}", headers=VERIFONE)
    client.get("/v2/customer/00000000-0000-4000-8000-000000000000", headers=VERIFONE)
    client.get(f"/v2/customer/{created['id']}")
    client.post("/v0.1/customers", json={"customer_id": "c"}, headers=SUMUP)
    client.post("/v0.1/customers", json={"customer_id": "c"}, headers=SUMUP)
    client.get("/nowhere")
    sb.admin.state()  # admin calls are never counted
    assert sb.admin.counters() == {
        "total": 7,
        "by_route": {
            "POST /v2/customer": {"200": 1},
            "GET /v2/customer/{customerId}": {"200": 1, "404": 1, "401": 1},
            "POST /v0.1/customers": {"201": 1, "409": 1},
            "GET *": {"404": 1},
        },
        "faults": {},
    }


def test_config_round_trip_and_errors(sb: SandboxServer) -> None:
    config = sb.admin.configure(
        rate_limit=250, burst=5, fault_kinds=["500", "reset"], latency_ms="3"
    )
    assert (config["rate_limit"], config["burst"], config["fault_kinds"], config["latency_ms"]) == (
        250.0,
        5,
        ["500", "reset"],
        3.0,
    )
    assert sb.admin.config() == config
    assert sb.admin.configure(rate_limit=None)["rate_limit"] is None
    for bad in (
        {"fault_rate": 2},
        {"fault_kinds": ["boom"]},
        {"burst": 0},
        {"nope": 1},
        {"burst": "x"},
    ):
        with pytest.raises(SandboxAdminError) as caught:
            sb.admin.configure(**bad)
        assert caught.value.status == 400


def test_generate_realistic_valid_customers(sb: SandboxServer, client: httpx.Client) -> None:
    assert sb.admin.generate(verifone=50, sumup=20, seed=3) == {"verifone": 50, "sumup": 20}
    assert sb.admin.health() == {"status": "ok", "verifone_customers": 50, "sumup_customers": 20}
    listed = client.get(
        "/v2/customer",
        params={"search": "entity_id==sandbox-entity", "page_size": "100"},
        headers=VERIFONE,
    )
    assert len(listed.json()) == 50
    rng = random.Random(0)
    for n in range(500):
        validate_verifone(verifone_customer(rng, n, "e"))
        validate_sumup_create({"customer_id": "x", "personal_details": sumup_details(rng, n)})
    with pytest.raises(SandboxAdminError):
        sb.admin.generate(verifone=-1)


def test_admin_errors_and_unknown_routes(client: httpx.Client) -> None:
    assert client.put("/_sandbox/config", content=b"[1]").status_code == 400
    assert client.post("/_sandbox/seed/verifone", content=b"{}").status_code == 400
    assert client.get("/_sandbox/reset").status_code == 405
    assert client.get("/_sandbox/nothing").status_code == 404
