"""A small, slow, obviously-correct model of the planner's documented rules.

Pure Python, one row and one key at a time, written from ``docs/extract-format.md`` (§2
normalisation, §3 validation, §4 payloads) and ``transforms/diff.py``'s table of actions, not
from the polars code. The generative tests (``test_reference_model.py``) compare
:func:`transforms.planner.build_plan` with it on extracts nobody chose.

Only the two hashes are borrowed: the content hash and the content key are formulas over the
payload (§4) whose scalar Python forms (``transforms.mapping.content_hash`` /
``content_key``) are pinned against published test vectors and the polars expressions by
their own tests; re-deriving SHA-256 and XXH3 here would add nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.providers.registry import describe
from transforms.countries import ISO_3166_ALPHA2
from transforms.mapping import content_hash, content_key
from transforms.schema import CANONICAL_COLUMNS

# Unicode White_Space: what the trim of §2 removes (Rust's char::is_whitespace). Python's
# str.strip() also strips U+001C..U+001F, which are not white space.
WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
    + "\u2028\u2029\u202f\u205f\u3000"
)
CONTROL = {chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F)}
MAX_FIELD_CHARS = 4096
EMAIL = re.compile(
    r"[a-z0-9.!#$%&'*+/=?^_`{|}~-]+"
    r"@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+"
)
_WS_CLASS = "".join(f"\\u{ord(c):04x}" for c in WHITE_SPACE)
# The published patterns, with \s spelled as White_Space and anchored with fullmatch.
PATTERNS = {
    r"^[0-9\s\-+().-]+$": re.compile(f"[0-9{_WS_CLASS}\\-+().-]+"),
    r"^[a-zA-Z\-\s.]+$": re.compile(f"[a-zA-Z\\-{_WS_CLASS}.]+"),
    r"^[0-9]+$": re.compile("[0-9]+"),
}
DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")


def normalise(row: Mapping[str, str | None]) -> dict[str, str | None]:
    """§2: trim, NFC, empty → null, lower-case e-mail and status, upper-case countries."""
    out: dict[str, str | None] = {}
    for name in CANONICAL_COLUMNS:
        value = row.get(name)
        if value is not None:
            value = unicodedata.normalize("NFC", value.strip(WHITE_SPACE))
            if name in ("email", "status"):
                value = value.lower()
            elif name.endswith("_country_code"):
                value = value.upper()
            value = value or None
        out[name] = value
    if out["status"] is None:
        out["status"] = "active"
    return out


def _is_date(value: str) -> bool:
    match = DATE.fullmatch(value)
    if not match:
        return False
    year, month, day = (int(g) for g in match.groups())
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    return 1 <= month <= 12 and 1 <= day <= days[month - 1]


def mask(value: str) -> str:
    """§3: the first ≤3 characters, at most half the value, then ``***``."""
    return value[: min(3, len(value) // 2)] + "***"


def broken_rules(row: Mapping[str, str | None], target: str) -> list[tuple[str, str, bool]]:
    """(field, rule, shows_value) for every row rule of §3 that ``row`` breaks."""
    out: list[tuple[str, str, bool]] = []
    key = row["external_id"]
    if key is not None:
        if len(key) > MAX_FIELD_CHARS:
            out.append(("external_id", "max_field_size", False))
        if CONTROL & set(key):
            out.append(("external_id", "control_character", False))
    if row["status"] not in ("active", "closed"):
        out.append(("status", "status", True))
    for f in describe(target).fields:
        value = row[f.column]
        if value is None:
            continue
        if len(value) > MAX_FIELD_CHARS:
            out.append((f.column, "max_field_size", True))
        if f.max_length is not None and len(value) > f.max_length:
            out.append((f.column, "max_length", True))
        if f.pattern is not None and not PATTERNS[f.pattern].fullmatch(value):
            out.append((f.column, "pattern", True))
        if f.format == "email" and not EMAIL.fullmatch(value):
            out.append((f.column, "email", True))
        if f.format == "country" and value not in ISO_3166_ALPHA2:
            out.append((f.column, "country", True))
        if f.format == "date" and not _is_date(value):
            out.append((f.column, "date", True))
        if CONTROL & set(value):
            out.append((f.column, "control_character", False))
        if target == "verifone" and "\\" in value:
            out.append((f.column, "forbidden_character", True))
    named = row["first_name"] is not None and row["last_name"] is not None
    if target == "verifone" and row["company_name"] is None and not named:
        out.append(("company_name", "name_or_company", False))
    return out


Reject = tuple[str | None, str, str, str | None, int]
"""(external_id, field, rule, masked value, source_row)."""


def validate(
    rows: Sequence[Mapping[str, str | None]], target: str
) -> tuple[dict[str, dict[str, str | None]], list[Reject]]:
    """§3: the valid rows by key, and the rejects sorted by (source_row, field, rule)."""
    normal = [normalise(r) for r in rows]
    counts = Counter(r["external_id"] for r in normal)
    rejects: dict[tuple[str, str, str], Reject] = {}
    per_row: list[Reject] = []  # null keys and repeated keys: a reject a row
    valid: dict[str, dict[str, str | None]] = {}
    for position, row in enumerate(normal, 1):
        key = row["external_id"]
        if key is None:
            per_row.append((None, "external_id", "required", None, position))
            continue
        found = [
            (f, r, None if not shown else mask(row[f] or ""))
            for f, r, shown in broken_rules(row, target)
        ]
        if counts[key] > 1:  # every row of a repeated key is a reject of its own
            per_row.append((key, "external_id", "unique", None, position))
        for f, rule, value in found:
            rejects.setdefault((key, f, rule), (key, f, rule, value, position))
        if not found and counts[key] == 1:
            valid[key] = row
    items = per_row + list(rejects.values())
    return valid, sorted(items, key=lambda r: (r[4], r[1], r[2]))


def payload(row: Mapping[str, str | None], target: str, entity_id: str) -> dict[str, Any]:
    """§4: the request body, null members and empty objects left out."""
    body: dict[str, Any] = {}
    if target == "verifone":
        body["entity_id"] = entity_id
    else:
        body["customer_id"] = sumup_id(str(row["external_id"]))
    for f in describe(target).fields:
        value = row[f.column]
        if value is None:
            continue
        node = body
        *parents, leaf = f.path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return body


def sumup_id(external_id: str) -> str:
    return hashlib.sha256(external_id.encode()).hexdigest()[:32]


def to_json(body: Mapping[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Known:
    """One snapshot row: what custsync last sent for a key."""

    status: str
    body: dict[str, Any]
    remote_id: str | None

    @property
    def hash(self) -> str:
        return content_hash(self.body)


@dataclass(frozen=True)
class Failure:
    action: str
    failed_runs: int
    content_hash: str | None


@dataclass
class Planned:
    """One plan row of the model (the columns of ``PLAN_SCHEMA``)."""

    external_id: str
    action: str
    status: str
    remote_id: str | None
    payload: str | None
    content_hash: str | None
    base_payload: str | None
    reason: str
    content_key: int | None
    plan_id: str = field(default="")


def plan(
    valid: Mapping[str, Mapping[str, str | None]],
    rejected_keys: set[str],
    snapshot: Mapping[str, Known],
    failures: Mapping[str, Failure],
    *,
    target: str,
    mode: str,
    entity_id: str,
    quarantine_after: int = 5,
) -> tuple[list[Planned], int]:
    """The plan rows (unchanged keys left out) sorted by key, and the unchanged count."""
    can_create, can_update = mode != "update-only", mode != "create-only"
    forbidden = f"{mode} mode"
    rows: list[Planned] = []
    unchanged = 0
    keys = set(valid) | (set(snapshot) - rejected_keys if mode == "mirror" else set())
    for key in sorted(keys):
        row, known = valid.get(key), snapshot.get(key)
        if row is None:
            assert known is not None
            action, reason = "delete", "missing from extract"
            # the remote id of a key only the snapshot holds is the state store's to fill in
            status, body, remote = known.status, None, None
            current_hash, ckey = known.hash, content_key(known.body)
        else:
            body = payload(row, target, entity_id)
            status = str(row["status"])
            current_hash, ckey = content_hash(body), content_key(body)
            closed = status == "closed"
            remote = sumup_id(key) if target == "sumup" else None  # the extract's own
            if known is None:
                if closed:
                    action, reason = "skip", "closed, never synced"
                else:
                    action, reason = ("create", "new") if can_create else ("skip", forbidden)
            elif closed and known.status == "closed":
                action, reason = "unchanged", "closed"
            elif closed:
                action, reason = ("close", "status closed") if can_update else ("skip", forbidden)
            elif known.status == "closed":
                action, reason = ("update", "reopened") if can_update else ("skip", forbidden)
            elif content_key(known.body) != ckey:
                action, reason = ("update", "changed") if can_update else ("skip", forbidden)
            else:
                action, reason = "unchanged", "same content"
        failed = failures.get(key)
        if failed is not None:
            if (
                action == "unchanged"
                and failed.action in ("create", "update", "close")
                and known is not None
                and mode != "create-only"
            ):
                action, reason = ("close" if status == "closed" else "update"), "retry"
            elif action in ("create", "update", "close", "delete"):
                reason = "retry"
            same = failed.content_hash is None or failed.content_hash == current_hash
            acting = action not in ("unchanged", "skip")
            if failed.failed_runs >= quarantine_after and same and acting:
                action = "skip"
                reason = f"quarantined after {failed.failed_runs} failed runs"
        if action == "unchanged":
            unchanged += 1
            continue
        sends = action in ("create", "update", "close")
        planned = Planned(
            external_id=key,
            action=action,
            status=status,
            remote_id=remote,
            payload=to_json(body) if sends and body is not None else None,
            content_hash=current_hash,
            base_payload=None,  # the merge base: joined by the state store on reading
            reason=reason,
            content_key=ckey,
        )
        digest = "" if action == "delete" else current_hash
        planned.plan_id = hashlib.sha256(f"{target}|{key}|{action}|{digest}".encode()).hexdigest()[
            :32
        ]
        rows.append(planned)
    return rows, unchanged
