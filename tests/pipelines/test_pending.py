"""Crash recovery settles pending creates with the live look-up's rules, twins as a group."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest

from connectors.config import ClientConfig
from connectors.providers.verifone.client import VerifoneClient
from connectors.secret import Secret
from pipelines.batch import BatchResult, PlanRow
from pipelines.executor import BatchExecutor
from pipelines.pending import settle_pending

PAYLOAD = {"entity_id": "ent-1", "company_name": "Twin Handel GmbH"}


def _record(rid: str, **extra: str) -> dict[str, Any]:
    return {"id": rid, **PAYLOAD, **extra, "created_at": "2026-12-01T00:00:00.000Z"}


def _pending(key: str) -> PlanRow:
    return PlanRow(
        plan_id=f"p-{key}",
        external_id=key,
        action="create",
        remote_id=None,
        payload=orjson.dumps(PAYLOAD).decode(),
        content_hash="h",
        content_key=7,
    )


def _settle(
    found: list[dict[str, Any]], keys: list[str], owners: dict[str, str] | None = None
) -> tuple[BatchResult, list[str], list[str]]:
    searches: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "GET", "recovery never creates"
        searches.append(request.url.params["search"])
        return httpx.Response(200, json=found)

    async def main() -> tuple[BatchResult, list[str]]:
        async with VerifoneClient(
            "http://vf.test",
            entity_id="ent-1",
            token=Secret("t"),
            config=ClientConfig(rate=float("inf")),
            transport=httpx.MockTransport(handler),
        ) as client:
            executor = BatchExecutor(
                client,
                run_id="run",
                owners=lambda ids: {i: o for i, o in (owners or {}).items() if i in ids},
            )
            result = BatchResult()
            unsettled, halted = await settle_pending(
                client, executor, [_pending(k) for k in keys], result, lambda: None
            )
            assert halted is None
            return result, unsettled

    result, unsettled = asyncio.run(main())
    return result, unsettled, searches


def _outcomes(result: BatchResult) -> dict[str, tuple[str, str | None]]:
    return {o["external_id"]: (o["result"], o["remote_id"]) for o in result.outcomes}


def test_pending_twins_take_the_equal_customers_in_the_order_they_were_sent() -> None:
    result, unsettled, searches = _settle([_record("first"), _record("second")], ["A-2", "A-1"])
    assert unsettled == [] and len(searches) == 1, "one look-up for the group"
    assert _outcomes(result) == {"A-1": ("adopted", "first"), "A-2": ("adopted", "second")}


def test_a_twin_whose_customer_is_not_there_was_never_sent() -> None:
    result, _, _ = _settle([_record("first")], ["A-1", "A-2"])
    assert _outcomes(result) == {"A-1": ("adopted", "first"), "A-2": ("skipped", None)}


@pytest.mark.parametrize("owner", ["A-0", "B"])
def test_owned_and_unequal_records_are_never_taken(owner: str) -> None:
    found = [_record("owned"), _record("richer", email_address="hq@acme.example.com")]
    result, _, _ = _settle(found, ["A-1"], owners={"owned": owner})
    assert _outcomes(result) == {"A-1": ("skipped", None)}
    assert result.upserts == []


def test_more_equal_customers_than_pending_twins_is_ambiguous() -> None:
    result, _, _ = _settle([_record("x"), _record("y"), _record("z")], ["A-1", "A-2"])
    assert {r for r, _ in _outcomes(result).values()} == {"ambiguous"}
    assert result.upserts == []
