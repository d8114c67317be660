"""The operations a connector performs, by name: one spelling for clients, errors and call logs.

Each value is the string stored in ``calls.operation`` (and carried by every error and
:class:`~connectors.http.CallRecord`). The DuckDB file is an audit product, so a value never
changes once written; a member may be renamed, its value may not.
"""

from __future__ import annotations

from enum import StrEnum


class Operation(StrEnum):
    """A connector operation; its value is what the call log and the errors record."""

    CREATE = "create"
    GET = "get"
    GET_MANY = "get_many"
    """Verifone bulk fetch (``search=id=in=(…)``)."""
    UPDATE = "update"
    DELETE = "delete"
    FIND = "find"
    """Search by field equality (Verifone)."""
    SEARCH = "search"
    """Search by a raw RSQL filter (Verifone)."""
    FIND_CREATED = "reconcile"
    """The look-up for a create whose outcome is unknown (Verifone). Stored as ``reconcile``,
    the name calls of earlier versions carry: existing audit queries keep finding them."""
    LIST_INSTRUMENTS = "list_instruments"
    DEACTIVATE_INSTRUMENT = "deactivate_instrument"
    REFRESH_TOKEN = "refresh_token"
    """An OAuth2 refresh at the token endpoint (:mod:`connectors.oauth`)."""
    CONFIGURE = "configure"
    """Not a call: a client refused its settings (base URL, credentials, entity)."""
    ANY = "any"
    """Not one call: the run as a whole (the pipeline's unreachable-provider breaker)."""
