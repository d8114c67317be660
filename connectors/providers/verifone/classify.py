"""Verifone's error bodies, grouped by what the caller does next."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
import orjson

from connectors.classify import body_of, group_response, text
from connectors.errors import ProviderError
from connectors.operation import Operation

# Operations on a collection: a 404 there means the URL is wrong, not that a record is gone.
COLLECTION_OPS = frozenset(
    {Operation.CREATE, Operation.FIND, Operation.GET_MANY, Operation.FIND_CREATED, Operation.SEARCH}
)


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
    body = body_of(response)
    code = message = None
    if body is not None:
        code = text(body.get("code")) or text(body.get("type"))
        message = text(body.get("message")) or text(body.get("title"))
        details = body.get("details")
        if message and isinstance(details, Mapping) and details:
            message = f"{message} {text(orjson.dumps(details).decode())}"
    return group_response(
        response,
        operation,
        provider="verifone",
        code=code,
        message=message,
        body=body,
        sent_request_id=sent_request_id,
        max_retry_after_s=max_retry_after_s,
        collection_ops=COLLECTION_OPS,
    )
