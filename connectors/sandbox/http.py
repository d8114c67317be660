"""The few HTTP pieces the sandbox needs on top of raw ASGI: request, response, JSON.

A hand-written layer instead of Starlette/FastAPI because the sandbox must never be the
bottleneck of a benchmark (at least 3,000 requests/s on one uvicorn worker).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson

JSON = b"application/json"
PROBLEM_JSON = b"application/problem+json"


@dataclass(slots=True)
class Request:
    """One parsed API request, handed to a route handler."""

    method: str
    path: str
    params: tuple[str, ...]
    """Path parameters in template order, percent-decoded."""
    query_string: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    _query: dict[str, str] | None = field(default=None, repr=False)

    @property
    def query(self) -> dict[str, str]:
        """Query parameters; a repeated name keeps its last value."""
        if self._query is None:
            self._query = dict(
                parse_qsl(self.query_string.decode("latin-1"), keep_blank_values=True)
            )
        return self._query

    def header(self, name: bytes) -> bytes | None:
        """The first header named ``name`` (lower case), or ``None``."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass(slots=True)
class Response:
    """A response a handler returns; the app sends it (or replaces it with a fault)."""

    status: int
    body: bytes = b""
    content_type: bytes | None = JSON
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


class BodyError(ValueError):
    """The request body is not the JSON the route expects."""


def json_response(status: int, payload: Any, content_type: bytes = JSON) -> Response:
    """Serialise ``payload`` with orjson."""
    return Response(status, orjson.dumps(payload), content_type)


def empty(status: int = 204) -> Response:
    """A response with no body and no content type (204)."""
    return Response(status, b"", None)


def parse_json(body: bytes) -> Any:
    """Decode a request body; raise :class:`BodyError` on anything that is not JSON."""
    if not body.strip():
        raise BodyError("the request body is empty")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BodyError(f"the request body is not valid JSON: {exc}") from exc
