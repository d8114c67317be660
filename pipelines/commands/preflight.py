"""Preflight: what a run can be refused for without the provider, checked before Prefect loads.

Settings, the column mapping, the extract files and their headers (for a landing-folder run:
that the folder exists; the run itself judges what arrived), the instruments extract,
credentials (when no Prefect API could hold them in a Secret block) and the state file (a
DuckDB file of custsync's that no other run writes, unless Prefect queues the runs). The first
problem is printed once, on stderr, with exit code 2; importing Prefect alone takes longer than
all of it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipelines.commands.common import fail as stop


def preflight(options: Mapping[str, Any], *, flow: str, as_json: bool = False) -> None:
    """Refuse (exit 2, one line) a sync or migrate run whose inputs are unusable.

    ``options`` are the command's parsed options (the :class:`~pipelines.spec.RunSpec` fields).
    With ``as_json`` the refusal is also the one JSON object ``--json`` promises, on stdout
    (``run_id`` null: nothing was recorded).
    """

    def fail(message: str) -> None:
        if as_json:
            print(json.dumps(_refusal(options, flow, message)), flush=True)
        stop(message)

    from pipelines.connect import build_connector
    from pipelines.extract import ExtractError, check_headers, expand_paths
    from pipelines.landing import landing_folders_missing
    from pipelines.settings import SettingsError, load_settings
    from pipelines.state.access import LockedError, check_no_writer
    from pipelines.state.store import StateError, StateStore

    mapping = Path(options["mapping"]) if options.get("mapping") else None
    try:
        settings = load_settings()
        settings.provider(options["target"])
    except SettingsError as exc:
        fail(str(exc))
    if options.get("processed") and not options.get("landing"):
        fail("--processed is where a landing-folder run moves its files: it needs --landing")
    if options.get("landing"):
        # What the folder holds tonight is the run's to judge (a file may still be arriving,
        # an empty folder is "nothing new", a file named outright may have been moved to
        # processed/ by last night's run); a folder that does not exist is a setting to fix.
        for what, key in (("extract", "extract"), ("instruments extract", "instruments")):
            missing = landing_folders_missing(options.get(key) or ())
            if missing:
                fail(f"{what}: the landing folder {missing[0]} does not exist")
    else:
        try:
            check_headers(options["extract"], mapping=mapping)
        except ExtractError as exc:
            fail(f"extract: {exc}")
        try:
            expand_paths(options.get("instruments") or (), optional=True)
        except ExtractError as exc:
            fail(f"instruments extract: {exc}")
    # A migration's dry run looks its creates up at the provider (reads): it needs them too.
    calls_provider = not options.get("dry_run") or flow == "migrate"
    if calls_provider and not os.environ.get("PREFECT_API_URL"):
        # With a Prefect API, credentials may be in its Secret blocks: the run reads them.
        try:
            build_connector(settings, options["target"])
        except SettingsError as exc:
            fail(str(exc))
    state = Path(options["state"]) if options.get("state") else settings.state
    if state.exists():
        try:
            if not os.environ.get("PREFECT_API_URL"):
                # Under Prefect a second run of the file queues (pipelines/runlock.py); here,
                # with nothing to queue on, it is refused as before.
                check_no_writer(state)
            StateStore(state, read_only=True, wait_s=settings.state_wait).close()
        except (StateError, LockedError) as exc:
            fail(str(exc))


def _refusal(options: Mapping[str, Any], flow: str, message: str) -> dict[str, Any]:
    from pipelines.summary import zero_counts

    return {
        **zero_counts(),
        "run_id": None,
        "flow": flow,
        "target": options.get("target"),
        "mode": options.get("mode", "upsert"),
        "dry_run": bool(options.get("dry_run")),
        "status": "error",
        "exit_code": 2,
        "message": message,
    }
