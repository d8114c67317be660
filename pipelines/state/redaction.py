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
from typing import Literal

REDACTED = "[redacted]"
"""What a redacted value reads as."""

How = Literal["json", "mark", "null"]
"""``json``: a JSON payload keeps its shape, every scalar value becomes ``"[redacted]"``;
``mark``: the value becomes ``'[redacted]'``; ``null``: the value becomes NULL (hashes and keys
derived from personal values, which must not look like values)."""

# A JSON member name, then a string value (escapes included), or a number, true or false.
_STRING_MEMBER = r'("(?:[^"\\]|\\.)*":)"(?:[^"\\]|\\.)*"'
_OTHER_MEMBER = r'("(?:[^"\\]|\\.)*":)(?:-?[0-9][0-9.eE+-]*|true|false)'


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

    def redacted(self, column: str | None = None) -> str:
        """SQL: the redacted value of the column (or of ``column``, an expression)."""
        value = column or self.column
        if self.how == "null":
            return "NULL"
        if self.how == "mark":
            return f"CASE WHEN {value} IS NULL THEN NULL ELSE '{REDACTED}' END"
        marked = f'\\1"{REDACTED}"'
        inner = f"regexp_replace({value}, '{_STRING_MEMBER}', '{marked}', 'g')"
        return f"regexp_replace({inner}, '{_OTHER_MEMBER}', '{marked}', 'g')"

    def holds_values(self) -> str:
        """SQL: true where the column still holds something to redact (not NULL, not done)."""
        if self.how == "null":
            return f"{self.column} IS NOT NULL"
        if self.how == "mark":
            return f"{self.column} IS NOT NULL AND {self.column} <> '{REDACTED}'"
        return f"{self.column} IS NOT NULL AND {self.column} <> {self.redacted()}"


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
    ),
    PersonalColumn(
        "plan",
        "base_payload",
        "json",
        "planned_at",
        "a merge base copied before migration 003 (newer rows join it from the snapshot)",
        in_use=PENDING,
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
        None,
        "the payload of a key that lost a shared remote id: read when that key is looked up",
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


def retained() -> tuple[PersonalColumn, ...]:
    """The entries retention redacts (those with a time column)."""
    return tuple(c for c in PERSONAL_COLUMNS if c.retained_by is not None)
