"""The reader's side of the bad-input corpus (issue 15): what reaches validation, and the
errors that name file, line or column. The same cases run end to end in tests/e2e/test_corpus.py.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.extract import ExtractError, read_extract
from transforms.normalise import normalise

CONTROL = "".join(chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F))
"""The characters the ``control_character`` rule rejects: C0 but TAB, LF, CR; and DEL."""


def _error(paths: list[Path], **kwargs: Path) -> ExtractError:
    with pytest.raises(ExtractError) as info:
        read_extract(paths, **kwargs).frame.collect()
    assert "\n" not in str(info.value)
    return info.value


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_control_characters_reach_validation_as_read(tmp_path: Path, fmt: str) -> None:
    # Validation decides what a control character gets; the reader must neither fail on one nor
    # drop or truncate the value at a NUL (C strings would).
    values = [f"An{c}n" for c in CONTROL]
    frame = pl.DataFrame(
        {"external_id": [f"K{i}" for i in range(len(values))], "first_name": values}
    )
    path = tmp_path / f"x.{fmt}"
    if fmt == "csv":
        frame.write_csv(path)
        path.write_bytes(path.read_bytes().replace(b"K0,", b"K\x000,"))  # and one in a key
    else:
        frame.write_parquet(path)
    read = normalise(read_extract([path]).frame).collect()
    assert read["first_name"].to_list() == values
    assert read["external_id"][0] == ("K\x000" if fmt == "csv" else "K0")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_line_break_inside_a_value_is_kept_and_only_the_ends_are_trimmed(
    tmp_path: Path, fmt: str
) -> None:
    frame = pl.DataFrame(
        {"external_id": ["1", "2"], "billing_address_1": ["Hof 2\nHaus", " A\r\nB "]}
    )
    path = tmp_path / f"x.{fmt}"
    if fmt == "csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    read = normalise(read_extract([path]).frame).collect()
    assert read["billing_address_1"].to_list() == ["Hof 2\nHaus", "A\r\nB"]


def test_a_semicolon_export_hints_at_the_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("external_id;first_name\n1;Ann\n")
    error = _error([path])
    assert error.column == "external_id" and error.line == 1
    assert 'set [csv] delimiter = ";" in a column-mapping file (--mapping)' in error.message
    mapping = tmp_path / "m.toml"
    mapping.write_text('[csv]\ndelimiter = ";"\n')
    assert read_extract([path], mapping=mapping).frame.collect()["first_name"].to_list() == ["Ann"]


@pytest.mark.parametrize(
    ("header", "hint"), [("a\tb", 'delimiter = "\\t"'), ("a|b", 'delimiter = "|"'), ("a,b", None)]
)
def test_other_delimiters_hint_too_and_a_plain_missing_key_does_not(
    tmp_path: Path, header: str, hint: str | None
) -> None:
    path = tmp_path / "x.csv"
    path.write_text(f"{header}\n1\n" if "," not in header else f"{header}\n1,2\n")
    message = _error([path]).message
    assert (hint in message) if hint else ("delimiter" not in message)


def test_a_directory_is_named_as_one(tmp_path: Path) -> None:
    (tmp_path / "exports").mkdir()
    error = _error([tmp_path / "exports"])
    assert error.file == str(tmp_path / "exports") and "is a directory" in error.message


def test_a_parquet_column_named_twice_is_named(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    table = pa.table([pa.array(["1"]), pa.array(["a"]), pa.array(["b"])], ["external_id", "e", "e"])
    pq.write_table(table, path)
    error = _error([path])
    assert error.column == "e" and error.line is None
    assert error.message == "the file's schema names this column twice (columns 2 and 3)"


def test_a_zero_byte_parquet_file(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    path.write_bytes(b"")
    assert "empty (0 bytes)" in _error([path]).message


def _parquet(path: Path, rows: int = 2000) -> bytes:
    pl.DataFrame(
        {"external_id": [f"K{i}" for i in range(rows)], "first_name": ["Ann" * 10] * rows}
    ).write_parquet(path)
    return path.read_bytes()


def test_a_truncated_parquet_file(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    content = _parquet(path)
    path.write_bytes(content[: len(content) // 2])
    error = _error([path])
    assert error.file == str(path) and "truncated" in error.message


def test_damaged_parquet_pages_are_an_extract_error_not_a_crash_later(tmp_path: Path) -> None:
    # The footer is intact, so the schema reads; the damage shows only when pages are decoded,
    # which would otherwise happen inside the planner, as a polars error and a traceback.
    path = tmp_path / "x.parquet"
    content = bytearray(_parquet(path))
    content[200:400] = b"\xff" * 200
    path.write_bytes(bytes(content))
    assert pq.read_schema(path).names == ["external_id", "first_name"]
    result = read_extract([path])  # lazily: the pages are decoded when the plan collects them
    with pytest.raises(pl.exceptions.PolarsError):
        result.frame.collect()
    with pytest.raises(ExtractError) as raised:
        result.check_readable()
    assert raised.value.file == str(path) and "damaged data pages" in raised.value.message


def test_an_intact_parquet_file_checks_readable(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    _parquet(path)
    read_extract([path]).check_readable()
