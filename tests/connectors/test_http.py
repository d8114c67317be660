"""The HTTP client factory, path escaping and the client settings."""

from __future__ import annotations

import asyncio
import gzip
import math
from urllib.parse import urlencode

import httpx
import orjson
import pytest
from aiohttp import web
from httpx_aiohttp import AiohttpTransport
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.config import ClientConfig
from connectors.http import HttpSession, default_transport, path_segment, url_builder


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


BASES = ["http://127.0.0.1:8765", "https://x.example/base/", "https://x.example:8443/a/b"]


@settings(max_examples=300)
@given(
    st.sampled_from(BASES),
    st.text(max_size=30).map(lambda text: "/" + text),
    st.none() | st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
)
def test_the_url_builder_gives_what_httpx_parses(
    base: str, path: str, params: dict[str, str] | None
) -> None:
    query = urlencode(params) if params else None
    build = url_builder(httpx.URL(base))
    text = str(httpx.URL(base)).rstrip("/") + path + (f"?{query}" if query else "")
    try:
        expected = httpx.URL(text)
    except httpx.InvalidURL:
        with pytest.raises(httpx.InvalidURL):
            build(path, query)
        return
    built = build(path, query)
    assert built == expected
    assert str(built) == str(expected)
    assert built.raw_path == expected.raw_path and built.host == expected.host


def test_the_url_builder_takes_its_shortcut_on_this_httpx() -> None:
    # If an httpx upgrade moves the internals it reads, the builder falls back to parsing
    # (correct, ~10 µs slower a call): this says so instead of slowing down silently.
    assert url_builder(httpx.URL(BASES[1])).__name__ == "build"


def test_the_aiohttp_transport_reads_and_decodes_the_body() -> None:
    body = orjson.dumps({"id": "c-1", "name": "Zoë"})

    async def handler(request: web.Request) -> web.Response:
        assert request.headers["x-request-id"] == "rid-2"
        return web.Response(
            body=gzip.compress(body),
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )

    async def scenario() -> httpx.Response:
        app = web.Application()
        app.router.add_get("/v2/customer/c-1", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        session = HttpSession(f"http://127.0.0.1:{port}", config=ClientConfig(), headers={})
        try:
            request = session.build_request("GET", "/v2/customer/c-1", request_id="rid-2")
            return await session.send(request)
        finally:
            await session.aclose()
            await runner.cleanup()

    response = asyncio.run(scenario())
    assert response.status_code == 200
    assert response.json() == {"id": "c-1", "name": "Zoë"}
