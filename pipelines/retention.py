"""Retention of personal values: ``retain_personal_days`` (off by default).

At the end of every run, the personal values of ``plan``, ``rejects`` (and every other column
:data:`~pipelines.state.redaction.PERSONAL_COLUMNS` gives a time column) older than the limit
are redacted; the rows stay. The snapshot keeps its payloads: the next diff compares the
extract with them and the next update merges on them (docs/state.md, "Personal data").

The clock is ``CUSTSYNC_TEST_NOW`` when set (an ISO 8601 time): for tests only, so that a test
can let days pass. Nothing else reads it.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from pipelines.settings import SettingsError

CLOCK_ENV = "CUSTSYNC_TEST_NOW"
"""Environment variable that sets retention's clock (tests only)."""


def now() -> datetime:
    """The time retention measures ages against: ``CUSTSYNC_TEST_NOW``, else the real time."""
    raw = os.environ.get(CLOCK_ENV)
    if not raw:
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise SettingsError(f"{CLOCK_ENV}: {raw!r} is not an ISO 8601 time") from exc
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def cutoff(days: int | None) -> datetime | None:
    """Rows older than this lose their personal values; ``None`` when retention is off."""
    if days is None:
        return None
    if days < 1:
        raise SettingsError(f"retain_personal_days: {days} must be at least 1 (or unset: off)")
    return now() - timedelta(days=days)
