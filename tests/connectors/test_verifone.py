"""VerifoneClient on httpx.MockTransport: every operation, retries and create reconciliation."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from connectors.errors import (
    AuthError,
    ConfigError,
    NotSupported,
    RecordRejected,
    TransientError,
    UnknownOutcome,
)
from connectors.http import call_ref
from connectors.protocol import CustomerConnector
from connectors.providers.verifone.client import VerifoneClient, matches_sent, scalar_fields
from connectors.secret import Secret
from tests.connectors.fakes import Calls, Recorder, VirtualTime, body_of, json_response

BASE = "https://vf.example/oidc/customer-service"
ENTITY = "ent-1"
PAYLOAD = {
    "entity_id": ENTITY,
    "email_address": "ann+1@example.com",
    "billing": {"first_name": "Ann", "last_name": "O'Neil", "country_code": "GB"},
}


def _record(rid: str, **over: Any) -> dict[str, Any]:
    rec = {
        "id": rid,
        **PAYLOAD,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }
    rec.update(over)
    return rec


def _search(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(str(request.url)).query).items()}


def _run(
    handler: Callable[[httpx.Request], httpx.Response],
    action: Callable[[VerifoneClient], Coroutine[Any, Any, Any]],
    **config: Any,
) -> tuple[Any, Recorder, Calls, VirtualTime]:
    vt = VirtualTime()
    rec = Recorder(handler)
    calls = Calls()

    async def main() -> Any:
        async with VerifoneClient(
            BASE,
            entity_id=ENTITY,
            token=Secret("tok-123"),
            config=vt.config(**config),
            transport=rec.transport,
            on_call=calls,
        ) as client:
            return await action(client)

    try:
        result: Any = asyncio.run(vt.run(main()))
    except Exception as exc:  # the test inspects what was raised
        result = exc
    return result, rec, calls, vt


def _posts(rec: Recorder) -> list[httpx.Request]:
    return [r for r in rec.requests if r.method == "POST"]


def _gets(rec: Recorder) -> list[httpx.Request]:
    return [r for r in rec.requests if r.method == "GET"]


def test_satisfies_the_protocol() -> None:
    client = VerifoneClient(BASE, entity_id=ENTITY, token=Secret("t"))
    assert isinstance(client, CustomerConnector)
    caps = client.capabilities
    assert (caps.delete, caps.list, caps.instruments, caps.client_ids) == (True, True, False, False)
    asyncio.run(client.aclose())


def test_create_posts_the_request_with_headers() -> None:
    result, rec, calls, _ = _run(
        lambda r: json_response(200, _record("u1")), lambda c: c.create(PAYLOAD)
    )
    assert (result.outcome, result.remote_id) == ("created", "u1")
    (req,) = rec.requests
    assert req.url == BASE + "/v2/customer"
    assert req.headers["authorization"] == "Bearer tok-123"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["user-agent"].startswith("custsync/")
    assert len(req.headers["x-request-id"]) == 32
    assert body_of(req) == PAYLOAD
    (call,) = calls
    assert (call.operation, call.method, call.path_template, call.status, call.attempt) == (
        "create",
        "POST",
        "/v2/customer",
        200,
        1,
    )
    assert call.request_id == req.headers["x-request-id"]


def test_basic_auth() -> None:
    rec = Recorder(lambda r: json_response(200, _record("u1")))

    async def main() -> None:
        async with VerifoneClient(
            BASE,
            entity_id=ENTITY,
            user="uid-7",
            api_key=Secret("key-9"),
            transport=rec.transport,
        ) as client:
            await client.get("u1")

    asyncio.run(main())
    expected = "Basic " + base64.b64encode(b"uid-7:key-9").decode()
    assert rec.requests[0].headers["authorization"] == expected


def test_missing_credentials_or_entity_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        VerifoneClient(BASE, entity_id=ENTITY)
    with pytest.raises(ConfigError):
        VerifoneClient(BASE, entity_id=ENTITY, user="u")
    with pytest.raises(ConfigError):
        VerifoneClient(BASE, entity_id="", token=Secret("t"))
    with pytest.raises(TypeError):
        VerifoneClient(BASE, entity_id=ENTITY, token="plain")  # type: ignore[arg-type]


def test_create_fills_entity_and_refuses_another_one() -> None:
    payload = {k: v for k, v in PAYLOAD.items() if k != "entity_id"}
    result, rec, _, _ = _run(
        lambda r: json_response(200, _record("u1")), lambda c: c.create(payload)
    )
    assert body_of(rec.requests[0])["entity_id"] == ENTITY
    result, rec, _, _ = _run(
        lambda r: json_response(200, _record("u1")),
        lambda c: c.create({**PAYLOAD, "entity_id": "other"}),
    )
    assert isinstance(result, ConfigError) and rec.requests == []


def test_create_unknown_outcome_then_one_match_is_adopted_without_reposting() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return json_response(500, {"code": 500, "message": "boom"})
        return json_response(200, [_record("u1")])

    result, rec, calls, _ = _run(handler, lambda c: c.create(PAYLOAD))
    assert (result.outcome, result.remote_id) == ("adopted", "u1")
    assert len(_posts(rec)) == 1
    search = _search(_gets(rec)[0])["search"]
    # every scalar that was sent, entity-scoped
    for clause in (
        "entity_id==ent-1",
        'email_address=="ann+1@example.com"',
        "billing.first_name==Ann",
        'billing.last_name=="O\'Neil"',
        "billing.country_code==GB",
    ):
        assert clause in search
    assert [c.operation for c in calls] == ["create", "reconcile"]


def test_create_reset_and_no_match_creates_again() -> None:
    posts = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal posts
        if request.method == "POST":
            posts += 1
            if posts == 1:
                raise httpx.RemoteProtocolError("Server disconnected", request=request)
            return json_response(200, _record("u2"))
        return json_response(200, [])

    result, rec, calls, vt = _run(handler, lambda c: c.create(PAYLOAD))
    assert (result.outcome, result.remote_id) == ("created", "u2")
    assert [r.method for r in rec.requests] == ["POST", "GET", "POST"]
    assert calls[0].status is None and calls[0].error_code == "RemoteProtocolError"
    assert 1.0 not in vt.sleeps  # no settle delay after a reset: the server is done


def test_create_timeout_waits_then_reports_several_matches_as_ambiguous() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            raise httpx.ReadTimeout("timed out", request=request)
        return json_response(200, [_record("u9"), _record("u3")])

    result, rec, _, vt = _run(handler, lambda c: c.create(PAYLOAD), settle_delay_s=1.0)
    assert result.outcome == "ambiguous"
    assert result.remote_id is None and result.candidates == ("u3", "u9")
    assert len(_posts(rec)) == 1
    assert 1.0 in vt.sleeps


def test_reconcile_compares_field_by_field() -> None:
    # The server's search may match loosely (wildcards, case): only exact copies count.
    near = _record("u4", email_address="ANN+1@example.com")
    other = _record("u5", billing={**PAYLOAD["billing"], "last_name": "ONeil"})

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return json_response(502, None)
        if _search(request).get("page_number") == "1":
            return json_response(200, [near, other, _record("u6")])
        return json_response(200, [])

    result, _rec, _, _ = _run(handler, lambda c: c.create(PAYLOAD))
    assert (result.outcome, result.remote_id) == ("adopted", "u6")


def test_create_429_is_retried_without_reconciling() -> None:
    answers = iter(
        [
            json_response(429, {"code": "429"}, **{"retry-after": "2"}),
            json_response(200, _record("u1")),
        ]
    )
    result, rec, calls, vt = _run(lambda r: next(answers), lambda c: c.create(PAYLOAD))
    assert result.outcome == "created"
    assert [r.method for r in rec.requests] == ["POST", "POST"]
    assert [c.attempt for c in calls] == [1, 2]
    assert 2.0 in vt.sleeps


def test_create_rejected_is_not_retried() -> None:
    result, rec, _, _ = _run(
        lambda r: json_response(400, {"code": 400, "message": "bad email"}),
        lambda c: c.create(PAYLOAD),
    )
    assert isinstance(result, RecordRejected) and result.status == 400
    assert len(rec.requests) == 1


def test_create_when_reconciliation_fails_is_unknown_outcome() -> None:
    result, rec, _, _ = _run(
        lambda r: json_response(500, {"code": 500, "message": "down"}),
        lambda c: c.create(PAYLOAD),
        max_attempts=3,
    )
    assert isinstance(result, UnknownOutcome)
    assert len(_posts(rec)) == 1  # never re-posted while the outcome was unknown
    assert len(_gets(rec)) == 3


def test_create_gives_up_when_every_try_fails_without_effect() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return json_response(503, None)
        return json_response(200, [])

    result, rec, _, _ = _run(handler, lambda c: c.create(PAYLOAD), max_attempts=3)
    assert type(result) is TransientError
    assert len(_posts(rec)) == 3 and len(_gets(rec)) == 3


def test_fetch_many_uses_bulk_search_in_chunks() -> None:
    ids = [f"00000000-0000-0000-0000-{i:012d}" for i in range(250)]
    present = set(ids[::2])

    def handler(request: httpx.Request) -> httpx.Response:
        q = _search(request)
        inside = q["search"].split("id=in=(")[1].rstrip(")").split(",")
        assert q["page_size"] == str(len(inside))
        return json_response(200, [_record(i) for i in inside if i in present])

    result, rec, calls, _ = _run(handler, lambda c: c.fetch_many(ids + ids[:5]))
    assert set(result) == present
    assert len(rec.requests) == 3  # 100 + 100 + 50 ids
    for req in rec.requests:
        assert _search(req)["search"].startswith("entity_id==ent-1;id=in=(")
    assert {c.operation for c in calls} == {"get_many"}


def test_fetch_many_keeps_urls_under_the_bound() -> None:
    ids = [f"00000000-0000-0000-0000-{i:012d}" for i in range(300)]

    def handler(request: httpx.Request) -> httpx.Response:
        return json_response(200, [])

    _, rec, _, _ = _run(
        handler, lambda c: c.fetch_many(ids), max_url_bytes=2000, fetch_batch_size=1000
    )
    assert len(rec.requests) > 6
    assert all(len(str(r.url)) <= 2000 for r in rec.requests)
    seen = [i for r in rec.requests for i in _search(r)["search"].split("(")[1][:-1].split(",")]
    assert sorted(seen) == ids


def test_fetch_many_pages_while_pages_are_full_and_ids_missing() -> None:
    ids = ["a", "b", "c"]

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(_search(request)["page_number"])
        # a server that also returns foreign records fills pages: keep paging
        pages = {1: [_record("x"), _record("a"), _record("y")], 2: [_record("c")]}
        return json_response(200, pages.get(page, []))

    result, rec, _, _ = _run(handler, lambda c: c.fetch_many(ids))
    assert set(result) == {"a", "c"} and len(rec.requests) == 2


def test_find_pages_until_a_short_page() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        q = _search(request)
        page, size = int(q["page_number"]), int(q["page_size"])
        start = (page - 1) * size
        rows = [_record(f"r{i}") for i in range(start, min(start + size, 7))]
        return json_response(200, rows)

    result, rec, _, _ = _run(
        handler,
        lambda c: c.find({"email_address": "a b@x.com", "billing.last_name": "Smith"}),
        page_size=3,
    )
    assert [r["id"] for r in result] == [f"r{i}" for i in range(7)]
    assert len(rec.requests) == 3
    q = _search(rec.requests[0])
    assert q["search"] == 'entity_id==ent-1;email_address=="a b@x.com";billing.last_name==Smith'
    assert (q["order_by"], q["order_criteria"]) == ("ASC", "created_at")


def test_search_with_a_raw_filter_is_grouped_under_the_entity() -> None:
    _, rec, _, _ = _run(
        lambda r: json_response(200, []),
        lambda c: c.search("email_address==a@x.com,email_address==b@x.com"),
    )
    assert _search(rec.requests[0])["search"] == (
        "entity_id==ent-1;(email_address==a@x.com,email_address==b@x.com)"
    )


def test_update_posts_the_full_record_without_read_only_fields_and_retries_5xx() -> None:
    answers = iter([json_response(503, None), json_response(200, _record("u1"))])
    fetched = _record("u1", email_address="new@x.com")
    result, rec, calls, _ = _run(lambda r: next(answers), lambda c: c.update("u1", fetched))
    assert result["id"] == "u1"
    assert [str(r.url) for r in rec.requests] == [BASE + "/v2/customer/u1"] * 2
    sent = body_of(rec.requests[1])
    assert "id" not in sent and "created_at" not in sent and sent["email_address"] == "new@x.com"
    assert [(c.path_template, c.status) for c in calls] == [
        ("/v2/customer/{customerId}", 503),
        ("/v2/customer/{customerId}", 200),
    ]


def test_update_of_a_missing_record_is_rejected() -> None:
    result, _, _, _ = _run(
        lambda r: json_response(404, {"code": 404, "message": "not found"}),
        lambda c: c.update("u1", PAYLOAD),
    )
    assert isinstance(result, RecordRejected) and result.status == 404


@pytest.mark.parametrize(
    ("answers", "outcome"),
    [
        ([204], "deleted"),
        ([404], "already_gone"),
        (["reset", 404], "deleted"),  # our first delete went through; its answer was lost
        ([500, 204], "deleted"),
    ],
)
def test_delete(answers: list[Any], outcome: str) -> None:
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        status = queue.pop(0)
        if status == "reset":
            raise httpx.ReadError("connection reset", request=request)
        body = {"code": status, "message": "x"} if status != 204 else None
        return json_response(status, body)

    result, rec, _, _ = _run(handler, lambda c: c.close("u1"))
    assert result.outcome == outcome
    assert all(r.method == "DELETE" for r in rec.requests)


def test_auth_failure_is_fatal_and_not_retried() -> None:
    result, rec, _, _ = _run(
        lambda r: json_response(401, {"code": 401, "message": "expired"}), lambda c: c.get("u1")
    )
    assert isinstance(result, AuthError) and len(rec.requests) == 1


def test_no_instruments_on_verifone() -> None:
    result, rec, _, _ = _run(
        lambda r: json_response(204), lambda c: c.deactivate_instrument("u1", "t")
    )
    assert isinstance(result, NotSupported) and rec.requests == []


def test_ids_are_escaped_in_paths() -> None:
    _, rec, _, _ = _run(lambda r: json_response(200, _record("x")), lambda c: c.get("a/b?c"))
    assert rec.requests[0].url.raw_path == b"/oidc/customer-service/v2/customer/a%2Fb%3Fc"
    _, rec, _, _ = _run(lambda r: json_response(200, _record("x")), lambda c: c.get(".."))
    assert rec.requests[0].url.raw_path == b"/oidc/customer-service/v2/customer/%2E%2E"


def test_call_records_carry_the_call_ref_and_every_attempt() -> None:
    answers = iter([json_response(502, None), json_response(200, _record("u1"))])

    async def action(client: VerifoneClient) -> Any:
        token = call_ref.set("plan-42")
        try:
            return await client.get("u1")
        finally:
            call_ref.reset(token)

    _, _, calls, _ = _run(lambda r: next(answers), action)
    assert [(c.ref, c.attempt, c.status, c.target) for c in calls] == [
        ("plan-42", 1, 502, "verifone"),
        ("plan-42", 2, 200, "verifone"),
    ]
    assert all(c.latency_ms >= 0 and c.started_at.tzinfo is not None for c in calls)


def test_stats_count_retries_and_429() -> None:
    answers = iter(
        [
            json_response(429, {"code": "429"}, **{"retry-after": "1"}),
            json_response(500, None),
            json_response(200, _record("u1")),
        ]
    )
    result, _, _, _ = _run(lambda r: next(answers), lambda c: _get_then_stats(c))
    stats = result
    assert (stats.http_429, stats.retries, stats.pauses) == (1, 2, 1)


async def _get_then_stats(client: VerifoneClient) -> Any:
    await client.get("u1")
    return client.stats()


def test_scalar_fields_and_matching() -> None:
    flat = scalar_fields({"a": "1", "b": {"c": "2", "d": None}, "e": True, "f": 3})
    assert flat == {"a": "1", "b.c": "2", "e": "true", "f": "3"}
    assert matches_sent({"a": "1", "b": {"c": "2"}, "x": "y"}, {"a": "1", "b.c": "2"})
    assert not matches_sent({"a": "1"}, {"a": "1", "b.c": "2"})
