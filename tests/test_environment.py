"""The version claims of this repository agree with ``uv.lock``, and so does the running venv.

``make test`` installs exactly the lock (``uv sync --locked``); these tests fail when the README,
the docs, prefect.yaml, the Makefile's uv pin or pyproject's ranges say something else, or when
the venv the suite runs in is not the lock (installed by hand, or left from before a re-lock).
"""

from __future__ import annotations

import importlib.metadata
import re
import sysconfig
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet

from tests import lockcheck

ROOT = Path(__file__).resolve().parent.parent
LOCK = lockcheck.read_toml((ROOT / "uv.lock").read_text(encoding="utf-8"))
PYPROJECT = lockcheck.read_toml((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
RANGES = lockcheck.declared_ranges(PYPROJECT)


def makefile_uv_version() -> str:
    """The uv release the Makefile bootstraps."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(r"^UV_VERSION\s*:?=\s*(\S+)\s*$", text, re.MULTILINE)
    assert match, "Makefile: no UV_VERSION"
    return match[1]


VERSIONS = {**lockcheck.locked_versions(LOCK), "uv": makefile_uv_version()}


def report(mismatches: list[lockcheck.Mismatch]) -> str:
    return "\n".join(map(str, mismatches))


@pytest.mark.parametrize(
    "relative",
    [
        "README.md",
        "prefect.yaml",
        *sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob("docs/*.md")),
    ],
)
def test_prose_states_the_locked_versions(relative: str) -> None:
    text = (ROOT / relative).read_text(encoding="utf-8")
    mismatches = lockcheck.text_mismatches(text, relative, VERSIONS, RANGES)
    assert not mismatches, report(mismatches)


def test_prefect_yaml_names_the_locked_prefect() -> None:
    document = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    mismatches = lockcheck.prefect_yaml_mismatches(document, "prefect.yaml", VERSIONS)
    assert not mismatches, report(mismatches)


def test_pyproject_ranges_hold_the_locked_versions() -> None:
    mismatches = lockcheck.range_mismatches(RANGES, VERSIONS, "pyproject.toml")
    assert not mismatches, report(mismatches)


def test_the_lock_was_made_from_this_pyproject() -> None:
    # uv records the requirements it resolved; an edited pyproject with a stale lock shows here
    # (and `uv sync --locked` in the Makefile refuses it).
    locked = {
        (lockcheck.normalise(r["name"]), SpecifierSet(r.get("specifier", "")))
        for p in LOCK["package"]
        if "editable" in p["source"]
        for r in p["metadata"]["requires-dist"]
    }
    declared = {(name, r.specifier) for name, rs in RANGES.items() for r in rs}
    stale = f"only in pyproject {declared - locked}, only in uv.lock {locked - declared}"
    assert declared == locked, f"run `make lock`: {stale}"


def test_the_running_venv_is_the_lock() -> None:
    site = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    installed: dict[str, str] = {}
    for distribution in importlib.metadata.distributions(path=sorted(site)):
        # First one wins, as for importlib.metadata.version().
        installed.setdefault(
            lockcheck.normalise(distribution.metadata["Name"]), distribution.version
        )
    expected = lockcheck.expected_packages(LOCK, ["fast", "dev"])
    mismatches = lockcheck.installed_mismatches(expected, installed, "this venv")
    assert not mismatches, "run `make test` (it syncs .venv to uv.lock):\n" + report(mismatches)
