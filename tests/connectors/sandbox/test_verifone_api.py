"""Verifone Customer API v2 on the live sandbox: every route, success and error paths."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from connectors.sandbox.server import SandboxServer
from tests.connectors.sandbox.conftest import (
    ENTITY,
    VERIFONE,
    VERIFONE_BASIC,
    VERIFONE_SCOPED,
    person,
)

UNKNOWN = "00000000-0000-4000-8000-000000000000"


def create(client: httpx.Client, body: dict[str, Any], headers: dict[str, str] = VERIFONE) -> Any:
    response = client.post("/v2/customer", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["code"] == status
    assert isinstance(body["details"], dict) and isinstance(body["message"], str)
    assert abs(body["timestamp"] - time.time()) < 60
    return body


def test_create_answers_200_with_a_server_uuid_and_timestamps(client: httpx.Client) -> None:
    body = person(email_address="ada@example.com", unknown_field="dropped")
    created = create(client, body)
    assert uuid.UUID(created["id"]).version == 4
    assert created["entity_id"] == ENTITY
    assert created["email_address"] == "ada@example.com"
    assert "unknown_field" not in created
    assert created["created_at"] == created["updated_at"]
    assert created["created_at"].endswith("Z")


def test_create_rejects_invalid_bodies_naming_the_field(client: httpx.Client) -> None:
    response = client.post(
        "/v2/customer", json={**person(), "billing": {"first_name": "x" * 23}}, headers=VERIFONE
    )
    assert "billing.first_name" in assert_error(response, 400)["details"]
    response = client.post("/v2/customer", content=b"{not json", headers=VERIFONE)
    assert "body" in assert_error(response, 400)["details"]
    response = client.post("/v2/customer", json={"company_name": "A"}, headers=VERIFONE)
    assert assert_error(response, 400)["details"] == {"entity_id": "is required"}


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic !!"}]
)
def test_missing_or_wrong_credentials_get_401(
    client: httpx.Client, headers: dict[str, str]
) -> None:
    for response in (
        client.get("/v2/customer", params={"search": "id==x"}, headers=headers),
        client.post("/v2/customer", json=person(), headers=headers),
        client.delete(f"/v2/customer/{UNKNOWN}", headers=headers),
    ):
        assert_error(response, 401)
        assert "Bearer" in response.headers["www-authenticate"]


def test_basic_auth_works_like_bearer(client: httpx.Client) -> None:
    created = create(client, person(), VERIFONE_BASIC)
    assert client.get(f"/v2/customer/{created['id']}", headers=VERIFONE).status_code == 200


def test_entity_scoped_credential_gets_403_on_other_entities(client: httpx.Client) -> None:
    mine = create(client, person(), VERIFONE_SCOPED)
    theirs = create(client, person(entity_id="other-entity"))
    response = client.post(
        "/v2/customer", json=person(entity_id="other-entity"), headers=VERIFONE_SCOPED
    )
    assert assert_error(response, 403)["details"] == {"entity_id": "other-entity"}
    for method in ("GET", "DELETE"):
        response = client.request(method, f"/v2/customer/{theirs['id']}", headers=VERIFONE_SCOPED)
        assert_error(response, 403)
    response = client.post(f"/v2/customer/{theirs['id']}", json=person(), headers=VERIFONE_SCOPED)
    assert_error(response, 403)
    # Searches only ever see the credential's own entities.
    listed = client.get(
        "/v2/customer",
        params={"search": "entity_id=in=(sandbox-entity,other-entity)"},
        headers=VERIFONE_SCOPED,
    )
    assert [c["id"] for c in listed.json()] == [mine["id"]]


def test_get_update_delete_by_id(client: httpx.Client) -> None:
    created = create(client, person(company_name="Old", email_address="o@x.com"))
    url = f"/v2/customer/{created['id']}"
    assert client.get(url, headers=VERIFONE).json() == created
    assert (
        client.get(
            url.upper().replace("/V2/CUSTOMER/", "/v2/customer/"), headers=VERIFONE
        ).status_code
        == 200
    )

    time.sleep(0.002)
    update = {"entity_id": ENTITY, "company_name": "New"}
    updated = client.post(url, json=update, headers=VERIFONE)
    assert updated.status_code == 200
    body = updated.json()
    # The body replaces every field: email and billing are gone.
    assert body == {
        "id": created["id"],
        "entity_id": ENTITY,
        "company_name": "New",
        "created_at": created["created_at"],
        "updated_at": body["updated_at"],
    }
    assert body["updated_at"] > created["updated_at"]

    deleted = client.delete(url, headers=VERIFONE)
    assert deleted.status_code == 204 and deleted.content == b""
    assert "content-type" not in deleted.headers
    assert_error(client.get(url, headers=VERIFONE), 404)
    assert_error(client.delete(url, headers=VERIFONE), 404)
    assert_error(client.post(url, json=update, headers=VERIFONE), 404)


def test_update_validates_and_keeps_the_entity(client: httpx.Client) -> None:
    created = create(client, person())
    url = f"/v2/customer/{created['id']}"
    assert_error(client.post(url, json={"company_name": "A"}, headers=VERIFONE), 400)
    response = client.post(url, json=person(entity_id="elsewhere"), headers=VERIFONE)
    assert "entity_id" in assert_error(response, 400)["details"]


@pytest.mark.parametrize("bad", ["nope", "1234", UNKNOWN[:-1], UNKNOWN + "0", "{" + UNKNOWN + "}"])
def test_malformed_uuid_gets_400(client: httpx.Client, bad: str) -> None:
    for method in ("GET", "DELETE"):
        response = client.request(method, f"/v2/customer/{bad}", headers=VERIFONE)
        assert assert_error(response, 400)["details"] == {"customerId": "must be a UUID"}


def test_list_pages_and_orders(sb: SandboxServer, client: httpx.Client) -> None:
    seeded = sb.admin.seed_verifone(
        [
            person(company_name=f"C{n:02d}", created_at=f"2024-05-{n + 1:02d}T00:00:00Z")
            for n in range(12)
        ]
    )
    search = {"search": f"entity_id=={ENTITY}"}

    def page(**params: Any) -> list[str]:
        response = client.get("/v2/customer", params={**search, **params}, headers=VERIFONE)
        assert response.status_code == 200, response.text
        assert isinstance(response.json(), list)
        return [c["company_name"] for c in response.json()]

    assert page() == [f"C{n:02d}" for n in reversed(range(12))]  # default: created, DESC
    assert page(order_by="ASC", page_size=5) == ["C00", "C01", "C02", "C03", "C04"]
    assert page(order_by="ASC", page_size=5, page_number=3) == ["C10", "C11"]
    assert page(order_by="ASC", page_size=5, page_number=4) == []
    assert page(order_criteria="company_name", order_by="ASC", page_size=2) == ["C00", "C01"]
    assert page(order_criteria="id", order_by="ASC") == [
        c["company_name"] for c in sorted(seeded, key=lambda c: c["id"])
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "search"),
        ({"search": ""}, "search"),
        ({"search": "(id==1"}, "search"),
        ({"search": "nickname==x"}, "search"),
        ({"search": "id==1", "page_number": "0"}, "page_number"),
        ({"search": "id==1", "page_size": "x"}, "page_size"),
        ({"search": "id==1", "page_size": "1001"}, "page_size"),
        ({"search": "id==1", "order_by": "asc"}, "order_by"),
        ({"search": "id==1", "order_criteria": "nickname"}, "order_criteria"),
    ],
)
def test_list_errors_name_the_parameter(
    client: httpx.Client, params: dict[str, str], field: str
) -> None:
    response = client.get("/v2/customer", params=params, headers=VERIFONE)
    assert field in assert_error(response, 400)["details"]


def test_bulk_fetch_by_ids(sb: SandboxServer, client: httpx.Client) -> None:
    seeded = sb.admin.seed_verifone([person(company_name=f"C{n}") for n in range(300)])
    wanted = [c["id"] for c in seeded[::2]]
    response = client.get(
        "/v2/customer",
        params={"search": f"id=in=({','.join(wanted)})", "page_size": "1000"},
        headers=VERIFONE,
    )
    assert sorted(c["id"] for c in response.json()) == sorted(wanted)


def test_unknown_paths_and_methods(client: httpx.Client) -> None:
    assert_error(client.get("/v2/customers", headers=VERIFONE), 404)
    response = client.put("/v2/customer", headers=VERIFONE)
    assert_error(response, 405)
    assert response.headers["allow"] == "GET, POST"
