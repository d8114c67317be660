"""The classifiers, against every status and error body the published documents define."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from connectors.errors import (
    AuthError,
    ConfigError,
    ProviderError,
    RecordRejected,
    TransientError,
)
from connectors.providers.sumup.classify import classify_sumup
from connectors.providers.verifone.classify import classify_verifone
from tests.connectors.fakes import json_response

VF_ERROR = {"code": 400, "details": {"field": "email_address"}, "message": "Invalid email"}
# Verifone's Order/Reporting APIs define this 429 body; the Customer API may reuse it.
VF_429 = {
    "code": "429",
    "title": "Too Many Requests",
    "type": "RATE_LIMIT_ERROR",
    "message": "Slow",
}
SU_400_EXT = {"error_code": "INVALID", "message": "Validation error", "param": "customer_id"}
SU_400_ALT = {"instance": "32a44c6c-85d3", "error_code": "INVALID", "error_message": "customer_id"}
SU_401 = {
    "detail": "Unauthorized.",
    "status": 401,
    "title": "Unauthorized",
    "trace_id": "3c77294349d3b5647ea2d990f0d8f017",
    "type": "https://developer.sumup.com/problem/unauthorized",
}
SU_403 = {"error_message": "request_not_allowed", "error_code": "FORBIDDEN", "status_code": "403"}
SU_404 = {"error_code": "NOT_FOUND", "message": "Resource not found"}
SU_409 = {"message": "Customer already exists", "error_code": "CUSTOMER_ALREADY_EXISTS"}
SU_400_DEACT = {"error_code": "INVALID_REQUEST", "message": "bad request"}
SU_429 = {"type": "https://developer.sumup.com/problem/too-many-requests", "title": "Too Many"}


def _vf(status: int, body: Any, operation: str, **headers: str) -> ProviderError | None:
    return classify_verifone(
        json_response(status, body, **headers),
        operation,
        sent_request_id="sent-1",
        max_retry_after_s=60,
    )


def _su(status: int, body: Any, operation: str, **headers: str) -> ProviderError | None:
    return classify_sumup(
        json_response(status, body, **headers),
        operation,
        sent_request_id="sent-1",
        max_retry_after_s=60,
    )


VERIFONE_TABLE = [
    # status, body, operation, expected class, expected code
    (200, {"id": "x"}, "create", None, None),
    (200, [], "find", None, None),
    (200, {"id": "x"}, "get", None, None),
    (200, {"id": "x"}, "update", None, None),
    (204, None, "delete", None, None),
    (400, VF_ERROR, "create", RecordRejected, "400"),
    (400, VF_ERROR, "find", RecordRejected, "400"),
    (400, VF_ERROR, "update", RecordRejected, "400"),
    (401, {"code": 401, "message": "Unauthorized"}, "get", AuthError, "401"),
    (403, {"code": 403, "message": "Forbidden"}, "create", AuthError, "403"),
    (404, {"code": 404, "message": "Customer not found"}, "get", RecordRejected, "404"),
    (404, {"code": 404, "message": "Customer not found"}, "update", RecordRejected, "404"),
    (404, {"code": 404, "message": "Customer not found"}, "delete", RecordRejected, "404"),
    (404, {"code": 404, "message": "Not found"}, "create", ConfigError, "404"),
    (404, {"code": 404, "message": "Not found"}, "get_many", ConfigError, "404"),
    (500, {"code": 500, "message": "Internal error"}, "get", TransientError, "500"),
    (500, {"code": 500, "message": "Internal error"}, "create", TransientError, "500"),
    (429, VF_429, "get", TransientError, "429"),
    (502, None, "get", TransientError, None),
    (503, None, "update", TransientError, None),
    (504, None, "delete", TransientError, None),
    (409, {"code": 409, "message": "Conflict"}, "update", RecordRejected, "409"),
    (501, None, "get", RecordRejected, None),
    (301, None, "get", ConfigError, None),
]


@pytest.mark.parametrize(("status", "body", "operation", "expected", "code"), VERIFONE_TABLE)
def test_verifone_table(
    status: int, body: Any, operation: str, expected: type | None, code: str | None
) -> None:
    error = _vf(status, body, operation)
    if expected is None:
        assert error is None
        return
    assert type(error) is expected
    assert error is not None
    assert (error.provider, error.operation, error.status, error.code) == (
        "verifone",
        operation,
        status,
        code,
    )


SUMUP_TABLE = [
    (201, {"customer_id": "c1"}, "create", None, None),
    (200, {"customer_id": "c1"}, "get", None, None),
    (200, {"customer_id": "c1"}, "update", None, None),
    (200, [], "list_instruments", None, None),
    (204, None, "deactivate_instrument", None, None),
    (400, SU_400_EXT, "create", RecordRejected, "INVALID"),
    (400, SU_400_ALT, "create", RecordRejected, "INVALID"),
    (401, SU_401, "create", AuthError, "unauthorized"),
    (401, SU_401, "get", AuthError, "unauthorized"),
    (403, SU_403, "create", AuthError, "FORBIDDEN"),
    (403, SU_403, "update", AuthError, "FORBIDDEN"),
    (403, SU_403, "list_instruments", AuthError, "FORBIDDEN"),
    (409, SU_409, "create", RecordRejected, "CUSTOMER_ALREADY_EXISTS"),
    (404, SU_404, "get", RecordRejected, "NOT_FOUND"),
    (404, SU_404, "update", RecordRejected, "NOT_FOUND"),
    (404, SU_404, "list_instruments", RecordRejected, "NOT_FOUND"),
    (404, SU_404, "deactivate_instrument", RecordRejected, "NOT_FOUND"),
    (404, SU_404, "create", ConfigError, "NOT_FOUND"),
    (400, SU_400_DEACT, "deactivate_instrument", RecordRejected, "INVALID_REQUEST"),
    (401, SU_401, "deactivate_instrument", AuthError, "unauthorized"),
    (429, SU_429, "get", TransientError, "too-many-requests"),
    (500, None, "create", TransientError, None),
    (502, None, "get", TransientError, None),
    (503, None, "update", TransientError, None),
    (504, None, "list_instruments", TransientError, None),
]


@pytest.mark.parametrize(("status", "body", "operation", "expected", "code"), SUMUP_TABLE)
def test_sumup_table(
    status: int, body: Any, operation: str, expected: type | None, code: str | None
) -> None:
    error = _su(status, body, operation)
    if expected is None:
        assert error is None
        return
    assert type(error) is expected
    assert error is not None
    assert (error.provider, error.operation, error.status, error.code) == (
        "sumup",
        operation,
        status,
        code,
    )


def test_messages_and_request_ids_come_from_the_body() -> None:
    error = _su(401, SU_401, "get")
    assert error is not None
    assert error.message == "Unauthorized."
    assert error.request_id == "3c77294349d3b5647ea2d990f0d8f017"  # Problem.trace_id
    error = _su(400, SU_400_EXT, "create")
    assert error is not None and error.message == "Validation error (param customer_id)"
    error = _su(400, SU_400_ALT, "create")
    assert error is not None and error.message == "customer_id"
    error = _su(403, SU_403, "get")
    assert error is not None and error.message == "request_not_allowed"
    error = _vf(400, VF_ERROR, "create")
    assert error is not None
    assert error.message.startswith("Invalid email") and "email_address" in error.message
    assert error.request_id == "sent-1"  # nothing better in the response: ours


def test_request_id_header_wins() -> None:
    error = _vf(500, {"code": 500, "message": "boom"}, "get", **{"x-request-id": "srv-9"})
    assert error is not None and error.request_id == "srv-9"


def test_retry_after_is_parsed_and_clamped() -> None:
    error = _vf(429, VF_429, "get", **{"retry-after": "3"})
    assert error is not None and error.retry_after == 3
    error = _su(429, SU_429, "get", **{"retry-after": "86400"})
    assert error is not None and error.retry_after == 60
    error = _su(503, None, "get")
    assert error is not None and error.retry_after is None


def test_non_json_error_body_is_summarised() -> None:
    response = httpx.Response(502, content=b"<html>Bad gateway</html>")
    error = classify_verifone(response, "get", sent_request_id="r", max_retry_after_s=1)
    assert isinstance(error, TransientError)
    assert error.message == "<html>Bad gateway</html>"
    response = httpx.Response(400, content=b"x" * 5000)
    error = classify_sumup(response, "get", sent_request_id="r", max_retry_after_s=1)
    assert error is not None and len(error.message) <= 300


def test_str_names_provider_operation_status_code_and_request() -> None:
    error = _vf(404, {"code": 404, "message": "Customer not found"}, "get")
    assert str(error) == "verifone get: HTTP 404 404: Customer not found (request sent-1)"
