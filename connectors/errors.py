"""Provider errors, grouped by what the caller does next.

- :class:`TransientError`, **retry later**: the call may succeed on another try (429, 5xx,
  a timeout or reset of a call safe to repeat). The connector already retried it as often as
  the retry policy allows (``connectors/retry.py``), so the caller records the failure and the
  next run tries again.
- :class:`UnknownOutcome`, **look before repeating**: a call that is not safe to repeat (a
  Verifone create) may or may not have taken effect. It is never retried blindly: what was sent
  is looked up first (``VerifoneClient.find_created``), and an unsettled one stays pending for
  the next run. Its own branch, not a kind of transient error: retrying it is exactly the
  mistake to avoid.
- :class:`RecordRejected`, **go on**: the provider refused this record (400, 404 meaning "no
  such record", 409 not adopted, ...), or the target lacks what it needs
  (:class:`NotSupported`: SumUp has no search, Verifone no payment instruments). Log it and go
  on with the next record.
- :class:`FatalError`, **stop the run**: going on would only repeat the failure
  (:class:`AuthError` for 401/403, :class:`ConfigError` for a wrong base URL, entity or
  setting).

Every error carries ``provider``, ``operation``, ``status``, ``code``, ``message`` and
``request_id``. Messages are built from the provider's error body and our own text, never
from headers or credentials.
"""

from __future__ import annotations

from connectors.operation import Operation


class ProviderError(Exception):
    """Base of every error a connector raises."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        operation: Operation,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.operation = operation
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        # Seconds the provider asked us to wait (429/503 ``Retry-After``), already clamped.
        self.retry_after = retry_after

    def __str__(self) -> str:
        status = "no response" if self.status is None else f"HTTP {self.status}"
        code = f" {self.code}" if self.code else ""
        rid = f" (request {self.request_id})" if self.request_id else ""
        return f"{self.provider} {self.operation}: {status}{code}: {self.message}{rid}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(provider={self.provider!r}, operation={str(self.operation)!r}, "
            f"status={self.status!r}, code={self.code!r}, message={self.message!r}, "
            f"request_id={self.request_id!r})"
        )


class TransientError(ProviderError):
    """A failure that may go away (429, 5xx, timeout, reset); raised once retries are spent."""


class UnknownOutcome(ProviderError):
    """A call not safe to repeat may or may not have taken effect (timeout, reset, 5xx).

    Never re-send the call blindly: look up what was sent first
    (``VerifoneClient.find_created``). Not a :class:`TransientError`: no retry loop may take it.
    """


class RecordRejected(ProviderError):
    """The provider refused this record; the run goes on with the others."""


class FatalError(ProviderError):
    """Going on would repeat the failure for every record: stop the run."""


class AuthError(FatalError):
    """401 or 403: the credentials are wrong, expired or lack a permission."""


class ConfigError(FatalError):
    """The connector is misconfigured (base URL, entity id, credentials missing...)."""


class NotSupported(RecordRejected):
    """The target does not offer this operation (see ``Capabilities``): this record's action
    cannot be carried out there; the others go on."""
