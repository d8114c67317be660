"""Error bodies in the exact shapes each provider publishes.

Verifone uses one ``ErrorResponse {code, details, message, timestamp}`` for every error.
SumUp mixes four shapes: ``Error {message, error_code}``, ``ErrorExtended`` (+ ``param``),
``ErrorForbidden {error_message, error_code, status_code}`` and an RFC 9457 ``Problem``.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from connectors.sandbox.http import JSON, PROBLEM_JSON, Response, json_response

SUMUP_PROBLEM_BASE = "https://developer.sumup.com/problem/"

_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def reason(status: int) -> str:
    """The standard reason phrase of ``status``."""
    return _REASONS.get(status, "Error")


def verifone_error(status: int, message: str, details: dict[str, Any] | None = None) -> Response:
    """Verifone ``ErrorResponse``; ``details`` maps the offending field to what is wrong."""
    return json_response(
        status,
        {
            "code": status,
            "details": details or {},
            "message": message,
            "timestamp": int(time.time()),
        },
    )


def sumup_error(status: int, error_code: str, message: str, param: str | None = None) -> Response:
    """SumUp ``Error``, or ``ErrorExtended`` when ``param`` names the offending field."""
    body: dict[str, Any] = {"error_code": error_code, "message": message}
    if param is not None:
        body["param"] = param
    return json_response(status, body)


def sumup_invalid(param: str, message: str = "Validation error") -> Response:
    """The documented 400 for a bad body, e.g. ``{"error_code": "INVALID", ...}``."""
    return sumup_error(400, "INVALID", message, param)


def sumup_not_found() -> Response:
    """The documented 404 body."""
    return sumup_error(404, "NOT_FOUND", "Resource not found")


def sumup_forbidden() -> Response:
    """The documented 403 ``ErrorForbidden`` body (the key lacks the required scopes)."""
    return json_response(
        403,
        {"error_message": "request_not_allowed", "error_code": "FORBIDDEN", "status_code": "403"},
    )


def sumup_problem(
    status: int, slug: str, detail: str, content_type: bytes = PROBLEM_JSON
) -> Response:
    """An RFC 9457 ``Problem``; SumUp's 401 is documented as plain ``application/json``."""
    return json_response(
        status,
        {
            "type": SUMUP_PROBLEM_BASE + slug,
            "title": reason(status),
            "status": status,
            "detail": detail,
            "trace_id": secrets.token_hex(16),
        },
        content_type,
    )


def sumup_unauthorized() -> Response:
    """The documented 401 body, as returned by SumUp's API gateway."""
    return sumup_problem(401, "unauthorized", "Unauthorized.", JSON)


def plain_not_found(path: str) -> Response:
    """404 for a path neither API knows, in the shape of the API the prefix suggests."""
    if path.startswith("/v2/"):
        return verifone_error(404, "Not Found", {"path": path})
    if path.startswith("/v0.1/"):
        return sumup_not_found()
    return json_response(404, {"message": "Not Found", "path": path})


def method_not_allowed(path: str, allowed: list[str]) -> Response:
    """405 with the ``Allow`` header RFC 9110 requires, in the API's error shape."""
    if path.startswith("/v0.1/"):
        response = sumup_error(405, "METHOD_NOT_ALLOWED", "Method not allowed")
    else:
        response = verifone_error(405, "Method Not Allowed", {"allowed": allowed})
    response.headers.append((b"allow", ", ".join(allowed).encode()))
    return response
