"""Providers: one package each (its client, target description, settings), one registry.

See :mod:`connectors.providers.registry` and ``docs/architecture.md``.
"""
