"""Who and what started a run: recorded in its ``runs`` row (migration 006).

The custsync version, the machine and operating-system user, the Prefect flow run and
deployment (when there is one), the effective settings (a secret only as ``"set"`` or
``"unset"``) and the input files (path, bytes, SHA-256, data rows, kind; a landing-folder
run adds each file's night and where it was moved). Nothing here is a secret.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from importlib import metadata
from pathlib import Path
from typing import Any

from connectors.providers.registry import providers
from connectors.secret import Secret
from pipelines.landing import sha256
from pipelines.settings import Settings


@dataclass(frozen=True)
class Origin:
    """Where a run was started from: filled by the flow (Prefect's runtime) or left empty."""

    prefect_flow_run_id: str | None = None
    prefect_deployment: str | None = None


@dataclass(frozen=True)
class Provenance:
    """One run's ``runs`` columns of migration 006."""

    custsync_version: str
    host: str
    os_user: str
    prefect_flow_run_id: str | None
    prefect_deployment: str | None
    settings: dict[str, Any]
    inputs: list[dict[str, Any]] = field(default_factory=list)

    def columns(self) -> dict[str, Any]:
        """Column name → value."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _version() -> str:
    try:
        return metadata.version("custsync")
    except metadata.PackageNotFoundError:
        return "unknown"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return "unknown"


def _shown(value: Any) -> Any:
    if isinstance(value, Secret):
        return "set"
    if isinstance(value, Path):
        return str(value)
    return value


def effective_settings(settings: Settings) -> dict[str, Any]:
    """The settings a run used, JSON-able; a secret appears as ``"set"`` or ``"unset"``."""
    out: dict[str, Any] = {
        f.name: _shown(getattr(settings, f.name)) for f in fields(settings) if f.name != "providers"
    }
    for provider in providers():
        values = settings.provider(provider.name)
        secret = {s.name for s in provider.settings if s.secret}
        out[provider.name] = {
            k: ("unset" if v is None and k in secret else _shown(v)) for k, v in values.items()
        }
    return out


def file_facts(
    paths: Sequence[Path],
    *,
    rows: Sequence[int] = (),
    hashes: Mapping[Path, str] | None = None,
) -> list[dict[str, Any]]:
    """Path, size, SHA-256 and (when ``rows`` gives them, in order) data rows of every file.

    A file whose SHA-256 ``hashes`` already holds (the landing folder hashed it to choose it)
    is not read again; any other is read once, in 1 MiB chunks.
    """
    facts = []
    for n, path in enumerate(paths):
        known = (hashes or {}).get(path)
        fact: dict[str, Any] = {
            "path": str(path),
            "bytes": path.stat().st_size,
            "sha256": known or sha256(path),
        }
        if n < len(rows):
            fact["rows"] = rows[n]
        facts.append(fact)
    return facts


def provenance(settings: Settings, origin: Origin, inputs: Sequence[Path] = ()) -> Provenance:
    """What is known of a run when it starts."""
    return Provenance(
        custsync_version=_version(),
        host=socket.gethostname(),
        os_user=_user(),
        prefect_flow_run_id=origin.prefect_flow_run_id,
        prefect_deployment=origin.prefect_deployment,
        settings=effective_settings(settings),
        inputs=file_facts(inputs),
    )
