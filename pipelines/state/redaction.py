"""Where the state file holds personal values, and how each is redacted: the one registry.

Every column that can hold a customer's personal value (a name, an e-mail address, a phone
number, an address, a birth date, a tax id, or a piece of one) is declared here, once, with
how it is redacted and which time column retention reads. ``custsync forget`` redacts every
entry for the forgotten keys; retention (``retain_personal_days``) redacts the entries that
have a time column, for rows older than the limit. A table added later with personal values
(as the ``changes`` table's ``before``/``after`` were) is one more :class:`PersonalColumn` here,
and the tests that export every table and grep it hold the registry complete.

Redacting keeps the row: keys, remote ids, actions, results, times and field names stay (the
audit trail), and only the values go. A JSON payload keeps its shape and field names, each
value replaced by ``"[redacted]"``, so that an auditor still sees which fields a payload held.
docs/state.md ("Personal data") gives the decision behind every column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

REDACTED = "[redacted]"
"""What a redacted value reads as."""

How = Literal["json", "mark", "null"]
"""``json``: a JSON payload keeps its shape, every scalar value becomes ``"[redacted]"``
(:func:`redact_json`);
``mark``: the value becomes ``'[redacted]'``; ``null``: the value becomes NULL (hashes and keys
derived from personal values, which must not look like values)."""


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return None if value is None else REDACTED


def redact_json(text: str) -> str:
    """``text`` (a JSON document) with its shape and member names, every non-null scalar
    replaced by ``"[redacted]"``; text that is not JSON becomes the JSON string
    ``"[redacted]"`` whole (nothing of it is kept).

    Parsed, not pattern-matched: a regular expression over JSON text can lose its place among
    the quotes (a member named ``":"`` after an empty one did) and leave a value behind.
    """
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        return orjson.dumps(REDACTED).decode()
    return orjson.dumps(_redact(parsed)).decode()


RELEASED = (
    "EXISTS (SELECT 1 FROM journal j WHERE j.run_id = plan.run_id"
    " AND j.plan_id = plan.plan_id AND j.closed_at >= $last_pass)"
)
"""SQL: the plan row's intent was closed since the previous retention pass."""
PENDING = (
    "EXISTS (SELECT 1 FROM journal j WHERE j.run_id = plan.run_id"
    " AND j.plan_id = plan.plan_id AND j.state = 'pending')"
)
"""SQL: the plan row's action is still in flight (crash recovery reads its payload)."""


@dataclass(frozen=True)
class PersonalColumn:
    """A column that may hold a customer's personal values."""

    table: str
    column: str
    how: How
    retained_by: str | None
    """The row's time column retention compares with its limit; ``None``: retention leaves
    the column alone (the reason is in :attr:`why`)."""
    why: str
    key: str = "external_id"
    """The column naming the customer a row belongs to (with ``target``)."""
    in_use: str | None = None
    """SQL, true for a row retention must leave alone because a run still needs its value."""
    only: str | None = None
    """SQL, true for the rows whose column may hold personal values (``None``: every row)."""
    released_since: str | None = None
    """SQL, true for a row :attr:`in_use` spared that has been released since ``$last_pass``
    (the previous retention pass): retention reads it again."""

    def redacted(self, column: str | None = None) -> str:
        """SQL: the redacted value of a ``mark`` or ``null`` column (or of ``column``, an
        expression). A ``json`` column is redacted in Python (:func:`redact_json`)."""
        value = column or self.column
        if self.how == "null":
            return "NULL"
        if self.how == "mark":
            return f"CASE WHEN {value} IS NULL THEN NULL ELSE '{REDACTED}' END"
        raise ValueError(f"{self.table}.{self.column}: a JSON payload is redacted in Python")

    def holds_values(self, column: str | None = None) -> str:
        """SQL: true where the column (or ``column``) may still hold something to redact (for
        ``json``: not NULL; :func:`redact_json` tells a redacted payload exactly)."""
        value = column or self.column
        if self.how == "mark":
            return f"{value} IS NOT NULL AND {value} <> '{REDACTED}'"
        return f"{value} IS NOT NULL"


PERSONAL_COLUMNS: tuple[PersonalColumn, ...] = (
    PersonalColumn(
        "snapshot",
        "payload",
        "json",
        None,
        "the last payload confirmed at the provider: the next diff's comparison and the next"
        " update's three-way merge base; a forgotten key's row is deleted by its erase",
    ),
    PersonalColumn(
        "plan",
        "payload",
        "json",
        "planned_at",
        "what a run sent: needed until its outcome is recorded (a pending intent's payload is"
        " what crash recovery looks the create up by)",
        in_use=PENDING,
        released_since=RELEASED,
    ),
    PersonalColumn(
        "plan",
        "base_payload",
        "json",
        "planned_at",
        "the merge base an executed update or close ran against (migration 007)",
        in_use=PENDING,
        released_since=RELEASED,
    ),
    PersonalColumn(
        "plan",
        "content_hash",
        "null",
        None,
        "SHA-256 of the payload (pseudonymous): read by quarantine (StateStore.failures); a"
        " forgotten key's is removed",
    ),
    PersonalColumn(
        "plan",
        "content_key",
        "null",
        None,
        "64-bit key of the payload (pseudonymous): removed with the hash for a forgotten key",
    ),
    PersonalColumn(
        "rejects",
        "value",
        "mark",
        "rejected_at",
        "the refused value, masked but for a short prefix: shows what was wrong",
    ),
    PersonalColumn(
        "remote_id_conflicts",
        "payload",
        "json",
        "found_at",
        "the payload of a key that lost a shared remote id: for the person who resolves the"
        " conflict (no code reads it; the key's look-up uses its plan's payload)",
    ),
    PersonalColumn(
        "outcomes",
        "message",
        "mark",
        None,
        "custsync's own messages hold keys and ids only, but a provider's error message is kept"
        " as sent and may echo a value: redacted for a forgotten key (but the erase's own)",
        only="action <> 'erase'",
    ),
    PersonalColumn(
        "changes",
        "before",
        "mark",
        "occurred_at",
        "a field's value before a change (migration 007): what the audit of a change shows",
    ),
    PersonalColumn(
        "changes",
        "after",
        "mark",
        "occurred_at",
        "a field's value after a change (migration 007): what the audit of a change shows",
    ),
)
"""Every column of the state file that may hold personal values (docs/state.md lists why)."""


AUDIT_TRAIL = "the audit trail: keys, remote ids, actions, results, times, field names"
_AUDIT_COLUMNS = {
    "runs": "run_id flow target mode dry_run started_at finished_at status exit_code"
    " custsync_version prefect_flow_run_id prefect_deployment plan_run_id snapshot_fingerprint",
    "snapshot": "target external_id remote_id status synced_at run_id",
    "plan": "run_id target external_id action status remote_id reason planned_at",
    "journal": "run_id target plan_id state opened_at closed_at closed_run_id",
    "calls": "run_id target plan_id operation method status error_code attempt latency_ms"
    " started_at request_id",
    "outcomes": "run_id target plan_id external_id action result remote_id http_status"
    " error_class error_code changed_fields drift_fields occurred_at",
    "rejects": "run_id target external_id field rule source_row rejected_at",
    "remote_id_conflicts": "target external_id remote_id kept_by source run_id found_at",
    "changes": "run_id target plan_id external_id remote_id action field why occurred_at",
    "suppressed": "target external_id remote_id requested_at requested_run_id erased_at"
    " redacted_at done_run_id",
    "redactions": "run_id reason target table_name column_name rows older_than redacted_at",
    "schema_version": "version name applied_at",
}
NOT_PERSONAL: dict[tuple[str, str], str] = {
    **{(t, c): AUDIT_TRAIL for t, cols in _AUDIT_COLUMNS.items() for c in cols.split()},
    ("runs", "extract_paths"): "the files read (name a file without a customer's name in it)",
    ("runs", "params"): "the run's parameters (no keys: a forget run's keys are its plan rows)",
    ("runs", "summary"): "counts and the run's message (keys at most, never values)",
    ("runs", "host"): "the machine: the operator's, not a customer's",
    ("runs", "os_user"): "the operating-system user who ran it: an employee's, not a customer's",
    ("runs", "settings"): "effective settings, secrets only as set/unset",
    ("runs", "inputs"): "path, size and SHA-256 of each extract file: a hash of a whole file,"
    " which cannot be reversed and names no one customer",
    ("plan", "plan_id"): "SHA-256 over target, key, action and the content hash: the action's"
    " identity every audit row joins on; it cannot be reversed once the payload is gone",
    ("calls", "path_template"): "the path with its ids left out (/v2/customer/{customerId})",
    ("rejects", "message"): "the rule's fixed text: never the value",
    ("snapshot", "content_hash"): "SHA-256 of the payload (pseudonymous): the key's next plan id"
    " uses it; the row is deleted when its key is forgotten",
    ("snapshot", "content_key"): "64-bit key of the payload the diff compares (pseudonymous);"
    " deleted with the row",
}
"""Every other column of the state file, and why it holds no customer's personal value (the
SumUp remote id is SHA-256 of the key, so no more than the key). A test holds the two
registries equal to the file's columns: a new column is classified before it ships."""


def retained() -> tuple[PersonalColumn, ...]:
    """The entries retention redacts (those with a time column)."""
    return tuple(c for c in PERSONAL_COLUMNS if c.retained_by is not None)
