"""A string that never shows itself: credentials travel wrapped in :class:`Secret`."""

from __future__ import annotations


class Secret:
    """Wraps a credential so that ``repr``, ``str``, f-strings and logs print ``'**********'``.

    Only :meth:`reveal` returns the value; call it at the last moment (building a header).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the wrapped value. Never log the result."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling (e.g. into a Prefect result) would write the credential to disk.
        raise TypeError("a Secret cannot be pickled")
