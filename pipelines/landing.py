"""The landing folder: which of the files a nightly run's glob matches it reads, and where
they go afterwards.

A CRM drops one full extract a night into a folder (``data/incoming/``), sometimes split into
parts. A run with ``landing`` set reads its extract glob by these rules (the README's "The
landing folder" tells the life cycle):

- **Night.** A file belongs to the night of the stamp in its name: the first date written
  ``YYYYMMDD`` or ``YYYY-MM-DD``, with the time when one follows at once (``20261205T0230``,
  ``202612050230``); a name without one, to the UTC date of its modification time. All files
  of one night are one extract (its parts); nights compare by stamp.
- **Still being written.** A file named ``*.part`` (the pattern's files with ``.part``
  appended count too), or one whose size or modification time changed between two looks
  ``landing_settle_s`` apart. Its whole night waits, left in place.
- **Already synced.** A file whose SHA-256 an earlier run of the same target read and synced
  (:meth:`~pipelines.state.runs.Runs.synced_inputs`), or whose night is not newer than the
  newest night already synced (an older full extract never rolls a mirror back).
- **Read.** Customers: only the newest complete night of new files; older complete nights
  are *superseded* (a full extract replaces them): never read. Instruments (deactivation
  lists, which add up rather than replace each other): every complete new file.
- **Moved.** To ``processed/`` (beside the landing folder unless set), never deleted, never
  over a file of the same name (a ``.1``, ``.2``... goes before the extension). Files read
  move once the run got past planning and its guards; superseded and already-synced files move
  with any run that is not a dry run; files still being written never move.

:func:`choose` is the rule on plain values (the tests compare it with a model); :func:`scan`
looks at the folder and :func:`move` moves files.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import time
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PART = ".part"
"""The suffix of a file its writer has not finished."""

_STAMP = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?:T?(\d{4}(?:\d{2})?))?(?!\d)")
_CHUNK = 1 << 20
_GLOB_CHARS = re.compile(r"[*?\[]")


def night_of(name: str, mtime: float) -> str:
    """The night a file belongs to: the stamp in its ``name``, else its modification date."""
    match = _STAMP.search(name)
    if match is None:
        return datetime.fromtimestamp(mtime, UTC).strftime("%Y%m%d")
    year, month, day, clock = match.groups()
    return f"{year}{month}{day}{'T' + clock if clock else ''}"


@dataclass(frozen=True)
class Found:
    """One file the glob matched, as :func:`scan` saw it."""

    path: Path
    night: str
    size: int
    writing: bool
    """A ``.part`` file, or its size or modification time changed while looked at."""
    sha256: str | None = None
    """Known for every file not being written."""


@dataclass(frozen=True)
class Choice:
    """What a run does with the files of a landing folder."""

    read: tuple[Found, ...] = ()
    """The files to read: one night (customers), or every new complete file (instruments)."""
    night: str | None = None
    """The night read (customers)."""
    superseded: tuple[Found, ...] = ()
    """Complete new files of an older night than the one read, or of a night not newer than
    the newest one synced: never read, moved."""
    synced: tuple[Found, ...] = ()
    """Files an earlier run already read and synced (same SHA-256): not read again, moved."""
    waiting: tuple[Found, ...] = ()
    """Files of a night still being written: left in place for a later run."""

    def report(self) -> dict[str, Any]:
        """The choice as the run summary's ``landing`` entry (paths by group)."""
        return {
            "night": self.night,
            "read": [str(f.path) for f in self.read],
            "superseded": [str(f.path) for f in self.superseded],
            "already_synced": [str(f.path) for f in self.synced],
            "still_being_written": [str(f.path) for f in self.waiting],
        }


def choose(
    found: Sequence[Found],
    *,
    seen: Set[str],
    synced_night: str | None,
    newest_only: bool = True,
) -> Choice:
    """Split ``found`` into read, superseded, already synced and waiting.

    ``seen``: SHA-256 of files earlier runs synced; ``synced_night``: the newest night synced
    (``None``: none yet); ``newest_only``: read one night (a customers extract), else every
    complete new file (instruments).
    """
    busy_nights = {f.night for f in found if f.writing}
    waiting = tuple(f for f in found if f.night in busy_nights)
    complete = [f for f in found if f.night not in busy_nights]
    synced = tuple(f for f in complete if f.sha256 in seen)
    new = [f for f in complete if f.sha256 not in seen]
    stale = [f for f in new if synced_night is not None and f.night <= synced_night]
    fresh = [f for f in new if f not in stale]
    if not newest_only:
        return Choice(read=tuple(fresh), superseded=tuple(stale), synced=synced, waiting=waiting)
    night = max((f.night for f in fresh), default=None)
    read = tuple(f for f in fresh if f.night == night)
    superseded = tuple(stale) + tuple(f for f in fresh if f.night != night)
    return Choice(read, night, superseded, synced, waiting)


@dataclass
class Landing:
    """A run's landing-folder choices: customers and instruments."""

    customers: Choice
    instruments: Choice = field(default_factory=Choice)
    moved: dict[str, str] = field(default_factory=dict)
    """Source path → where it went in ``processed/``."""
    not_moved: dict[str, str] = field(default_factory=dict)
    """Source path → why it could not be moved (it stays for a later run)."""

    @property
    def nothing_new(self) -> bool:
        """No new complete customers extract (instruments alone are not a night)."""
        return not self.customers.read

    def report(self) -> dict[str, Any]:
        """The summary's ``landing`` entry."""
        return {
            **self.customers.report(),
            "instruments": self.instruments.report() | {"night": None},
            "moved": dict(self.moved),
            "not_moved": dict(self.not_moved),
        }


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None  # gone between the glob and the look: not ours to read
    return st.st_size, st.st_mtime_ns


def sha256(path: Path) -> str:
    """The file's SHA-256 (read once, in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def matches(patterns: Iterable[str]) -> list[Path]:
    """Files the patterns match, and the ``.part`` files of the same names (sorted, once)."""
    hits: set[Path] = set()
    for pattern in patterns:
        for candidate in (pattern, pattern + PART):
            if _GLOB_CHARS.search(candidate):
                found = glob.glob(candidate, recursive=True)  # noqa: PTH207
            else:
                found = [candidate]
            hits.update(Path(p) for p in found if Path(p).is_file())
    return sorted(hits)


def scan(groups: Sequence[Sequence[str]], *, settle_s: float) -> list[list[Found]]:
    """Look at the files each group of patterns matches twice, ``settle_s`` apart (one wait
    for all); hash the ones not being written. A file that vanished meanwhile is left out."""
    paths = [matches(patterns) for patterns in groups]
    first = {path: _stat(path) for group in paths for path in group}
    if settle_s > 0 and first:
        time.sleep(settle_s)
    return [_found(group, first, settle_s) for group in paths]


def _found(
    paths: Sequence[Path], first: dict[Path, tuple[int, int] | None], settle_s: float
) -> list[Found]:
    found = []
    for path in paths:
        before, after = first[path], _stat(path)
        if before is None or after is None:
            continue
        name = path.name.removesuffix(PART)
        writing = path.name.endswith(PART) or before != after
        digest = None if writing else sha256(path)
        night = night_of(name, after[1] / 1e9)
        found.append(Found(path, night, after[0], writing, digest))
    return found


def landing_folders_missing(patterns: Iterable[str]) -> list[str]:
    """The folders of ``patterns`` (up to their first wildcard) that do not exist."""
    missing = []
    for pattern in patterns:
        parts = Path(pattern).parts
        fixed = next((i for i, part in enumerate(parts) if _GLOB_CHARS.search(part)), None)
        folder = Path(*parts[:fixed]) if fixed else Path(pattern).parent
        if not folder.is_dir():
            missing.append(str(folder))
    return missing


def processed_folder(path: Path, processed: str | None) -> Path:
    """Where ``path`` goes: ``processed`` when set, else ``processed/`` beside its folder."""
    if processed:
        return Path(processed)
    return path.absolute().parent.parent / "processed"


def _free_name(folder: Path, name: str, n: int) -> Path:
    if n == 0:
        return folder / name
    stem, dot, suffix = name.rpartition(".")
    return folder / (f"{stem}.{n}.{suffix}" if dot and stem else f"{name}.{n}")


def move(path: Path, folder: Path) -> Path:
    """Move ``path`` into ``folder`` (created if need be) under a name nothing has there: the
    file's own, else with ``.1``, ``.2``... before its extension. Never overwrites."""
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    while True:
        target = _free_name(folder, path.name, n)
        try:
            os.link(path, target)  # fails if the target exists: no overwrite, ever
        except FileExistsError:
            n += 1
            continue
        except OSError:  # another file system (or no hard links): copy, exclusively
            try:
                with path.open("rb") as src, target.open("xb") as dst:
                    shutil.copyfileobj(src, dst)
            except FileExistsError:
                n += 1
                continue
            shutil.copystat(path, target)
        path.unlink()
        return target
