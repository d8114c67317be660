"""The send gate in the caller: a closed gate sends nothing; a cancelled call is still logged."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from connectors.config import ClientConfig
from connectors.gate import CallHalted, SendGate, send_gate
from connectors.providers.verifone.client import VerifoneClient
from connectors.secret import Secret
from tests.connectors.fakes import Calls

PAYLOAD: dict[str, Any] = {"entity_id": "e", "email_address": "a@x.io", "company_name": "Acme"}


def _client(handler: Any, calls: Calls) -> VerifoneClient:
    return VerifoneClient(
        "https://vf.example",
        entity_id="e",
        token=Secret("t"),
        config=ClientConfig(rate=float("inf"), max_attempts=1),
        transport=httpx.MockTransport(handler),
        on_call=calls,
    )


def test_a_closed_gate_sends_nothing_and_logs_nothing() -> None:
    seen: list[httpx.Request] = []
    calls = Calls()

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "r1", **PAYLOAD})

    async def main() -> None:
        gate = SendGate()
        gate.close("refused")
        send_gate.set(gate)
        async with _client(handler, calls) as client:
            with pytest.raises(CallHalted, match="not sent: the run stopped \\(refused\\)"):
                await client.create(PAYLOAD)

    asyncio.run(main())
    assert seen == [] and calls == []


def test_a_call_cancelled_in_flight_is_logged_without_a_status() -> None:
    calls = Calls()
    arrived = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        arrived.set()
        await asyncio.sleep(30)  # the answer never comes in time
        return httpx.Response(200)

    async def main() -> int:
        gate = SendGate()
        send_gate.set(gate)
        async with _client(handler, calls) as client:
            task = asyncio.create_task(client.create(PAYLOAD))
            await arrived.wait()
            in_flight = gate.in_flight
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert gate.in_flight == 0
        return in_flight

    assert asyncio.run(main()) == 1
    (call,) = calls
    assert (call.operation, call.status, call.error_code) == ("create", None, "CancelledError")


def test_idle_waits_for_the_requests_in_flight() -> None:
    async def main() -> list[str]:
        gate = SendGate()
        order: list[str] = []

        async def request() -> None:
            gate.sent()
            await asyncio.sleep(0.01)
            order.append("answered")
            gate.done()

        task = asyncio.create_task(request())
        await asyncio.sleep(0)
        await gate.idle()
        order.append("idle")
        await task
        await gate.idle()  # nothing in flight: returns at once
        return order

    assert asyncio.run(main()) == ["answered", "idle"]
