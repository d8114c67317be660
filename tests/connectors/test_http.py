"""The HTTP client factory, path escaping and the client settings."""

from __future__ import annotations

import asyncio
import math

import httpx
import pytest
from httpx_aiohttp import AiohttpTransport

from connectors.config import ClientConfig
from connectors.http import HttpSession, default_transport, path_segment


def test_session_sets_timeouts_headers_and_request_id() -> None:
    cfg = ClientConfig(timeout_s=7, connect_timeout_s=2, user_agent="ua/1")
    mock = httpx.MockTransport(lambda r: httpx.Response(200, content=b"{}"))
    session = HttpSession(
        "https://x.example/base/", config=cfg, headers={"authorization": "a"}, transport=mock
    )
    request = session.build_request(
        "POST",
        "/v2/customer",
        params={"search": 'a=="b c"', "page_size": 5},
        content=b"{}",
        request_id="rid-1",
    )
    assert str(request.url) == (
        "https://x.example/base/v2/customer?search=a%3D%3D%22b+c%22&page_size=5"
    )
    assert request.headers["user-agent"] == "ua/1"
    assert request.headers["accept"] == "application/json"
    assert request.headers["authorization"] == "a"
    assert request.headers["x-request-id"] == "rid-1"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["content-length"] == "2"
    assert request.extensions["timeout"] == httpx.Timeout(7, connect=2).as_dict()
    response = asyncio.run(session.send(request))
    assert response.status_code == 200 and response.content == b"{}"
    asyncio.run(session.aclose())


def test_default_transport_is_aiohttp_unless_told_otherwise() -> None:
    assert isinstance(default_transport(ClientConfig()), AiohttpTransport)
    transport = default_transport(ClientConfig(http_backend="httpx"))
    assert isinstance(transport, httpx.AsyncHTTPTransport)


def test_injected_transport_wins() -> None:
    mock = httpx.MockTransport(lambda r: httpx.Response(200))
    session = HttpSession("http://h", config=ClientConfig(), headers={}, transport=mock)
    assert session.transport is mock
    assert repr(session) == "HttpSession(base_url='http://h')"


@pytest.mark.parametrize(
    ("value", "segment"),
    [
        ("abc", "abc"),
        ("a/b", "a%2Fb"),
        ("a b", "a%20b"),
        ("50%", "50%25"),
        ("?#", "%3F%23"),
        (".", "%2E"),
        ("..", "%2E%2E"),
        ("...", "..."),
        ("é", "%C3%A9"),
    ],
)
def test_path_segment(value: str, segment: str) -> None:
    assert path_segment(value) == segment
    url = httpx.URL("http://h/v0.1/customers/" + segment)
    assert url.raw_path == f"/v0.1/customers/{segment}".encode()


def test_empty_id_is_refused() -> None:
    with pytest.raises(ValueError):
        path_segment("")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate": 0},
        {"rate": -1},
        {"burst": 0},
        {"max_in_flight": 0},
        {"max_attempts": 0},
        {"fetch_batch_size": 0},
        {"adaptive_decrease": 1.0},
        {"adaptive_start_rate": math.inf},
        {"http_backend": "requests"},
    ],
)
def test_config_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ClientConfig(**kwargs)  # type: ignore[arg-type]


def test_config_accepts_unlimited_and_adaptive() -> None:
    assert ClientConfig(rate=math.inf).rate == math.inf
    assert ClientConfig(rate=None).rate is None
