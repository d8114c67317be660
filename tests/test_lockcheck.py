"""The version-claim checker finds wrong claims and passes right ones (tests/lockcheck.py)."""

from __future__ import annotations

from typing import Any

from tests import lockcheck

VERSIONS = {"prefect": "3.9.1", "fastapi": "0.150.0", "httpx-aiohttp": "0.2.0", "aiohttp": "3.14.5"}
PYPROJECT: dict[str, Any] = {
    "project": {
        "dependencies": ["prefect>=3.8,<3.10", "fastapi>=0.140,<0.151"],
        "optional-dependencies": {"fast": ["aiohttp>=3.9", "httpx-aiohttp>=0.1.8"]},
    }
}
RANGES = lockcheck.declared_ranges(PYPROJECT)


def claims(text: str) -> list[str]:
    return [m.claim for m in lockcheck.text_mismatches(text, "README.md", VERSIONS, RANGES)]


def test_a_wrong_exact_version_in_prose_is_found_with_its_line() -> None:
    found = lockcheck.text_mismatches(
        "Versions\n\nruns on Prefect 3.8.8 today", "README.md", VERSIONS, RANGES
    )
    assert [(m.where, m.claim, m.locked) for m in found] == [
        ("README.md:3", "Prefect 3.8.8", "prefect 3.9.1")
    ]


def test_the_locked_version_passes_in_every_spelling() -> None:
    assert (
        claims("prefect 3.9.1, `prefect==3.9.1`, Prefect version 3.9.1, httpx_aiohttp 0.2.0") == []
    )


def test_pinned_and_spelled_variants_are_claims_too() -> None:
    assert claims("install prefect==3.8.8 and HTTPX_aiohttp 0.1.9") == [
        "prefect==3.8.8",
        "HTTPX_aiohttp 0.1.9",
    ]


def test_a_version_table_row_is_a_claim() -> None:
    table = "| package | locked |\n|---|---|\n| prefect | 3.8.8 |\n| fastapi | 0.150.0 |"
    assert claims(table) == ["prefect | 3.8.8"]


def test_a_longer_name_is_not_a_claim_about_its_tail() -> None:
    # "httpx-aiohttp 0.2.0" says nothing about aiohttp 3.14.5.
    assert claims("the httpx-aiohttp 0.2.0 transport") == []


def test_ranges_and_release_lines_in_prose_are_history_not_claims() -> None:
    text = "fastapi 0.155.0+ broke prefect 3.8; fastapi 0.151.0–0.154.0 answered 422"
    assert claims(text) == []


def test_a_quoted_range_must_be_pyprojects_own() -> None:
    assert claims("pins: `prefect>=3.8,<3.10` with `fastapi>=0.140,<0.151`") == []
    assert claims("pins: `prefect>=3.8,<3.9`") == ["prefect>=3.8,<3.9"]


def test_prefect_yaml_prefect_version_must_be_the_locked_one() -> None:
    wrong = lockcheck.prefect_yaml_mismatches(
        {"prefect-version": "3.8.8"}, "prefect.yaml", VERSIONS
    )
    assert [str(m) for m in wrong] == [
        "prefect.yaml: says 'prefect-version: 3.8.8'; locked: prefect 3.9.1"
    ]
    assert lockcheck.prefect_yaml_mismatches({"prefect-version": "3.9.1"}, "y", VERSIONS) == []
    assert lockcheck.prefect_yaml_mismatches({"name": "custsync"}, "y", VERSIONS) == []


def test_a_pyproject_range_that_excludes_the_locked_version_is_found() -> None:
    # The old claim "3.9 does not resolve" as a range: the lock holds 3.9.1.
    ranges = lockcheck.declared_ranges({"project": {"dependencies": ["prefect>=3.8,<3.9"]}})
    found = lockcheck.range_mismatches(ranges, VERSIONS, "pyproject.toml")
    assert [(m.claim, m.locked) for m in found] == [("prefect<3.9,>=3.8", "prefect 3.9.1")]
    assert lockcheck.range_mismatches(RANGES, VERSIONS, "pyproject.toml") == []


def test_a_pyproject_requirement_missing_from_the_lock_is_found() -> None:
    ranges = lockcheck.declared_ranges({"project": {"dependencies": ["stripe>=12"]}})
    found = lockcheck.range_mismatches(ranges, VERSIONS, "pyproject.toml")
    assert [m.locked for m in found] == ["no such package"]


LOCK: dict[str, Any] = {
    "package": [
        {
            "name": "custsync",
            "version": "0.1.0",
            "source": {"editable": "."},
            "dependencies": [
                {"name": "uvicorn", "extra": ["standard"]},
                {"name": "pywin32", "marker": "sys_platform == 'win32'"},
            ],
            "optional-dependencies": {"dev": [{"name": "pytest"}]},
        },
        {
            "name": "uvicorn",
            "version": "0.54.0",
            "source": {"registry": "https://pypi.org/simple"},
            "optional-dependencies": {"standard": [{"name": "uvloop"}]},
        },
        {"name": "uvloop", "version": "0.23.0", "source": {"registry": "r"}},
        {"name": "pywin32", "version": "312", "source": {"registry": "r"}},
        {"name": "pytest", "version": "9.2.0", "source": {"registry": "r"}},
    ]
}
LINUX = {"sys_platform": "linux"}


def test_expected_packages_follow_extras_and_markers() -> None:
    assert lockcheck.expected_packages(LOCK, ["dev"], LINUX) == {
        "custsync": "0.1.0",
        "uvicorn": "0.54.0",
        "uvloop": "0.23.0",
        "pytest": "9.2.0",
    }
    assert "pytest" not in lockcheck.expected_packages(LOCK, [], LINUX)
    assert "pywin32" in lockcheck.expected_packages(LOCK, [], {"sys_platform": "win32"})


def test_an_installed_version_other_than_the_lock_is_found() -> None:
    expected = lockcheck.expected_packages(LOCK, ["dev"], LINUX)
    exact = dict(expected)
    assert lockcheck.installed_mismatches(expected, {**exact, "pip": "26.3"}, "venv") == []

    drifted = {**exact, "uvloop": "0.22.0", "rich": "15.0.0"}
    del drifted["pytest"]
    found = lockcheck.installed_mismatches(expected, drifted, "venv")
    assert [str(m) for m in found] == [
        "venv: says 'pytest not installed'; locked: pytest 9.2.0",
        "venv: says 'rich 15.0.0 installed'; locked: not in the lock",
        "venv: says 'uvloop 0.22.0 installed'; locked: uvloop 0.23.0",
    ]
