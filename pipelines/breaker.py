"""Stop a run whose provider does not answer at all, instead of retrying every record.

Without it, an unreachable provider (a wrong base URL, an outage, a firewall) costs every
planned record all of its retries: minutes of backoff for a few hundred records, hours for a
nightly batch, and a run that ends with every record "failed". Calls that got *some* answer
(even a 500) reset the count: the provider is there, and per-record retries are the right tool.
"""

from __future__ import annotations

from connectors.errors import ConfigError
from connectors.http import CallRecord
from connectors.operation import Operation


class ProviderUnreachable(ConfigError):
    """The provider answered none of the last calls: stop the run (exit code 2)."""

    def __str__(self) -> str:
        return self.message


class Breaker:
    """Trips after ``limit`` consecutive calls without any response."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.silent = 0
        self.last_error: str | None = None

    def observe(self, call: CallRecord) -> None:
        """Count one HTTP attempt (the connectors' ``on_call`` hook)."""
        if call.status is None:
            self.silent += 1
            self.last_error = call.error_code
        else:
            self.silent = 0

    @property
    def tripped(self) -> bool:
        """Whether the provider looks unreachable."""
        return self.silent >= self.limit

    def error(self, target: str, base_url: str) -> ProviderUnreachable | None:
        """The error to stop the run with, once tripped."""
        if not self.tripped:
            return None
        return ProviderUnreachable(
            f"no response from {base_url} to {self.silent} calls in a row ({self.last_error}): "
            f"is CUSTSYNC_{target.upper()}_BASE_URL right and the provider up? "
            "The run stopped; what was done is recorded",
            provider=target,
            operation=Operation.ANY,
        )
