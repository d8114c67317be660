"""SumUp's error bodies, grouped by what the caller does next."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.classify import classifier, text
from connectors.operation import Operation

# Operations on a collection: a 404 there means the URL is wrong, not that a record is gone.
COLLECTION_OPS = frozenset({Operation.CREATE})


def read_error(body: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """SumUp Customers API v0.1: ``Error {message, error_code}`` (404, 409, 400
    ``INVALID_REQUEST``), ``ErrorExtended`` (+ ``param``) or ``{instance, error_code,
    error_message}`` on 400, ``ErrorForbidden {error_message, error_code, status_code}`` on
    403, and RFC 9457 ``Problem {type, title, status, detail}`` on 401 (and 429)."""
    code = text(body.get("error_code"))
    message = text(body.get("message")) or text(body.get("error_message"))
    problem_type = body.get("type")
    if code is None and isinstance(problem_type, str) and problem_type:
        # Problem: ".../problem/unauthorized" -> "unauthorized"
        code = problem_type.rstrip("/").rsplit("/", 1)[-1][:100]
    message = message or text(body.get("detail")) or text(body.get("title"))
    param = body.get("param")
    if message and isinstance(param, str) and param:
        message = f"{message} (param {param[:100]})"
    return code, message


classify_sumup = classifier("sumup", read_error, COLLECTION_OPS)
"""A SumUp response → success (``None``) or a grouped error."""
