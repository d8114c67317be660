"""Both clients answer the whole protocol; what differs is in their capabilities."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from connectors.errors import NotSupported
from connectors.operation import Operation
from connectors.providers.sumup.client import SumUpClient
from connectors.providers.verifone.client import VerifoneClient
from connectors.secret import Secret
from tests.connectors.fakes import Calls, Recorder, json_response

CUSTOMER = {"customer_id": "c-1", "personal_details": {"first_name": "Ann"}}


def _sumup(rec: Recorder) -> SumUpClient:
    return SumUpClient("https://su.example", api_key=Secret("k"), transport=rec.transport)


def test_only_verifone_creates_need_a_look_up() -> None:
    verifone = VerifoneClient("https://vf.example", entity_id="e", token=Secret("t"))
    sumup = SumUpClient("https://su.example", api_key=Secret("k"))
    assert verifone.capabilities.look_up_creates and not sumup.capabilities.look_up_creates
    asyncio.run(verifone.aclose())
    asyncio.run(sumup.aclose())


def test_sumup_answers_the_look_ups_without_a_call() -> None:
    rec = Recorder(lambda r: json_response(500, None))

    async def main() -> None:
        async with _sumup(rec) as client:
            assert await client.find_created(CUSTOMER, owned=lambda ids: ids) is None
            with pytest.raises(NotSupported) as caught:
                await client.equal_matches(CUSTOMER)
            assert caught.value.operation is Operation.FIND_CREATED
            assert client.superseded(CUSTOMER) is None

    asyncio.run(main())
    assert rec.requests == []


def test_sumup_create_takes_the_owned_hook_and_needs_no_look_up() -> None:
    rec = Recorder(lambda r: json_response(201, CUSTOMER))

    async def main() -> str:
        async with _sumup(rec) as client:
            made = await client.create(CUSTOMER, owned=lambda ids: set(ids))
            return made.outcome

    assert asyncio.run(main()) == "created"
    assert [r.method for r in rec.requests] == ["POST"]


def test_verifone_names_a_create_sent_to_another_entity() -> None:
    client = VerifoneClient("https://vf.example", entity_id="ent-2", token=Secret("t"))
    assert client.superseded({"entity_id": "ent-2", "company_name": "A"}) is None
    assert client.superseded({"company_name": "A"}) is None  # filled in with the client's
    reason = client.superseded({"entity_id": "ent-1", "company_name": "A"})
    assert reason == (
        "superseded: sent to entity 'ent-1' with an unknown outcome; the entity id is now"
        " 'ent-2', where it is planned again (check 'ent-1' for a stray customer)"
    )
    asyncio.run(client.aclose())


def test_call_records_carry_operations_by_enum_and_stored_value() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return json_response(503, None)
        return json_response(200, [{"id": "u1", "entity_id": "e", "company_name": "A"}])

    calls = Calls()

    async def main() -> str:
        async with VerifoneClient(
            "https://vf.example",
            entity_id="e",
            token=Secret("t"),
            transport=httpx.MockTransport(handler),
            on_call=calls,
        ) as client:
            made = await client.create({"company_name": "A"})
            return made.outcome

    assert asyncio.run(main()) == "adopted"
    assert [c.operation for c in calls] == [Operation.CREATE, Operation.FIND_CREATED]
    assert all(type(c.operation) is Operation for c in calls)
    assert [c.operation.value for c in calls] == ["create", "reconcile"]
