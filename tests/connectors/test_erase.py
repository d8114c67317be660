"""``erase`` (custsync forget) on both clients, over httpx.MockTransport: what each sends."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from connectors.providers.sumup.client import ERASED_DETAILS, PLACEHOLDER_BIRTH_DATE
from tests.connectors import test_sumup, test_verifone
from tests.connectors.fakes import body_of, json_response


@pytest.mark.parametrize(
    ("answers", "outcome"),
    [([204], "deleted"), ([404], "already_gone"), (["reset", 404], "deleted")],
)
def test_verifone_erases_by_delete(answers: list[Any], outcome: str) -> None:
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        status = queue.pop(0)
        if status == "reset":
            raise httpx.ReadError("connection reset", request=request)
        return json_response(status, None if status == 204 else {"code": status, "message": "x"})

    result, rec, _, _ = test_verifone._run(handler, lambda c: c.erase("u1"))
    assert result.outcome == outcome
    last = rec.requests[-1]
    assert last.method == "DELETE" and last.url.path.endswith("/v2/customer/u1")


@pytest.mark.parametrize("birth_date", [None, "1970-01-02"])
def test_sumup_deactivates_instruments_then_overwrites_the_details(birth_date: str | None) -> None:
    details: dict[str, Any] = {"first_name": "Åsa", "email": "a@x.example"}
    if birth_date:
        details["birth_date"] = birth_date
    instruments = [{"token": "t1", "active": True}, {"token": "t2", "active": False}]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path.endswith("payment-instruments"):
            return json_response(200, instruments)
        if request.method == "GET":
            return json_response(200, {"customer_id": "c-1", "personal_details": details})
        if request.method == "DELETE":
            return httpx.Response(204)
        return json_response(200, {"customer_id": "c-1", **body_of(request)})

    result, rec, _ = test_sumup._run(handler, lambda c: c.erase("c-1"))
    assert (result.outcome, result.deactivated) == ("overwritten", ("t1",))
    sent = [(r.method, r.url.path) for r in rec.requests]
    assert ("DELETE", "/v0.1/customers/c-1/payment-instruments/t1") in sent
    assert sent[-1] == ("PUT", "/v0.1/customers/c-1")
    written = body_of(rec.requests[-1])["personal_details"]
    expected = dict(ERASED_DETAILS)
    if birth_date:
        expected["birth_date"] = PLACEHOLDER_BIRTH_DATE
    assert written == expected
    assert all(v == "" for v in written["address"].values())


def test_sumup_erase_of_an_absent_customer_sends_nothing_more() -> None:
    result, rec, _ = test_sumup._run(
        lambda r: json_response(404, test_sumup.NOT_FOUND), lambda c: c.erase("c-9")
    )
    assert result.outcome == "already_gone" and [r.method for r in rec.requests] == ["GET"]
