"""A batch that stops: calls in flight are answered and logged, rows are settled by evidence."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from connectors.config import ClientConfig
from connectors.errors import AuthError, FatalError
from connectors.gate import CallHalted, SendGate, send_gate
from connectors.http import CallRecord
from connectors.providers.verifone.client import VerifoneClient
from connectors.secret import Secret
from pipelines.batch import BatchResult, PlanRow, gather_or_halt
from pipelines.executor import BatchExecutor
from pipelines.halted import NOT_SENT, settle_unfinished
from tests.connectors.fakes import Calls


def _row(ext: str, action: str = "create") -> PlanRow:
    payload = {"entity_id": "e", "email_address": f"{ext}@x.io", "company_name": "Acme"}
    return PlanRow(
        plan_id=f"p-{ext}",
        external_id=ext,
        action=action,
        remote_id=None,
        payload=orjson.dumps(payload).decode(),
        content_hash="h",
    )


def _answer(request: httpx.Request, status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, json=body, request=request)


def test_a_refusal_lets_the_call_in_flight_finish_and_sends_nothing_more() -> None:
    """a: 401 at once; b: in flight, answered 200 later; c: waits for a slot, never sent."""
    seen: list[str] = []
    calls = Calls()

    async def handler(request: httpx.Request) -> httpx.Response:
        who = orjson.loads(request.content)["email_address"].split("@")[0]
        seen.append(who)
        if who == "a":
            await asyncio.sleep(0.01)  # b is sent meanwhile
            return _answer(request, 401, {"message": "Unauthorized"})
        await asyncio.sleep(0.2)  # still in flight when a's refusal stops the batch
        return _answer(request, 200, {"id": f"id-{who}", **orjson.loads(request.content)})

    async def main() -> tuple[BatchResult, list[PlanRow], BatchExecutor]:
        client = VerifoneClient(
            "https://vf.example",
            entity_id="e",
            token=Secret("t"),
            config=ClientConfig(rate=float("inf"), max_in_flight=2, max_attempts=1),
            transport=httpx.MockTransport(handler),
            on_call=calls,
        )
        async with client:
            executor = BatchExecutor(client, run_id="run")
            rows = [_row("a"), _row("b"), _row("c")]
            result = await executor.run(rows)
        return result, rows, executor

    result, rows, executor = asyncio.run(main())
    assert isinstance(result.fatal, AuthError)
    assert sorted(seen) == ["a", "b"], "nothing is sent once the provider refused us"
    assert sorted((c.ref, c.status) for c in calls) == [("p-a", 401), ("p-b", 200)]
    assert [o["external_id"] for o in result.outcomes] == ["b"]
    assert result.outcomes[0]["result"] == "succeeded", "the answer in flight was read"
    assert result.upserts[0]["remote_id"] == "id-b"

    left = settle_unfinished(rows, result, calls, executor, reason="refused")
    assert left == 0
    by_key = {o["external_id"]: o for o in result.outcomes}
    assert (by_key["a"]["result"], by_key["a"]["http_status"]) == ("failed", 401)
    assert by_key["a"]["error_class"] == "AuthError" and by_key["a"]["plan_id"] == "p-a"
    assert (by_key["c"]["result"], by_key["c"]["error_code"]) == ("skipped", NOT_SENT)
    assert by_key["c"]["plan_id"] == "p-c", "closes c's journal intent"


def _call(ref: str, status: int | None) -> CallRecord:
    return CallRecord(
        target="verifone",
        operation="create",
        method="POST",
        path_template="/v2/customer",
        status=status,
        error_code=None,
        attempt=1,
        latency_ms=1.0,
        started_at=datetime.now(UTC),
        request_id="r",
        ref=ref,
    )


class _Fake:
    target = "verifone"


@pytest.mark.parametrize(
    ("statuses", "refusal", "expected"),
    [
        ([], None, ("skipped", NOT_SENT)),  # never started
        ([], "halted", ("skipped", NOT_SENT)),  # stopped at the gate
        ([403], "auth", ("failed", "FORBIDDEN")),  # refused: certainly not made
        ([None], None, None),  # no answer: may have been made, stays pending
        ([503, 401], "auth", None),  # a 5xx first: may have been made
        ([200], "halted", ("skipped", NOT_SENT)),  # e.g. a look-up answered, the write not sent
    ],
)
def test_an_unfinished_row_is_closed_unless_its_calls_leave_doubt(
    statuses: list[int | None], refusal: str | None, expected: tuple[str, str] | None
) -> None:
    row = _row("a")
    result = BatchResult()
    errors: dict[str, FatalError] = {
        "auth": AuthError(
            "no", provider="verifone", operation="create", status=403, code="FORBIDDEN"
        ),
        "halted": CallHalted("not sent", provider="verifone", operation="create"),
    }
    if refusal is not None:
        result.refusals[row.plan_id] = errors[refusal]
    executor = BatchExecutor(_Fake(), run_id="run")  # type: ignore[arg-type]
    calls = [_call(row.plan_id, s) for s in statuses] + [_call("p-other", None)]
    left = settle_unfinished([row], result, calls, executor, reason="stop")
    if expected is None:
        assert left == 1 and result.outcomes == []
    else:
        (outcome,) = result.outcomes
        assert left == 0 and (outcome["result"], outcome["error_code"]) == expected


def test_a_finished_row_is_left_as_it_is() -> None:
    row = _row("a")
    result = BatchResult()
    executor = BatchExecutor(_Fake(), run_id="run")  # type: ignore[arg-type]
    executor.record(result, row, "succeeded")
    assert settle_unfinished([row], result, [], executor, reason="stop") == 0
    assert len(result.outcomes) == 1


def test_a_halt_before_the_start_sends_nothing_and_closes_the_gate() -> None:
    stop = FatalError("down", provider="verifone", operation="any")
    started: list[int] = []

    async def work() -> None:
        started.append(1)

    async def main() -> tuple[FatalError | None, SendGate]:
        gate = SendGate()
        send_gate.set(gate)
        return await gather_or_halt([work(), work()], lambda: stop), gate

    error, gate = asyncio.run(main())
    assert error is stop and started == [] and gate.closed


def test_a_bug_in_one_task_is_raised_and_the_others_cancelled() -> None:
    cancelled: list[int] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(1)
            raise

    async def bug() -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        asyncio.run(gather_or_halt([slow(), bug()], lambda: None))
    assert cancelled == [1]
