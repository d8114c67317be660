"""The error model: four groups by the caller's next action, and operations by one name."""

from __future__ import annotations

import pytest

from connectors.errors import (
    AuthError,
    ConfigError,
    FatalError,
    NotSupported,
    ProviderError,
    RecordRejected,
    TransientError,
    UnknownOutcome,
)
from connectors.gate import CallHalted
from connectors.operation import Operation
from connectors.retry import is_retryable

GROUPS = (TransientError, UnknownOutcome, RecordRejected, FatalError)


@pytest.mark.parametrize(
    ("cls", "group"),
    [
        (TransientError, TransientError),
        (UnknownOutcome, UnknownOutcome),
        (RecordRejected, RecordRejected),
        (NotSupported, RecordRejected),
        (FatalError, FatalError),
        (AuthError, FatalError),
        (ConfigError, FatalError),
        (CallHalted, FatalError),
    ],
)
def test_every_error_is_in_exactly_one_group(cls: type[ProviderError], group: type) -> None:
    assert [g for g in GROUPS if issubclass(cls, g)] == [group]


def test_an_unknown_outcome_is_no_transient_error_and_never_retried() -> None:
    # A retry loop catching TransientError must not take it: re-sending could duplicate.
    unknown = UnknownOutcome("timeout", provider="verifone", operation=Operation.CREATE)
    assert not isinstance(unknown, TransientError)
    assert not is_retryable(unknown)


def test_not_supported_is_a_refusal_of_this_record_not_a_stop() -> None:
    error = NotSupported("no search", provider="sumup", operation=Operation.FIND)
    assert isinstance(error, RecordRejected) and not isinstance(error, FatalError)


def test_errors_show_the_operation_by_its_stored_value() -> None:
    error = RecordRejected("bad", provider="verifone", operation=Operation.FIND_CREATED, status=400)
    assert str(error) == "verifone reconcile: HTTP 400: bad"
    assert "operation='reconcile'" in repr(error)


def test_operation_values_are_the_strings_the_call_log_already_holds() -> None:
    # calls.operation in existing DuckDB files holds these: a value must never change.
    assert {op.value for op in Operation} == {
        "create",
        "get",
        "get_many",
        "update",
        "delete",
        "find",
        "search",
        "reconcile",
        "list_instruments",
        "deactivate_instrument",
        "refresh_token",
        "configure",
        "any",
    }
    assert Operation.FIND_CREATED == "reconcile"
    assert f"{Operation.GET_MANY}" == "get_many"
