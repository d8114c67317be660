"""The sandbox: one local HTTP server speaking Verifone's and SumUp's customer APIs.

Faithful to the published contracts (``tests/contracts/*.json``), including how the real
providers fail: rate limits with ``Retry-After``, latency, 5xx, dropped connections and
commit-then-fail. See docs/sandbox.md. Entry points: :class:`~.server.SandboxServer`,
:class:`~.config.SandboxConfig`, :class:`~.admin.SandboxAdmin`, ``custsync sandbox``.
"""
