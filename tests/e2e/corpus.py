"""The bad-input corpus (issue 15): each case's files and what ``custsync sync`` must do with them.

Every case is written per run into its own directory, with keys of its own (``{tag}-A``,
``{tag}-B``) so that runs can share one sandbox at the same time. The broken row of a reject
case, and the repeated key of the overlap case, is a key of the committed sample (``KNOWN``),
so that against an existing snapshot the row that is rejected is one custsync already synced,
whose snapshot row must survive the run untouched.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

KNOWN = ("CRM-00001", "CRM-00002", "CRM-00003")
"""Keys of ``data/customers.csv``, one per reject case: in the existing snapshot, and never sent
by any corpus run (one key per case, so that a case that wrongly sends its row fails alone)."""

BIG = 1024 * 1024
"""The 1 MB field: well inside the reader's 16 MiB, far over the 4,096-character field limit."""

Row = dict[str, object]
Builder = Callable[[Path, str, str], list[str]]
"""(directory, tag, format) → the command-line arguments naming the input."""


@dataclass(frozen=True)
class Case:
    """One corpus entry: how to build it and what the run must end in."""

    name: str
    formats: tuple[str, ...]
    build: Builder
    rc: int
    what: str
    """What custsync does, in the words of the README table."""
    says: tuple[str, ...] = ()
    """Fragments of the one error line (exit 2 or 3)."""
    rejects: frozenset[tuple[str, str, str]] = frozenset()
    """(key, field, rule) the run must store; ``{tag}`` is replaced by the run's tag."""
    sent: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """key → {dotted path in the SumUp customer: value} the sandbox must hold afterwards."""
    warns: tuple[str, ...] = ()
    """Fragments of warnings the run must print (and still succeed)."""
    reject_rows: int = 0
    """How many rows the ``rejects`` table must hold for the run (one per key, field and
    rule; ``unique``: one per row)."""
    reject_message: str = ""
    """A fragment every stored reject's message holds."""


def person(key: str, first: str = "Ann", last: str = "Smith", **more: object) -> Row:
    """A row valid for SumUp (and Verifone)."""
    return {
        "external_id": key,
        "first_name": first,
        "last_name": last,
        "email": f"{key.lower()}@example.com",
        **more,
    }


def write_rows(directory: Path, name: str, fmt: str, rows: list[Row]) -> Path:
    """``rows`` as ``name.csv`` (RFC 4180, as polars writes it) or ``name.parquet``, all text."""
    columns = list(dict.fromkeys(c for row in rows for c in row))
    frame = pl.DataFrame(
        [{c: row.get(c) for c in columns} for row in rows], schema=dict.fromkeys(columns, pl.String)
    )
    path = directory / f"{name}.{fmt}"
    if fmt == "csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    return path


def _bytes(name: str, content: bytes) -> Builder:
    def build(directory: Path, tag: str, fmt: str) -> list[str]:
        path = directory / name
        path.write_bytes(content.replace(b"{tag}", tag.encode()))
        return [str(path)]

    return build


def _rows(make: Callable[[str], list[Row]]) -> Builder:
    def build(directory: Path, tag: str, fmt: str) -> list[str]:
        return [str(write_rows(directory, "extract", fmt, make(tag)))]

    return build


def _two_rows(tag: str) -> list[Row]:
    return [person(f"{tag}-A"), person(f"{tag}-B", "Bob", "Lee")]


def _header_only(directory: Path, tag: str, fmt: str) -> list[str]:
    if fmt == "csv":
        path = directory / "extract.csv"
        path.write_text("external_id,first_name,last_name\n")
    else:
        path = directory / "extract.parquet"
        pl.DataFrame(schema={"external_id": pl.String, "first_name": pl.String}).write_parquet(path)
    return [str(path)]


def _zero_bytes(directory: Path, tag: str, fmt: str) -> list[str]:
    path = directory / f"extract.{fmt}"
    path.write_bytes(b"")
    return [str(path)]


def _truncated(directory: Path, tag: str, fmt: str) -> list[str]:
    whole = write_rows(directory, "whole", "parquet", [person(f"{tag}-{i}") for i in range(200)])
    path = directory / "extract.parquet"
    content = whole.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    return [str(path)]


def _duplicate_column(directory: Path, tag: str, fmt: str) -> list[str]:
    if fmt == "csv":
        path = directory / "extract.csv"
        path.write_text(f"external_id,first_name,first_name\n{tag}-A,Ann,Anna\n")
    else:
        path = directory / "extract.parquet"
        table = pa.table(
            [pa.array([f"{tag}-A"]), pa.array(["Ann"]), pa.array(["Anna"])],
            names=["external_id", "first_name", "first_name"],
        )
        pq.write_table(table, path)
    return [str(path)]


def _semicolon(directory: Path, tag: str, fmt: str) -> list[str]:
    path = directory / "extract.csv"
    path.write_text(
        "external_id;first_name;last_name\n"
        f"{tag}-A;Ann;Smith\n"
        f'{tag}-B;"Bob; Jr";Lee\n'  # a quoted delimiter stays in the value
    )
    return [str(path)]


def _semicolon_mapped(directory: Path, tag: str, fmt: str) -> list[str]:
    mapping = directory / "mapping.toml"
    mapping.write_text('[csv]\ndelimiter = ";"\n')
    return [*_semicolon(directory, tag, fmt), "--mapping", str(mapping)]


def _missing(directory: Path, tag: str, fmt: str) -> list[str]:
    return [str(directory / "nope.csv")]


def _glob_nothing(directory: Path, tag: str, fmt: str) -> list[str]:
    return [str(directory / "exports" / "*.csv")]


def _directory(directory: Path, tag: str, fmt: str) -> list[str]:
    folder = directory / "exports"
    folder.mkdir()
    write_rows(folder, "extract", "csv", _two_rows(tag))
    return [str(folder)]


def _unknown_column(tag: str) -> list[Row]:
    return [person(f"{tag}-A", crm_score="7"), person(f"{tag}-B", "Bob", "Lee", crm_score="9")]


def _parquet_types(directory: Path, tag: str, fmt: str) -> list[str]:
    path = directory / "extract.parquet"
    pl.DataFrame(
        {
            "external_id": [f"{tag}-A"],
            "first_name": ["Ann"],
            "last_name": ["Smith"],
            "phone": [31612345678],  # an Int64 column: read as text, with a warning
            "birth_date": [dt.date(1990, 5, 17)],  # a Date column: YYYY-MM-DD
        }
    ).write_parquet(path)
    return [str(path)]


def _line_break(tag: str) -> list[Row]:
    return [
        person(f"{tag}-A", billing_address_1="Hof 2\nHinterhaus"),
        person(f"{tag}-B", "Bob", "Lee", billing_address_1="  Main St 1\r\nFloor 2  "),
    ]


def _big_field(tag: str) -> list[Row]:
    return [*_two_rows(tag), person(KNOWN[0], "x" * BIG)]


def _nul(tag: str) -> list[Row]:
    return [*_two_rows(tag), person(KNOWN[1], "An\x00n")]


def _overlap(directory: Path, tag: str, fmt: str) -> list[str]:
    first = write_rows(directory, "first", "csv", [person(f"{tag}-A"), person(KNOWN[2])])
    second = write_rows(directory, "second", fmt, [person(KNOWN[2], "Jan"), person(f"{tag}-B")])
    return [str(first), str(second)]


_A_B = {"{tag}-A": {"personal_details.first_name": "Ann"}, "{tag}-B": {}}

CASES: tuple[Case, ...] = (
    Case(
        "ragged_row",
        ("csv",),
        _bytes("extract.csv", b"external_id,first_name\n{tag}-A,Ann\n{tag}-B,Bob,Lee\n"),
        2,
        "stops before anything is sent; names file and line: `the row has 3 fields but the "
        "header has 2`",
        says=("extract.csv", "line 3", "3 fields", "header has 2"),
    ),
    Case(
        "latin1_bytes",
        ("csv",),
        _bytes(
            "extract.csv", "external_id,first_name\n{tag}-A,Ann\n{tag}-B,Jörg\n".encode("cp1252")
        ),
        2,
        "stops; names file and line: `the file is not valid UTF-8 here; export it as UTF-8`",
        says=("extract.csv", "line 3", "UTF-8"),
    ),
    Case(
        "utf8_bom",
        ("csv",),
        _bytes("extract.csv", b"\xef\xbb\xbfexternal_id,first_name,last_name\n{tag}-A,Ann,Smith\n"),
        0,
        "read as UTF-8; the BOM is not part of the first column's name",
        sent={"{tag}-A": {"personal_details.first_name": "Ann"}},
    ),
    Case(
        "crlf",
        ("csv",),
        _bytes("extract.csv", b"external_id,first_name,last_name\r\n{tag}-A,Ann,Smith\r\n"),
        0,
        "read; `\\r\\n` ends a line and is not part of the last value",
        sent={"{tag}-A": {"personal_details.last_name": "Smith"}},
    ),
    Case(
        "header_only",
        ("csv", "parquet"),
        _header_only,
        3,
        "a valid, empty extract: the empty-extract guard stops the run (`--allow-empty` lets "
        "it through)",
        says=("no valid rows", "--allow-empty"),
    ),
    Case(
        "zero_bytes",
        ("csv", "parquet"),
        _zero_bytes,
        2,
        "stops; names the file: `the file is empty: it has no header row` (CSV), `the file is "
        "empty (0 bytes): not a Parquet file`",
        says=("extract.", "empty"),
    ),
    Case(
        "parquet_int_and_date",
        ("parquet",),
        _parquet_types,
        0,
        "integer columns read as text with a warning; `Date` columns as `YYYY-MM-DD`",
        sent={
            "{tag}-A": {
                "personal_details.phone": "31612345678",
                "personal_details.birth_date": "1990-05-17",
            }
        },
        warns=("'phone' is Int64, read as text",),
    ),
    Case(
        "column_named_twice",
        ("csv", "parquet"),
        _duplicate_column,
        2,
        "stops; names file and column: `the header names this column twice (columns 2 and 3)`",
        says=("extract.", "'first_name'", "twice", "columns 2 and 3"),
    ),
    Case(
        "unknown_column",
        ("csv", "parquet"),
        _rows(_unknown_column),
        0,
        "ignored, with a warning naming it; the run proceeds",
        sent=_A_B,
        warns=("ignored column(s) not in the extract format: crm_score",),
    ),
    Case(
        "field_of_1_mb",
        ("csv", "parquet"),
        _rows(_big_field),
        1,
        "that row rejected (`max_field_size`, over 4,096 characters), not sent; the others sync",
        rejects=frozenset({(KNOWN[0], "first_name", "max_field_size")}),
        reject_rows=1,
        sent=_A_B,
    ),
    Case(
        "nul_byte_in_a_value",
        ("csv", "parquet"),
        _rows(_nul),
        1,
        "read as a value (not truncated); that row rejected (`control_character`), not sent",
        rejects=frozenset({(KNOWN[1], "first_name", "control_character")}),
        reject_rows=1,
        sent=_A_B,
    ),
    Case(
        "missing_file",
        ("csv",),
        _missing,
        2,
        "stops before Prefect starts: `extract: <path>: no such file`",
        says=("nope.csv", "no such file"),
    ),
    Case(
        "glob_matching_nothing",
        ("csv",),
        _glob_nothing,
        2,
        "stops before Prefect starts: `extract: <pattern>: no file matches this pattern`",
        says=("*.csv", "no file matches"),
    ),
    Case(
        "a_directory",
        ("csv",),
        _directory,
        2,
        "stops before Prefect starts: `<dir>: is a directory; name the files in it, e.g. a glob "
        "such as DIR/*.csv`",
        says=("exports", "is a directory", "DIR/*.csv"),
    ),
    Case(
        "truncated_parquet",
        ("parquet",),
        _truncated,
        2,
        "stops; names the file: `not a readable Parquet file: truncated, damaged or not Parquet`",
        says=("extract.parquet", "not a readable Parquet file", "truncated"),
    ),
    Case(
        "keys_overlap_across_files",
        ("csv", "parquet"),
        _overlap,
        1,
        "both rows with the key rejected (`unique`, never first-wins: a reject for each row, "
        "its message counting the rows), not sent; the others sync",
        rejects=frozenset({(KNOWN[2], "external_id", "unique")}),
        reject_rows=2,
        reject_message="appears in 2 rows; every one is rejected",
        sent=_A_B,
    ),
    Case(
        "semicolon_delimited",
        ("csv",),
        _semicolon,
        2,
        "stops: `the required column is missing from the header; it looks separated by ';': "
        'set [csv] delimiter = ";" in a column-mapping file (--mapping)`',
        says=("extract.csv", "line 1", "'external_id'", '[csv] delimiter = ";"', "--mapping"),
    ),
    Case(
        "semicolon_with_mapping",
        ("csv",),
        _semicolon_mapped,
        0,
        'read with `[csv] delimiter = ";"` in the mapping file',
        sent={
            "{tag}-A": {"personal_details.first_name": "Ann"},
            "{tag}-B": {"personal_details.first_name": "Bob; Jr"},
        },
    ),
    Case(
        "quoted_line_break",
        ("csv", "parquet"),
        _rows(_line_break),
        0,
        "one value, sent exactly as read (`\\n`, `\\r\\n` kept; only the ends are trimmed)",
        sent={
            "{tag}-A": {"personal_details.address.line_1": "Hof 2\nHinterhaus"},
            "{tag}-B": {"personal_details.address.line_1": "Main St 1\r\nFloor 2"},
        },
    ),
)
