"""A landing-folder run's two steps around the plan: choose the files, then put them away.

:func:`look` runs after recovery and before the plan stage: it applies the rules of
:mod:`pipelines.landing` to the run's extract and instruments globs, against what earlier runs
of the target synced, and logs what it leaves out. :func:`put_away` runs after the last batch:
it moves the files to ``processed/`` (the files read only when the run got past planning and
its guards) and records where each went in the run's ``inputs``. A dry run moves nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipelines.landing import Choice, Found, Landing, choose, move, processed_folder, scan
from pipelines.run import Run

log = logging.getLogger("custsync")

NOTHING_NEW = "nothing new in the landing folder"
"""The message (start) of a landing-folder run that found no new complete extract."""


def look(run: Run) -> Landing:
    """Choose the files the run reads; sets ``run.landing`` and, when there is nothing new,
    ``run.note``."""
    spec = run.spec
    seen, synced_night = run.store.synced_inputs(spec.target, other_than=run.run_id)
    customers, instruments = scan(
        [spec.extract, spec.instruments], settle_s=run.settings.landing_settle_s
    )
    landing = Landing(
        customers=choose(customers, seen=seen, synced_night=synced_night),
        instruments=choose(instruments, seen=seen, synced_night=None, newest_only=False),
    )
    for choice in (landing.customers, landing.instruments):
        _explain(choice)
    if landing.nothing_new:  # the run's logger says so (orchestration)
        run.note = _nothing_new(landing.customers, list(spec.extract))
    else:
        log.info(
            "landing folder: night %s, %d file(s) to read",
            landing.customers.night,
            len(landing.customers.read),
        )
    run.landing = landing
    return landing


def _explain(choice: Choice) -> None:
    for found in choice.superseded:
        log.warning("%s: night %s is superseded by a newer one: not read", found.path, found.night)
    for found in choice.synced:
        log.warning("%s: already synced (same SHA-256): not read again", found.path)
    for found in choice.waiting:
        log.warning(
            "%s: night %s is still being written: left for a later run", found.path, found.night
        )


def _nothing_new(choice: Choice, patterns: list[str]) -> str:
    why = []
    if choice.synced or choice.superseded:
        why.append(
            f"{len(choice.synced) + len(choice.superseded)} file(s) already synced or superseded"
        )
    if choice.waiting:
        why.append(f"{len(choice.waiting)} file(s) still being written")
    if not why:
        why.append(f"no file matches {', '.join(patterns)}")
    return f"{NOTHING_NEW} ({'; '.join(why)})"


def put_away(run: Run, *, read: bool) -> None:
    """Move the landing folder's files to ``processed/`` (``read``: the files read too) and
    record where each file read went. A file that cannot be moved stays, with a warning."""
    landing = run.landing
    if landing is None or run.spec.dry_run:
        return
    files: list[Found] = []
    for choice in (landing.customers, landing.instruments):
        files.extend(choice.superseded)
        files.extend(choice.synced)
        if read:
            files.extend(choice.read)
    for found in files:
        folder = processed_folder(found.path, run.spec.processed)
        try:
            landing.moved[str(found.path)] = str(move(found.path, folder))
            log.info("moved %s to %s", found.path, landing.moved[str(found.path)])
        except OSError as exc:
            landing.not_moved[str(found.path)] = f"{type(exc).__name__}: {exc.strerror or exc}"
            log.warning("%s: could not be moved to %s (%s)", found.path, folder, exc)
    moved = [entry for entry in run.inputs if entry["path"] in landing.moved]
    for entry in moved:
        entry["processed"] = landing.moved[entry["path"]]
    if moved:
        run.record_inputs([])


def known_hashes(run: Run) -> dict[Path, str]:
    """SHA-256 of the files :func:`look` hashed (so the plan stage does not read them again)."""
    if run.landing is None:
        return {}
    chosen = (*run.landing.customers.read, *run.landing.instruments.read)
    return {found.path: found.sha256 for found in chosen if found.sha256}
