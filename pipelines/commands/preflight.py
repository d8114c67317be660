"""Preflight: what a run can be refused for without the provider, checked before Prefect loads.

Settings, the column mapping, the extract files and their headers, the instruments extract,
credentials (when no Prefect API could hold them in a Secret block) and the state file (a
DuckDB file of custsync's that no other process holds). The first problem is printed once, on
stderr, with exit code 2; importing Prefect alone takes longer than all of it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipelines.commands.common import fail


def preflight(options: Mapping[str, Any]) -> None:
    """Refuse (exit 2, one line) a sync or migrate run whose inputs are unusable.

    ``options`` are the command's parsed options (the :class:`~pipelines.spec.RunSpec` fields).
    """
    from pipelines.connect import build_connector
    from pipelines.extract import ExtractError, check_headers, expand_paths
    from pipelines.settings import SettingsError, load_settings
    from pipelines.state.store import StateError, StateStore

    mapping = Path(options["mapping"]) if options.get("mapping") else None
    try:
        settings = load_settings()
        settings.provider(options["target"])
    except SettingsError as exc:
        fail(str(exc))
    try:
        check_headers(options["extract"], mapping=mapping)
    except ExtractError as exc:
        fail(f"extract: {exc}")
    try:
        expand_paths(options.get("instruments") or (), optional=True)
    except ExtractError as exc:
        fail(f"instruments extract: {exc}")
    if not options.get("dry_run") and not os.environ.get("PREFECT_API_URL"):
        # With a Prefect API, credentials may be in its Secret blocks: the run reads them.
        try:
            build_connector(settings, options["target"])
        except SettingsError as exc:
            fail(str(exc))
    state = Path(options["state"]) if options.get("state") else settings.state
    if state.exists():
        try:
            StateStore(state, read_only=True).close()
        except StateError as exc:
            fail(str(exc))
