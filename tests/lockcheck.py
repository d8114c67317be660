"""Does what the repository says about versions agree with ``uv.lock``?

Four kinds of claim are checked, each by one function returning the disagreements it finds
(an empty list when everything agrees):

- :func:`text_mismatches`: prose (README, docs, prefect.yaml's comments). An exact version
  next to a locked package's name (``prefect 3.9.1``, ``prefect==3.9.1``, a table row
  ``| prefect | 3.9.1 |``) must be the locked one; a range quoted in backticks
  (```prefect>=3.8,<3.10```) must be pyproject's own range. Open mentions (``fastapi 0.155+``,
  ``0.151–0.154``, ``prefect 3.8``) are history, not claims, and are left alone.
- :func:`prefect_yaml_mismatches`: prefect.yaml's ``prefect-version``.
- :func:`range_mismatches`: every requirement in pyproject.toml holds its locked version.
- :func:`installed_mismatches`: the running venv holds exactly what the lock resolves for it.

Pure functions over text and parsed documents, so a test can feed each a wrong claim.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

# Installers a venv may carry besides the lock (python -m venv seeds pip); they run nothing of
# ours.
SEED_TOOLS = frozenset({"pip", "setuptools", "wheel"})

_VERSION = r"\d+(?:\.\d+){2,}(?:\.?(?:post|dev|rc|a|b)\d+)?"


@dataclass(frozen=True)
class Mismatch:
    """One claim that disagrees with the lock: where it is, what it says, what is locked."""

    where: str
    claim: str
    locked: str

    def __str__(self) -> str:
        return f"{self.where}: says {self.claim!r}; locked: {self.locked}"


def normalise(name: str) -> str:
    """A distribution name as the lock spells it (PEP 503: lowercase, runs of -_. to -)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(lock: Mapping[str, Any]) -> dict[str, str]:
    """Package name → version for every package of a parsed ``uv.lock``."""
    return {normalise(p["name"]): str(p["version"]) for p in lock["package"]}


def declared_ranges(pyproject: Mapping[str, Any]) -> dict[str, list[Requirement]]:
    """Package name → its requirements in pyproject.toml (dependencies and every extra)."""
    project = pyproject["project"]
    lines: list[str] = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        lines.extend(extra)
    ranges: dict[str, list[Requirement]] = {}
    for line in lines:
        requirement = Requirement(line)
        ranges.setdefault(normalise(requirement.name), []).append(requirement)
    return ranges


def _name_pattern(names: Iterable[str]) -> str:
    # Longest first, so "httpx-aiohttp" is tried before "httpx"; any of -_. between the parts.
    parts = sorted(names, key=len, reverse=True)
    return "|".join(r"[-_.]".join(map(re.escape, re.split(r"[-_.]", n))) for n in parts)


def text_mismatches(
    text: str,
    where: str,
    versions: Mapping[str, str],
    ranges: Mapping[str, list[Requirement]],
) -> list[Mismatch]:
    """Exact versions and quoted ranges in ``text`` that disagree with the lock or pyproject.

    ``versions`` maps a name to the version every exact claim must state (the lock's, plus
    tools pinned elsewhere such as uv); ``ranges`` holds pyproject's requirements.
    """
    names = _name_pattern(versions)
    found: list[Mismatch] = []
    # The name must not continue a longer word or name ("httpx-aiohttp 0.2.0" is no claim about
    # aiohttp); the version must not continue into a range ("0.155+", "0.151–0.154").
    exact = re.compile(
        rf"(?<![\w.-])(?P<name>{names})(?:==|\s+v?|\s+version\s+|\s*\|\s*)(?P<version>{_VERSION})"
        r"(?![\w+]|\.\d|\s*[–-]\s*\d)",
        re.IGNORECASE,
    )
    quoted = re.compile(rf"`(?P<name>{names})(?P<spec>(?:[<>!=~]=?|===)[^`\s;]*)`", re.IGNORECASE)
    for number, line in enumerate(text.splitlines(), start=1):
        here = f"{where}:{number}"
        for match in exact.finditer(line):
            name = normalise(match["name"])
            if Version(match["version"]) != Version(versions[name]):
                found.append(Mismatch(here, match.group(0), f"{name} {versions[name]}"))
        for match in quoted.finditer(line):
            name = normalise(match["name"])
            claim = match.group(0).strip("`")
            spec = SpecifierSet(match["spec"])
            if [s.operator for s in spec] in (["=="], ["==="]):
                continue  # an exact pin: checked above as an exact claim
            declared = ranges.get(name, [])
            if not any(r.specifier == spec for r in declared):
                said = ", ".join(f"{r.specifier}" for r in declared) or "nothing"
                found.append(Mismatch(here, claim, f"{name} {versions[name]} (pyproject: {said})"))
            elif not spec.contains(versions[name], prereleases=True):
                found.append(Mismatch(here, claim, f"{name} {versions[name]}"))
    return found


def prefect_yaml_mismatches(
    document: Mapping[str, Any], where: str, versions: Mapping[str, str]
) -> list[Mismatch]:
    """prefect.yaml's ``prefect-version`` against the locked prefect (absent is no claim)."""
    stated = document.get("prefect-version")
    if stated is None or Version(str(stated)) == Version(versions["prefect"]):
        return []
    return [Mismatch(where, f"prefect-version: {stated}", f"prefect {versions['prefect']}")]


def range_mismatches(
    ranges: Mapping[str, list[Requirement]], versions: Mapping[str, str], where: str
) -> list[Mismatch]:
    """pyproject requirements that the locked version does not satisfy, or that are unlocked."""
    found: list[Mismatch] = []
    for name, requirements in sorted(ranges.items()):
        for requirement in requirements:
            locked = versions.get(name)
            if locked is None:
                found.append(Mismatch(where, str(requirement), "no such package"))
            elif not requirement.specifier.contains(locked, prereleases=True):
                found.append(Mismatch(where, str(requirement), f"{name} {locked}"))
    return found


def expected_packages(
    lock: Mapping[str, Any], extras: Iterable[str], environment: Mapping[str, str] | None = None
) -> dict[str, str]:
    """What the lock installs here: the project's package with ``extras``, and every dependency
    reached from it whose marker holds in ``environment`` (default: the running interpreter's)."""
    # Marker.evaluate starts from the running interpreter's environment and applies these.
    env: dict[str, str] = {"extra": "", **(environment or {})}
    packages = {normalise(p["name"]): p for p in lock["package"]}
    roots = [n for n, p in packages.items() if {"editable", "virtual"} & set(p["source"])]
    pending: list[tuple[str, tuple[str, ...]]] = [(n, tuple(extras)) for n in roots]
    # Each package's own dependencies, and each of its extras, are followed once.
    visited: set[str] = set()
    followed: set[tuple[str, str]] = set()
    while pending:
        name, wanted = pending.pop()
        package = packages[name]
        edges: list[Mapping[str, Any]] = []
        if name not in visited:
            visited.add(name)
            edges.extend(package.get("dependencies", []))
        for extra in wanted:
            if (name, extra) not in followed:
                followed.add((name, extra))
                edges.extend(package.get("optional-dependencies", {}).get(extra, []))
        for edge in edges:
            marker = edge.get("marker")
            if marker is None or Marker(marker).evaluate(env):
                pending.append((normalise(edge["name"]), tuple(edge.get("extra", []))))
    return {name: str(packages[name]["version"]) for name in visited}


def installed_mismatches(
    expected: Mapping[str, str], installed: Mapping[str, str], where: str
) -> list[Mismatch]:
    """Packages installed at another version than locked, missing, or not in the lock at all."""
    found: list[Mismatch] = []
    for name in sorted(set(expected) | set(installed)):
        want, have = expected.get(name), installed.get(name)
        if have is None:
            found.append(Mismatch(where, f"{name} not installed", f"{name} {want}"))
        elif want is None:
            if name not in SEED_TOOLS:
                found.append(Mismatch(where, f"{name} {have} installed", "not in the lock"))
        elif Version(have) != Version(want):
            found.append(Mismatch(where, f"{name} {have} installed", f"{name} {want}"))
    return found


def read_toml(text: str) -> dict[str, Any]:
    """A TOML document (uv.lock, pyproject.toml) parsed."""
    return tomllib.loads(text)
