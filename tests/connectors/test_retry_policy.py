"""RetryPolicy: the one place deciding what is retried, and the unknown-outcome strategy."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from tenacity import RetryCallState

from connectors.config import ClientConfig
from connectors.errors import (
    AuthError,
    ProviderError,
    RecordRejected,
    TransientError,
    UnknownOutcome,
)
from connectors.operation import Operation
from connectors.retry import RetryPolicy, settle

CREATE = Operation.CREATE


def _err(cls: type[ProviderError], status: int | None, code: str | None = None) -> ProviderError:
    return cls(
        "boom", provider="verifone", operation=CREATE, status=status, code=code, request_id="r1"
    )


@pytest.mark.parametrize(
    ("failure", "idempotent", "acted", "expected"),
    [
        # the provider may have acted on a call not safe to repeat: unknown, whatever the group
        (_err(TransientError, 503), False, True, UnknownOutcome),
        (_err(RecordRejected, 501), False, True, UnknownOutcome),
        (_err(TransientError, None), False, True, UnknownOutcome),
        # safe to repeat, or certainly not acted on (429, never sent): as classified
        (_err(TransientError, 503), True, True, TransientError),
        (_err(TransientError, 429), False, False, TransientError),
        (_err(TransientError, None), False, False, TransientError),
        (_err(RecordRejected, 400), False, False, RecordRejected),
        # a fatal error stops the run either way
        (_err(AuthError, None), False, True, AuthError),
    ],
)
def test_settle(failure: ProviderError, idempotent: bool, acted: bool, expected: type) -> None:
    settled = settle(failure, idempotent=idempotent, may_have_acted=acted)
    assert type(settled) is expected
    if expected is type(failure):
        assert settled is failure
    else:
        fields = ("message", "provider", "operation", "status", "code", "request_id")
        assert [getattr(settled, f) for f in fields] == [getattr(failure, f) for f in fields]


class Sleeps:
    def __init__(self) -> None:
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)


def _policy(sleeps: Sleeps, **over: Any) -> RetryPolicy:
    config = ClientConfig(
        **{"max_attempts": 3, "backoff_base_s": 1.0, "settle_delay_s": 5.0, **over},
        sleep=sleeps,
        clock=lambda: 0.0,
    )
    return RetryPolicy.of(config)


def test_of_takes_every_figure_from_the_client_config() -> None:
    sleeps = Sleeps()
    policy = _policy(sleeps, max_elapsed_s=9.0, backoff_max_s=4.0)
    assert (policy.max_attempts, policy.max_elapsed_s) == (3, 9.0)
    assert (policy.backoff_base_s, policy.backoff_max_s, policy.settle_delay_s) == (1.0, 4.0, 5.0)
    assert policy.sleep is sleeps


class Sender:
    """``send``: raises the given errors in turn, then answers ``"created"``."""

    def __init__(self, *failures: ProviderError) -> None:
        self.failures = list(failures)
        self.sent = 0

    async def __call__(self) -> str:
        self.sent += 1
        if self.failures:
            raise self.failures.pop(0)
        return "created"


def _strategy(*answers: str | ProviderError | None) -> tuple[Callable[..., Any], list[Any]]:
    seen: list[UnknownOutcome] = []
    queue = list(answers)

    async def look_up(unknown: UnknownOutcome) -> str | None:
        seen.append(unknown)
        answer = queue.pop(0)
        if isinstance(answer, ProviderError):
            raise answer
        return answer

    return look_up, seen


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        return asyncio.run(coro)
    except ProviderError as exc:
        return exc


def test_a_found_effect_is_the_result_and_nothing_is_sent_again() -> None:
    sleeps, send = Sleeps(), Sender(_err(UnknownOutcome, 500))
    look_up, seen = _strategy("adopted")
    assert _run(_policy(sleeps).run(send, on_unknown_outcome=look_up)) == "adopted"
    assert send.sent == 1 and len(seen) == 1 and sleeps.slept == []


def test_no_effect_found_means_it_is_sent_again_after_a_jittered_backoff() -> None:
    sleeps, send = Sleeps(), Sender(_err(UnknownOutcome, None, "RemoteProtocolError"))
    look_up, _ = _strategy(None)
    assert _run(_policy(sleeps).run(send, on_unknown_outcome=look_up)) == "created"
    assert send.sent == 2
    (backoff,) = sleeps.slept
    assert 0 <= backoff <= 1.0  # full jitter under backoff_base_s x 2**0


def test_a_timed_out_request_is_left_to_finish_before_the_look_up() -> None:
    sleeps, send = Sleeps(), Sender(_err(UnknownOutcome, None, "ReadTimeout"))
    look_up, _ = _strategy("adopted")
    assert _run(_policy(sleeps).run(send, on_unknown_outcome=look_up)) == "adopted"
    assert sleeps.slept == [5.0]


def test_it_gives_up_after_max_attempts_sends_without_effect() -> None:
    sleeps = Sleeps()
    send = Sender(*(_err(UnknownOutcome, 503) for _ in range(3)))
    look_up, seen = _strategy(None, None, None)
    policy = dataclasses.replace(_policy(sleeps), rng=random.Random(7))
    result = _run(policy.run(send, on_unknown_outcome=look_up))
    assert type(result) is TransientError
    assert result.message == "create failed 3 times without effect (none was created)"
    assert isinstance(result.__cause__, UnknownOutcome) and result.status == 503
    assert send.sent == 3 and len(seen) == 3 and len(sleeps.slept) == 2


def test_one_attempt_allowed_gives_up_after_the_first_send_without_effect() -> None:
    """The first round runs outside tenacity (issue 14): with one attempt allowed, a send
    without effect ends it at once, as tenacity's stop did."""
    sleeps, send = Sleeps(), Sender(_err(UnknownOutcome, 503))
    look_up, seen = _strategy(None)
    policy = dataclasses.replace(_policy(sleeps), max_attempts=1)
    result = _run(policy.run(send, on_unknown_outcome=look_up))
    assert type(result) is TransientError and isinstance(result.__cause__, UnknownOutcome)
    assert result.message == "create failed 1 times without effect (none was created)"
    assert send.sent == 1 and len(seen) == 1 and sleeps.slept == []


def test_a_look_up_that_cannot_tell_ends_it_without_sending_again() -> None:
    sleeps, send = Sleeps(), Sender(_err(UnknownOutcome, 500))
    still_unknown = _err(UnknownOutcome, 500)
    look_up, _ = _strategy(still_unknown)
    assert _run(_policy(sleeps).run(send, on_unknown_outcome=look_up)) is still_unknown
    assert send.sent == 1


@pytest.mark.parametrize("cls", [TransientError, RecordRejected, AuthError])
def test_other_failures_never_reach_the_strategy(cls: type[ProviderError]) -> None:
    failure = _err(cls, 429)
    send = Sender(failure)
    look_up, seen = _strategy()
    assert _run(_policy(Sleeps()).run(send, on_unknown_outcome=look_up)) is failure
    assert send.sent == 1 and seen == []


def test_call_retries_transient_failures_only_and_counts_each_retry() -> None:
    sleeps, retries = Sleeps(), []

    def on_retry(state: RetryCallState) -> None:
        retries.append(state.attempt_number)

    send = Sender(_err(TransientError, 503), _err(TransientError, 429))
    assert _run(_policy(sleeps).call(send, on_retry=on_retry)) == "created"
    assert send.sent == 3 and retries == [1, 2] and len(sleeps.slept) == 2
    for cls in (UnknownOutcome, RecordRejected, AuthError):
        failure = _err(cls, 500)
        send = Sender(failure)
        assert _run(_policy(sleeps).call(send, on_retry=on_retry)) is failure
        assert send.sent == 1
