"""What the personal-data tests share: generated customers, the real CLI, and the auditor's grep.

The auditor's check is literal: export every table and view of the state file, every column, as
CSV (DuckDB ``COPY … TO``), and search the text for each value a customer ever had.
"""

from __future__ import annotations

import csv
import os
import string
import subprocess
import sys
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
from hypothesis import strategies as st

from connectors.sandbox.server import SandboxServer
from transforms.schema import CANONICAL_COLUMNS

REPO = Path(__file__).resolve().parents[2]
CUSTSYNC = str(Path(sys.executable).with_name("custsync"))

# Letters outside the hexadecimal digits, so that a value can never hide inside a hash, a
# UUID or a run id in the export (a false hit), and non-ASCII ones, to check the redaction of
# text JSON escapes nothing.
UNICODE = "äöüßéèçñøåłžčšđœæÅÖÜÉØŁŽğışţ"
LETTERS = "ghijklmnopqrstuvwxyz" + UNICODE
EMAIL_LETTERS = "ghijklmnopqrstuvwxyz"


def word(low: int = 4, high: int = 14) -> st.SearchStrategy[str]:
    """A name-like value: a non-ASCII letter first, then letters (never hex digits only)."""
    return st.builds(
        lambda head, tail: (head + tail).capitalize(),
        st.sampled_from(UNICODE),
        st.text(alphabet=LETTERS, min_size=low - 1, max_size=high - 1),
    )


def email() -> st.SearchStrategy[str]:
    return st.builds(
        lambda local, domain, n: f"{local}.{n}@{domain}.example",
        st.text(alphabet=EMAIL_LETTERS, min_size=3, max_size=10),
        st.text(alphabet=EMAIL_LETTERS, min_size=3, max_size=10),
        st.integers(1, 999),
    )


def customer(key: str) -> st.SearchStrategy[dict[str, str]]:
    """One canonical extract row for ``key`` (valid for both providers)."""
    return st.fixed_dictionaries(
        {
            "external_id": st.just(key),
            "first_name": word(4, 14),
            "last_name": word(4, 14),
            "email": email(),
            "phone": st.integers(1_000_000, 99_999_999).map(lambda n: f"+44 20 {n}"),
            "birth_date": st.dates(date(1930, 1, 1), date(2005, 12, 31)).map(str),
            "billing_address_1": st.builds(
                lambda w, n: f"{w} {n}", word(4, 20), st.integers(1, 999)
            ),
            "billing_city": word(4, 20),
            "billing_postal_code": st.builds(
                lambda a, n: f"{a}{n} {a}Q", st.sampled_from("KLMNPRSTVWXY"), st.integers(1, 99)
            ),
            "billing_country_code": st.sampled_from(["DE", "FR", "GB", "AT"]),
        }
    )


def customers(count: int = 4) -> st.SearchStrategy[list[dict[str, str]]]:
    """``count`` customers ``P-0001``…: the first is the one a test forgets."""
    return st.tuples(*(customer(f"P-{i:04d}") for i in range(1, count + 1))).map(list)


def write_extract(path: Path, rows: Iterable[Mapping[str, str]]) -> Path:
    """A canonical CSV extract of ``rows``."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CANONICAL_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in CANONICAL_COLUMNS})
    return path


def cli_env(sandbox: SandboxServer, state: Path, **extra: str) -> dict[str, str]:
    """The environment of a CLI run against the sandbox with ``state`` (no Prefect API)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTSYNC_", "PREFECT_API"))}
    env.update(
        CUSTSYNC_STATE=str(state),
        CUSTSYNC_CONFIG=str(state.with_name("absent.toml")),
        CUSTSYNC_SUMUP_BASE_URL=sandbox.base_url,
        CUSTSYNC_SUMUP_API_KEY="sup_sk_sandbox",
        CUSTSYNC_VERIFONE_BASE_URL=sandbox.base_url,
        CUSTSYNC_VERIFONE_TOKEN="sandbox-token",
        CUSTSYNC_VERIFONE_ENTITY_ID="sandbox-entity",
        CUSTSYNC_MAX_REJECT_FRACTION="1",
    )
    env.update(extra)
    return env


def custsync(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the ``custsync`` console script."""
    return subprocess.run(
        [CUSTSYNC, *args], env=dict(env), capture_output=True, text=True, timeout=300
    )


def export_text(state: Path, folder: Path) -> str:
    """Every table and view of ``state``, every column, exported as CSV: their text, joined."""
    folder.mkdir(parents=True, exist_ok=True)
    texts = []
    with duckdb.connect(str(state), read_only=True) as con:
        names = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
                " ORDER BY table_name"
            ).fetchall()
        ]
        for name in names:
            out = folder / f"{name}.csv"
            con.execute(f"COPY (SELECT * FROM {name}) TO '{out}' (HEADER, DELIMITER ',')")
            texts.append(out.read_text(encoding="utf-8"))
    assert {"snapshot", "plan", "rejects", "changes", "outcomes", "suppressed"} <= set(names)
    return "\n".join(texts)


def personal_values(rows: Iterable[Mapping[str, str]]) -> set[str]:
    """The values of ``rows`` but their keys and country codes (two letters are no evidence:
    they occur in any text)."""
    skip = {"external_id", "billing_country_code", "status"}
    return {v for row in rows for k, v in row.items() if k not in skip and v}


def leaked(text: str, victim: set[str], others: set[str]) -> list[str]:
    """The victim's values found in ``text``, but those another customer (still synced) holds
    too, or inside one of theirs."""
    return sorted(v for v in victim if v in text and not any(v in o for o in others))


def v_runs(state: Path, run_ids: Iterable[str] | None = None) -> list[tuple[Any, ...]]:
    """``v_runs`` rows (all, or those of ``run_ids``), by run id."""
    with duckdb.connect(str(state), read_only=True) as con:
        rows = con.execute("SELECT * FROM v_runs ORDER BY run_id").fetchall()
    wanted = None if run_ids is None else set(run_ids)
    return [r for r in rows if wanted is None or r[0] in wanted]


def query(state: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(state), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def with_letters(value: str) -> bool:
    """Whether ``value`` holds a letter (digits-only values are searched structurally)."""
    return any(c in string.ascii_letters or c in UNICODE for c in value)
