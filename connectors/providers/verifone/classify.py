"""Verifone's error bodies, grouped by what the caller does next."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from connectors.classify import classifier, text
from connectors.operation import Operation

# Operations on a collection: a 404 there means the URL is wrong, not that a record is gone.
COLLECTION_OPS = frozenset(
    {Operation.CREATE, Operation.FIND, Operation.GET_MANY, Operation.FIND_CREATED, Operation.SEARCH}
)


def read_error(body: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """Verifone Customer API v2: ``ErrorResponse {code: int, details, message, timestamp}``
    on 400/401/403/404/500; a 429 may carry the ``{code: "429", type: "RATE_LIMIT_ERROR"}``
    body of Verifone's other APIs."""
    code = text(body.get("code")) or text(body.get("type"))
    message = text(body.get("message")) or text(body.get("title"))
    details = body.get("details")
    if message and isinstance(details, Mapping) and details:
        message = f"{message} {text(orjson.dumps(details).decode())}"
    return code, message


classify_verifone = classifier("verifone", read_error, COLLECTION_OPS)
"""A Verifone response → success (``None``) or a grouped error."""
