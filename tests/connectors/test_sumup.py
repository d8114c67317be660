"""SumUpClient on httpx.MockTransport."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest

from connectors.errors import NotSupported, RecordRejected, TransientError
from connectors.protocol import CustomerConnector
from connectors.providers.sumup.client import SumUpClient
from connectors.secret import Secret
from tests.connectors.fakes import Calls, Recorder, VirtualTime, body_of, json_response

BASE = "https://api.sumup.example"
CUSTOMER = {"customer_id": "c-1", "personal_details": {"first_name": "Ann", "email": "a@x.com"}}
EXISTS = {"message": "Customer already exists", "error_code": "CUSTOMER_ALREADY_EXISTS"}
NOT_FOUND = {"error_code": "NOT_FOUND", "message": "Resource not found"}
INVALID = {"error_code": "INVALID_REQUEST", "message": "bad request"}


def _run(
    handler: Callable[[httpx.Request], httpx.Response],
    action: Callable[[SumUpClient], Coroutine[Any, Any, Any]],
    **config: Any,
) -> tuple[Any, Recorder, Calls]:
    vt = VirtualTime()
    rec = Recorder(handler)
    calls = Calls()

    async def main() -> Any:
        async with SumUpClient(
            BASE,
            api_key=Secret("sup_sk_test_123"),
            config=vt.config(**config),
            transport=rec.transport,
            on_call=calls,
        ) as client:
            return await action(client)

    try:
        result: Any = asyncio.run(vt.run(main()))
    except Exception as exc:  # the test inspects what was raised
        result = exc
    return result, rec, calls


def test_satisfies_the_protocol() -> None:
    client = SumUpClient(BASE, api_key=Secret("k"))
    assert isinstance(client, CustomerConnector)
    caps = client.capabilities
    assert (caps.delete, caps.list, caps.instruments, caps.client_ids) == (False, False, True, True)
    asyncio.run(client.aclose())


def test_create() -> None:
    result, rec, calls = _run(lambda r: json_response(201, CUSTOMER), lambda c: c.create(CUSTOMER))
    assert (result.outcome, result.remote_id, result.record) == ("created", "c-1", CUSTOMER)
    (req,) = rec.requests
    assert (req.method, str(req.url)) == ("POST", BASE + "/v0.1/customers")
    assert req.headers["authorization"] == "Bearer sup_sk_test_123"
    assert body_of(req) == CUSTOMER
    assert calls[0].path_template == "/v0.1/customers"


def test_create_conflict_adopts_the_existing_customer() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return json_response(409, EXISTS)
        return json_response(200, {**CUSTOMER, "personal_details": {"first_name": "Old"}})

    result, rec, _ = _run(handler, lambda c: c.create(CUSTOMER))
    assert (result.outcome, result.remote_id) == ("adopted", "c-1")
    assert result.record["personal_details"] == {"first_name": "Old"}
    assert [(r.method, r.url.path) for r in rec.requests] == [
        ("POST", "/v0.1/customers"),
        ("GET", "/v0.1/customers/c-1"),
    ]


def test_create_retried_after_a_commit_failure_adopts() -> None:
    answers = iter([json_response(500, None), json_response(409, EXISTS)])

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers) if request.method == "POST" else json_response(200, CUSTOMER)

    result, rec, _ = _run(handler, lambda c: c.create(CUSTOMER))
    assert result.outcome == "adopted"
    assert [r.method for r in rec.requests] == ["POST", "POST", "GET"]


def test_create_rejections() -> None:
    bad = {"error_code": "INVALID", "message": "Validation error", "param": "customer_id"}
    result, _, _ = _run(lambda r: json_response(400, bad), lambda c: c.create(CUSTOMER))
    assert isinstance(result, RecordRejected) and result.code == "INVALID"
    result, rec, _ = _run(lambda r: json_response(201, {}), lambda c: c.create({"x": 1}))
    assert isinstance(result, RecordRejected) and rec.requests == []
    other_409 = {"message": "Conflict", "error_code": "SOMETHING_ELSE"}
    result, _, _ = _run(lambda r: json_response(409, other_409), lambda c: c.create(CUSTOMER))
    assert isinstance(result, RecordRejected) and result.status == 409


def test_fetch_many_gets_concurrently_and_leaves_out_404() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        cid = request.url.path.rsplit("/", 1)[1]
        if cid == "gone":
            return json_response(404, NOT_FOUND)
        return json_response(200, {"customer_id": cid})

    result, rec, _ = _run(handler, lambda c: c.fetch_many(["a", "gone", "b", "a"]))
    assert result == {"a": {"customer_id": "a"}, "b": {"customer_id": "b"}}
    assert len(rec.requests) == 3


def test_fetch_many_propagates_other_failures() -> None:
    result, _, _ = _run(lambda r: json_response(503, None), lambda c: c.fetch_many(["a"]))
    assert isinstance(result, TransientError)


def test_update_puts_only_personal_details() -> None:
    result, rec, _ = _run(
        lambda r: json_response(200, CUSTOMER), lambda c: c.update("c-1", CUSTOMER)
    )
    (req,) = rec.requests
    assert (req.method, req.url.path) == ("PUT", "/v0.1/customers/c-1")
    assert body_of(req) == {"personal_details": CUSTOMER["personal_details"]}
    assert result == CUSTOMER
    result, rec, _ = _run(lambda r: json_response(200, CUSTOMER), lambda c: c.update("c-1", {}))
    assert isinstance(result, RecordRejected) and rec.requests == []


def test_update_of_a_missing_customer_is_rejected() -> None:
    result, _, _ = _run(lambda r: json_response(404, NOT_FOUND), lambda c: c.update("x", CUSTOMER))
    assert isinstance(result, RecordRejected) and result.code == "NOT_FOUND"


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ([204], True),
        ([(400, INVALID)], False),
        (["reset", (400, INVALID)], True),  # our first attempt did it; its answer was lost
        ([503, 204], True),
    ],
)
def test_deactivate_instrument(answers: list[Any], expected: bool) -> None:
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        answer = queue.pop(0)
        if answer == "reset":
            raise httpx.RemoteProtocolError("Server disconnected", request=request)
        if isinstance(answer, tuple):
            return json_response(*answer)
        return json_response(answer, None)

    result, rec, calls = _run(handler, lambda c: c.deactivate_instrument("c/1", "tok 1"))
    assert result is expected
    assert rec.requests[0].method == "DELETE"
    assert rec.requests[0].url.raw_path == b"/v0.1/customers/c%2F1/payment-instruments/tok%201"
    assert calls[0].path_template == "/v0.1/customers/{customer_id}/payment-instruments/{token}"


def test_deactivate_unknown_instrument_is_rejected() -> None:
    result, _, _ = _run(
        lambda r: json_response(404, NOT_FOUND), lambda c: c.deactivate_instrument("c", "t")
    )
    assert isinstance(result, RecordRejected) and result.status == 404


def test_close_deactivates_every_active_instrument() -> None:
    instruments = [
        {"token": "t1", "active": True, "type": "card"},
        {"token": "t2", "active": False, "type": "card"},
        {"token": "t3", "active": True, "type": "card"},
        {"token": "t4", "type": "card"},  # active defaults to true
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return json_response(200, instruments)
        if request.url.path.endswith("/t3"):
            return json_response(400, INVALID)  # deactivated meanwhile
        return json_response(204, None)

    result, rec, _ = _run(handler, lambda c: c.close("c-1"))
    assert (result.outcome, result.deactivated) == ("deactivated", ("t1", "t4"))
    deleted = sorted(r.url.path.rsplit("/", 1)[1] for r in rec.requests if r.method == "DELETE")
    assert deleted == ["t1", "t3", "t4"]


def test_close_of_an_unknown_customer_is_already_gone() -> None:
    result, _, _ = _run(lambda r: json_response(404, NOT_FOUND), lambda c: c.close("nobody"))
    assert result.outcome == "already_gone"


def test_list_instruments() -> None:
    rows = [{"token": "t1", "active": True}]
    result, rec, _ = _run(lambda r: json_response(200, rows), lambda c: c.list_instruments("a.b"))
    assert result == rows
    assert rec.requests[0].url.path == "/v0.1/customers/a.b/payment-instruments"


def test_no_search_on_sumup() -> None:
    result, rec, _ = _run(lambda r: json_response(200, []), lambda c: c.find({"a": "b"}))
    assert isinstance(result, NotSupported) and rec.requests == []


def test_customer_id_is_escaped() -> None:
    _, rec, _ = _run(lambda r: json_response(200, CUSTOMER), lambda c: c.get("a/b #%"))
    assert rec.requests[0].url.raw_path == b"/v0.1/customers/a%2Fb%20%23%25"
    _, rec, _ = _run(lambda r: json_response(200, CUSTOMER), lambda c: c.get("."))
    assert rec.requests[0].url.raw_path == b"/v0.1/customers/%2E"
