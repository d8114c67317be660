"""Credentials never show in a repr, a log line, an exception message, a call record or a URL."""

from __future__ import annotations

import asyncio
import base64
import logging
import pickle
from typing import Any

import httpx
import pytest

from connectors.errors import ConfigError, ProviderError
from connectors.http import check_base_url
from connectors.providers.sumup.client import SumUpClient
from connectors.providers.verifone.client import VerifoneClient
from connectors.secret import Secret
from tests.connectors.fakes import Calls, Recorder, VirtualTime, json_response

TOKEN = "tok-SECRET-4f9a"
API_KEY = "key-SECRET-77c1"
SUMUP_KEY = "sup_sk_SECRET_0b3e"
BASIC = base64.b64encode(f"uid:{API_KEY}".encode()).decode()
LEAKS = (TOKEN, API_KEY, SUMUP_KEY, BASIC)


def _echoing(request: httpx.Request) -> httpx.Response:
    # A hostile or broken server that echoes the Authorization header in every error.
    auth = request.headers["authorization"]
    if request.method == "GET":
        return json_response(401, {"code": 401, "message": f"bad credentials {auth}"})
    return json_response(
        403, {"error_code": "FORBIDDEN", "error_message": f"{auth} may not", "status_code": "403"}
    )


def _clients(transport: httpx.AsyncBaseTransport, vt: VirtualTime, calls: Calls) -> list[Any]:
    cfg = vt.config()
    return [
        VerifoneClient(
            "https://vf.example",
            entity_id="e",
            token=Secret(TOKEN),
            config=cfg,
            transport=transport,
            on_call=calls,
        ),
        VerifoneClient(
            "https://vf.example",
            entity_id="e",
            user="uid",
            api_key=Secret(API_KEY),
            config=cfg,
            transport=transport,
            on_call=calls,
        ),
        SumUpClient(
            "https://su.example",
            api_key=Secret(SUMUP_KEY),
            config=cfg,
            transport=transport,
            on_call=calls,
        ),
    ]


def _assert_clean(text: str) -> None:
    for leak in LEAKS:
        assert leak not in text


def test_nothing_leaks(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    vt = VirtualTime()
    rec = Recorder(_echoing)
    calls = Calls()
    seen: list[str] = []

    async def main() -> None:
        for client in _clients(rec.transport, vt, calls):
            seen.extend([repr(client), str(client), repr(client._http), repr(client._http.headers)])
            for action in (client.fetch_many(["x"]), client.update("x", {"personal_details": {}})):
                try:
                    await action
                except ProviderError as exc:
                    seen.extend([str(exc), repr(exc), exc.message, str(exc.code)])
                    logging.getLogger("test").exception("failed: %s", exc)
            await client.aclose()

    asyncio.run(vt.run(main()))
    assert len(rec.requests) == 6
    assert any("**********" in s for s in seen)  # the echoed credential was scrubbed
    for text in seen:
        _assert_clean(text)
    for call in calls:
        _assert_clean(repr(call))
    for request in rec.requests:
        _assert_clean(str(request.url))
        _assert_clean(repr(request))
    _assert_clean(caplog.text)


def test_secrets_cannot_be_pickled_or_printed() -> None:
    secret = Secret(TOKEN)
    _assert_clean(f"{secret} {secret!r}")
    with pytest.raises(TypeError):
        pickle.dumps(secret)


@pytest.mark.parametrize(
    "url", ["https://user:pw@vf.example", "ftp://vf.example", "not a url", "https://"]
)
def test_base_urls_with_credentials_or_nonsense_are_refused(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_base_url(url)
    assert "pw" not in str(info.value)
    with pytest.raises(ConfigError):
        SumUpClient(url, api_key=Secret(SUMUP_KEY))
