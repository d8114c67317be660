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
    unknown = UnknownOutcome("timeout", provider="verifone", operation="create")
    assert not isinstance(unknown, TransientError)
    assert not is_retryable(unknown)


def test_not_supported_is_a_refusal_of_this_record_not_a_stop() -> None:
    error = NotSupported("no search", provider="sumup", operation="find")
    assert isinstance(error, RecordRejected) and not isinstance(error, FatalError)
