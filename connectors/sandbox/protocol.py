"""uvicorn's httptools protocol, handing its transport to the app through the scope.

The app needs the transport for one fault: "connection reset with no response", which
ASGI cannot express. Passed to uvicorn as ``Config(http=SandboxHttpProtocol)``.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

TRANSPORT_EXTENSION = "custsync.transport"
"""``scope["extensions"][TRANSPORT_EXTENSION]["transport"]`` is the asyncio transport."""


class SandboxHttpProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` plus the transport in ``scope["extensions"]``."""

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = {TRANSPORT_EXTENSION: {"transport": self.transport}}
