"""custsync's own limit on any value it sends, whatever the provider publishes."""

from __future__ import annotations

MAX_FIELD_CHARS = 4096
"""custsync's own limit for any value sent to a provider (SumUp publishes none for most
fields): a longer value is a broken export, not a name."""
