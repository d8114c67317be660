"""SumUp Customers API v0.1 on the live sandbox: every route, success and error paths."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from connectors.sandbox.server import SandboxServer
from tests.connectors.sandbox.conftest import SUMUP, SUMUP_FORBIDDEN, SUMUP_READONLY

DETAILS = {
    "first_name": "John",
    "last_name": "Doe",
    "email": "user@example.com",
    "birth_date": "1993-12-31",
    "address": {"line_1": "Sample street", "city": "Berlin", "country": "DE"},
}


def test_create_get_and_conflict(client: httpx.Client) -> None:
    body = {"customer_id": "c-1", "personal_details": DETAILS}
    created = client.post("/v0.1/customers", json=body, headers=SUMUP)
    assert created.status_code == 201
    assert created.json() == body
    assert client.get("/v0.1/customers/c-1", headers=SUMUP).json() == body
    again = client.post("/v0.1/customers", json={"customer_id": "c-1"}, headers=SUMUP)
    assert again.status_code == 409
    assert again.json() == {
        "message": "Customer already exists",
        "error_code": "CUSTOMER_ALREADY_EXISTS",
    }
    assert client.get("/v0.1/customers/c-1", headers=SUMUP).json() == body, "a 409 changes nothing"


def test_create_without_details(client: httpx.Client) -> None:
    response = client.post("/v0.1/customers", json={"customer_id": "bare"}, headers=SUMUP)
    assert response.status_code == 201 and response.json() == {"customer_id": "bare"}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "customer_id"),
        ({"customer_id": ""}, "customer_id"),
        (
            {"customer_id": "x", "personal_details": {"birth_date": "yesterday"}},
            "personal_details.birth_date",
        ),
        ({"customer_id": "x", "personal_details": []}, "personal_details"),
    ],
)
def test_create_rejects_invalid_bodies(
    client: httpx.Client, body: dict[str, Any], param: str
) -> None:
    response = client.post("/v0.1/customers", json=body, headers=SUMUP)
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID"
    assert response.json()["param"] == param


def test_unknown_customer_is_404_everywhere(client: httpx.Client) -> None:
    not_found = {"error_code": "NOT_FOUND", "message": "Resource not found"}
    for method, path in [
        ("GET", "/v0.1/customers/ghost"),
        ("PUT", "/v0.1/customers/ghost"),
        ("GET", "/v0.1/customers/ghost/payment-instruments"),
        ("DELETE", "/v0.1/customers/ghost/payment-instruments/tok"),
    ]:
        response = client.request(method, path, json={"personal_details": {}}, headers=SUMUP)
        assert response.status_code == 404 and response.json() == not_found


def test_update_overwrites_only_what_it_is_given(client: httpx.Client) -> None:
    client.post(
        "/v0.1/customers", json={"customer_id": "c", "personal_details": DETAILS}, headers=SUMUP
    )
    patch = {
        "personal_details": {
            "last_name": "Roe",
            "address": {"city": "Hamburg", "postal_code": "20095"},
        }
    }
    response = client.put("/v0.1/customers/c", json=patch, headers=SUMUP)
    assert response.status_code == 200
    details = response.json()["personal_details"]
    assert details["first_name"] == "John" and details["last_name"] == "Roe"
    # A nested address merges key by key: line_1 and country survive.
    assert details["address"] == {
        "line_1": "Sample street",
        "city": "Hamburg",
        "postal_code": "20095",
        "country": "DE",
    }
    assert client.get("/v0.1/customers/c", headers=SUMUP).json()["personal_details"] == details


@pytest.mark.parametrize(
    "body", [{}, {"personal_details": None}, {"personal_details": {"phone": 1}}, []]
)
def test_update_rejects_unusable_bodies(client: httpx.Client, body: Any) -> None:
    client.post("/v0.1/customers", json={"customer_id": "c"}, headers=SUMUP)
    response = client.put("/v0.1/customers/c", json=body, headers=SUMUP)
    assert response.status_code == 400 and response.json()["error_code"] == "INVALID"


def test_customer_ids_are_path_segments(client: httpx.Client) -> None:
    odd = "a/b c?d#é"
    assert (
        client.post("/v0.1/customers", json={"customer_id": odd}, headers=SUMUP).status_code == 201
    )
    from urllib.parse import quote

    response = client.get(f"/v0.1/customers/{quote(odd, safe='')}", headers=SUMUP)
    assert response.status_code == 200 and response.json() == {"customer_id": odd}


def test_instruments_list_and_deactivate(sb: SandboxServer, client: httpx.Client) -> None:
    client.post("/v0.1/customers", json={"customer_id": "c"}, headers=SUMUP)
    assert client.get("/v0.1/customers/c/payment-instruments", headers=SUMUP).json() == []
    cards = sb.admin.seed_instruments(
        "c", [{"card": {"type": "MASTERCARD", "last_4_digits": "4242"}}, {}]
    )
    listed = client.get("/v0.1/customers/c/payment-instruments", headers=SUMUP).json()
    assert listed == cards and all(card["active"] for card in listed)
    assert listed[0]["card"] == {"type": "MASTERCARD", "last_4_digits": "4242"}

    token = cards[0]["token"]
    path = f"/v0.1/customers/c/payment-instruments/{token}"
    deleted = client.delete(path, headers=SUMUP)
    assert deleted.status_code == 204 and deleted.content == b""
    listed = client.get("/v0.1/customers/c/payment-instruments", headers=SUMUP).json()
    assert [card["active"] for card in listed] == [False, True]
    assert listed[0]["mandate"]["status"] == "inactive"

    again = client.delete(path, headers=SUMUP)
    assert again.status_code == 400 and again.json()["error_code"] == "INVALID_REQUEST"
    unknown = client.delete("/v0.1/customers/c/payment-instruments/nope", headers=SUMUP)
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer sup_sk_wrong"}, {"Authorization": "Basic eDp5"}]
)
def test_bad_credentials_get_the_problem_401(client: httpx.Client, headers: dict[str, str]) -> None:
    response = client.get("/v0.1/customers/c", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["type"] == "https://developer.sumup.com/problem/unauthorized"
    assert body["status"] == 401 and body["detail"] == "Unauthorized."


def test_scopes_are_enforced_with_error_forbidden(client: httpx.Client) -> None:
    client.post("/v0.1/customers", json={"customer_id": "c"}, headers=SUMUP)
    forbidden = {
        "error_message": "request_not_allowed",
        "error_code": "FORBIDDEN",
        "status_code": "403",
    }
    assert client.get("/v0.1/customers/c", headers=SUMUP_READONLY).status_code == 200
    for method, path, body in [
        ("POST", "/v0.1/customers", {"customer_id": "d"}),
        ("PUT", "/v0.1/customers/c", {"personal_details": {}}),
    ]:
        response = client.request(method, path, json=body, headers=SUMUP_READONLY)
        assert response.status_code == 403 and response.json() == forbidden
    response = client.get("/v0.1/customers/c", headers=SUMUP_FORBIDDEN)
    assert response.status_code == 403 and response.json() == forbidden


def test_no_list_and_no_delete_of_customers(client: httpx.Client) -> None:
    assert client.get("/v0.1/customers", headers=SUMUP).status_code == 405
    assert client.delete("/v0.1/customers/c", headers=SUMUP).status_code == 405
