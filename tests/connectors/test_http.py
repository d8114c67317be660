"""The HTTP client factory, path escaping and the client settings."""

from __future__ import annotations

import asyncio
import math

import httpx
import pytest
from httpx_aiohttp import AiohttpTransport

from connectors.config import ClientConfig
from connectors.http import default_transport, make_http_client, path_segment


def test_factory_sets_timeouts_headers_and_no_redirects() -> None:
    cfg = ClientConfig(timeout_s=7, connect_timeout_s=2, user_agent="ua/1")
    client = make_http_client("https://x.example/base", config=cfg, headers={"authorization": "a"})
    try:
        assert client.timeout == httpx.Timeout(7, connect=2)
        assert client.headers["user-agent"] == "ua/1"
        assert client.headers["accept"] == "application/json"
        assert client.follow_redirects is False
        assert client.base_url == httpx.URL("https://x.example/base/")
        assert client.trust_env is False  # no proxies or .netrc credentials from the environment
    finally:
        asyncio.run(client.aclose())


def test_default_transport_is_aiohttp_unless_told_otherwise() -> None:
    assert isinstance(default_transport(ClientConfig()), AiohttpTransport)
    transport = default_transport(ClientConfig(http_backend="httpx"))
    assert isinstance(transport, httpx.AsyncHTTPTransport)


def test_injected_transport_wins() -> None:
    mock = httpx.MockTransport(lambda r: httpx.Response(200))
    client = make_http_client("http://h", config=ClientConfig(), headers={}, transport=mock)
    assert client._transport is mock
    asyncio.run(client.aclose())


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
