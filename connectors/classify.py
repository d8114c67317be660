"""One function per provider turns a response into success (``None``) or a grouped error.

Each branch says why it is grouped where it is. Status codes and error bodies are the ones the
published documents define (``tests/contracts/``); anything else falls back to the HTTP
semantics of its status. The group says what the response means; whether and when the call is
tried again is the retry policy's (``connectors/retry.py``), which this classification feeds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from connectors.errors import (
    AuthError,
    ConfigError,
    ProviderError,
    RecordRejected,
    TransientError,
)
from connectors.operation import Operation
from connectors.retry import parse_retry_after

# Gateways and servers that failed and may succeed on another try. Whether they touched the
# record first matters only to a call not safe to repeat: the retry policy decides that.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-correlation-id", "x-trace-id")
_MAX_MESSAGE = 300

# Operations on a collection: a 404 there means the URL is wrong, not that a record is gone.
VERIFONE_COLLECTION_OPS = frozenset(
    {Operation.CREATE, Operation.FIND, Operation.GET_MANY, Operation.FIND_CREATED, Operation.SEARCH}
)
SUMUP_COLLECTION_OPS = frozenset({Operation.CREATE})


def _body(response: httpx.Response) -> Mapping[str, Any] | None:
    try:
        data = orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, Mapping) else None


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)[:_MAX_MESSAGE]


def _request_id(response: httpx.Response, body: Mapping[str, Any] | None, sent: str) -> str:
    for name in _REQUEST_ID_HEADERS:
        value = response.headers.get(name)
        if value:
            return value[:100]
    if body is not None:
        for key in ("trace_id", "instance", "request_id"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value[:100]
    return sent


def _fallback_message(response: httpx.Response) -> str:
    snippet = response.content[:_MAX_MESSAGE].decode("utf-8", "replace").strip()
    return snippet or response.reason_phrase or f"HTTP {response.status_code}"


def _group(
    *,
    provider: str,
    operation: Operation,
    status: int,
    code: str | None,
    message: str,
    request_id: str,
    retry_after: float | None,
    collection_ops: frozenset[Operation],
) -> ProviderError | None:
    kwargs: dict[str, Any] = {
        "provider": provider,
        "operation": operation,
        "status": status,
        "code": code,
        "request_id": request_id,
    }
    if 200 <= status < 300:
        return None
    if status in TRANSIENT_STATUSES:
        # 429: the provider asks us to slow down; 500/502/503/504: a server or gateway
        # failure that often passes. Retried (a create is looked up instead: the policy's).
        return TransientError(message, retry_after=retry_after, **kwargs)
    if status in (401, 403):
        # Wrong, expired or under-privileged credentials: every further call fails alike.
        return AuthError(message, **kwargs)
    if status == 404 and operation in collection_ops:
        # The collection itself is missing: the base URL (or API version) is wrong.
        return ConfigError(f"{message} (is the base URL right?)", **kwargs)
    if 300 <= status < 400:
        # We never follow redirects with credentials; a redirect means a wrong base URL.
        return ConfigError(f"unexpected redirect ({message})", **kwargs)
    # 400 validation, 404 no such record, 409 conflict, other 4xx/5xx: this record only.
    return RecordRejected(message, **kwargs)


def classify_verifone(
    response: httpx.Response,
    operation: Operation,
    *,
    sent_request_id: str,
    max_retry_after_s: float,
) -> ProviderError | None:
    """Verifone Customer API v2: ``ErrorResponse {code: int, details, message, timestamp}``
    on 400/401/403/404/500; a 429 may carry the ``{code: "429", type: "RATE_LIMIT_ERROR"}``
    body of Verifone's other APIs."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    body = _body(response)
    code = message = None
    if body is not None:
        code = _text(body.get("code")) or _text(body.get("type"))
        message = _text(body.get("message")) or _text(body.get("title"))
        details = body.get("details")
        if message and isinstance(details, Mapping) and details:
            message = f"{message} {_text(orjson.dumps(details).decode())}"
    return _group(
        provider="verifone",
        operation=operation,
        status=status,
        code=code,
        message=message or _fallback_message(response),
        request_id=_request_id(response, body, sent_request_id),
        retry_after=parse_retry_after(response.headers.get("retry-after"), max_s=max_retry_after_s),
        collection_ops=VERIFONE_COLLECTION_OPS,
    )


def classify_sumup(
    response: httpx.Response,
    operation: Operation,
    *,
    sent_request_id: str,
    max_retry_after_s: float,
) -> ProviderError | None:
    """SumUp Customers API v0.1: ``Error {message, error_code}`` (404, 409, 400
    ``INVALID_REQUEST``), ``ErrorExtended`` (+ ``param``) or ``{instance, error_code,
    error_message}`` on 400, ``ErrorForbidden {error_message, error_code, status_code}`` on
    403, and RFC 9457 ``Problem {type, title, status, detail}`` on 401 (and 429)."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    body = _body(response)
    code = message = None
    if body is not None:
        code = _text(body.get("error_code"))
        message = _text(body.get("message")) or _text(body.get("error_message"))
        problem_type = body.get("type")
        if code is None and isinstance(problem_type, str) and problem_type:
            # Problem: ".../problem/unauthorized" -> "unauthorized"
            code = problem_type.rstrip("/").rsplit("/", 1)[-1][:100]
        message = message or _text(body.get("detail")) or _text(body.get("title"))
        param = body.get("param")
        if message and isinstance(param, str) and param:
            message = f"{message} (param {param[:100]})"
    return _group(
        provider="sumup",
        operation=operation,
        status=status,
        code=code,
        message=message or _fallback_message(response),
        request_id=_request_id(response, body, sent_request_id),
        retry_after=parse_retry_after(response.headers.get("retry-after"), max_s=max_retry_after_s),
        collection_ops=SUMUP_COLLECTION_OPS,
    )
