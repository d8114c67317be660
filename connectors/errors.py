"""Provider errors, grouped by what the caller does next.

- :class:`TransientError`: the call may succeed later; the connector already retried it as
  often as it was allowed to, so the caller records the failure and tries again next run.
- :class:`RecordRejected`: the provider refused this record (400, 404 meaning "no such
  record", 409 not adopted, ...). Log it and go on with the next record.
- :class:`FatalError`: going on would only repeat the failure (:class:`AuthError` for 401/403,
  :class:`ConfigError` for a wrong base URL, entity or setting). Stop the run.
- :class:`NotSupported`: the target lacks the capability (SumUp has no delete, Verifone no
  payment instruments).

Every error carries ``provider``, ``operation``, ``status``, ``code``, ``message`` and
``request_id``. Messages are built from the provider's error body and our own text, never
from headers or credentials.
"""

from __future__ import annotations


class ProviderError(Exception):
    """Base of every error a connector raises."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        operation: str,
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
            f"{type(self).__name__}(provider={self.provider!r}, operation={self.operation!r}, "
            f"status={self.status!r}, code={self.code!r}, message={self.message!r}, "
            f"request_id={self.request_id!r})"
        )


class TransientError(ProviderError):
    """A failure that may go away (429, 5xx, timeout, reset); raised once retries are spent."""


class UnknownOutcome(TransientError):
    """A non-idempotent call may or may not have taken effect (timeout, reset, 5xx).

    Never re-send the call blindly: reconcile first (``VerifoneClient.reconcile``).
    """


class RecordRejected(ProviderError):
    """The provider refused this record; the run goes on with the others."""


class FatalError(ProviderError):
    """Going on would repeat the failure for every record: stop the run."""


class AuthError(FatalError):
    """401 or 403: the credentials are wrong, expired or lack a permission."""


class ConfigError(FatalError):
    """The connector is misconfigured (base URL, entity id, credentials missing...)."""


class NotSupported(ProviderError):
    """The target does not offer this operation (see ``Capabilities``)."""
