"""What every provider's response classification shares: grouping a status into an error.

Each provider package has its own ``classify`` (reading that provider's error bodies), which
ends in :func:`group`. Each branch says why it is grouped where it is. Status codes and error
bodies are the ones the published documents define (``tests/contracts/``); anything else
falls back to the HTTP semantics of its status. The group says what the response means;
whether and when the call is tried again is the retry policy's (``connectors/retry.py``),
which this classification feeds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

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


def body_of(response: httpx.Response) -> Mapping[str, Any] | None:
    """The response's JSON object, or ``None``."""
    try:
        data = orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, Mapping) else None


def text(value: Any) -> str | None:
    """A body value as a bounded message text (``None`` for absent or empty)."""
    if value is None or value == "":
        return None
    return str(value)[:_MAX_MESSAGE]


def request_id_of(response: httpx.Response, body: Mapping[str, Any] | None, sent: str) -> str:
    """The provider's request id (header, then body), else the one we sent."""
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


def fallback_message(response: httpx.Response) -> str:
    """A message from the raw body when no error body could be read."""
    snippet = response.content[:_MAX_MESSAGE].decode("utf-8", "replace").strip()
    return snippet or response.reason_phrase or f"HTTP {response.status_code}"


def group(
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
    """The error a ``status`` means (``None`` for 2xx); ``collection_ops`` are the operations
    on a collection, where a 404 means a wrong base URL rather than a missing record."""
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


class Classifier(Protocol):
    """A provider's response classification (:func:`classifier` makes one)."""

    def __call__(
        self,
        response: httpx.Response,
        operation: Operation,
        *,
        sent_request_id: str,
        max_retry_after_s: float,
    ) -> ProviderError | None: ...


ErrorReader = Callable[[Mapping[str, Any]], tuple[str | None, str | None]]
"""A provider's reading of its error body: ``(code, message)``, either may be ``None``."""


def classifier(
    provider: str, read_error: ErrorReader, collection_ops: frozenset[Operation]
) -> Classifier:
    """A provider's response classification: success (``None``) for 2xx, otherwise the
    :func:`group` of its status, with the code and message ``read_error`` finds in the body
    (the request id, ``Retry-After`` and fallback message are read the same for all)."""

    def classify(
        response: httpx.Response,
        operation: Operation,
        *,
        sent_request_id: str,
        max_retry_after_s: float,
    ) -> ProviderError | None:
        status = response.status_code
        if 200 <= status < 300:
            return None
        body = body_of(response)
        code, message = read_error(body) if body is not None else (None, None)
        retry_after = response.headers.get("retry-after")
        return group(
            provider=provider,
            operation=operation,
            status=status,
            code=code,
            message=message or fallback_message(response),
            request_id=request_id_of(response, body, sent_request_id),
            retry_after=parse_retry_after(retry_after, max_s=max_retry_after_s),
            collection_ops=collection_ops,
        )

    return classify
