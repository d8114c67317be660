"""Calls the sandbox answered, by route template and status; admin calls are not counted."""

from __future__ import annotations

from collections import defaultdict
from typing import Any


class Counters:
    """``by_route["POST /v2/customer"]["200"]``; a dropped connection counts as ``"reset"``."""

    def __init__(self) -> None:
        self.total = 0
        self.by_route: defaultdict[str, defaultdict[str, int]] = defaultdict(
            lambda: defaultdict(int)
        )
        self.faults: defaultdict[str, int] = defaultdict(int)

    def count(self, route: str, status: str) -> None:
        """Record one answered API call."""
        self.total += 1
        self.by_route[route][status] += 1

    def fault(self, kind: str) -> None:
        """Record one injected fault (its call is counted separately, by its status)."""
        self.faults[kind] += 1

    def clear(self) -> None:
        """Start counting from zero."""
        self.total = 0
        self.by_route.clear()
        self.faults.clear()

    def snapshot(self) -> dict[str, Any]:
        """``{"total": N, "by_route": {route: {status: n}}, "faults": {kind: n}}``."""
        return {
            "total": self.total,
            "by_route": {route: dict(statuses) for route, statuses in self.by_route.items()},
            "faults": dict(self.faults),
        }
