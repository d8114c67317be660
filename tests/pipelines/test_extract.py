"""Reading extracts: formats, globs, mappings, and a corpus of bad files."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pipelines.extract import ExtractError, read_extract, read_instruments
from transforms.normalise import normalise
from transforms.schema import CANONICAL_COLUMNS, EXTRACT_SCHEMA
from transforms.validate import validate

DATA = Path(__file__).resolve().parents[2] / "data"


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def test_sample_extract_reads_as_text_with_every_canonical_column() -> None:
    result = read_extract([DATA / "customers.csv"])
    frame = result.frame.collect()
    assert frame.schema == EXTRACT_SCHEMA
    assert frame.height == 40
    assert result.warnings == []
    assert result.files == [DATA / "customers.csv"]
    # postal codes keep their leading zeros, non-ASCII survives
    assert {"0159", "00100"} <= set(frame["billing_postal_code"])
    assert "Łukasz" in frame["first_name"].to_list()


def test_csv_and_parquet_globs_and_several_files(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", "external_id,email\n1,a@example.com\n")
    pl.DataFrame({"external_id": ["2"], "first_name": ["Zoë"]}).write_parquet(
        tmp_path / "b.parquet"
    )
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "c.csv", "external_id\n3\n")
    result = read_extract(
        [tmp_path / "*.csv", str(tmp_path / "b.parquet"), tmp_path / "**" / "c.csv"]
    )
    frame = result.frame.collect()
    assert frame["external_id"].to_list() == ["1", "2", "3"]
    assert frame.columns == list(CANONICAL_COLUMNS)
    assert [p.name for p in result.files] == ["a.csv", "b.parquet", "c.csv"]


def test_bom_crlf_and_quoted_line_breaks(tmp_path: Path) -> None:
    content = (
        b"\xef\xbb\xbfexternal_id,billing_address_1,billing_postal_code\r\n"
        b'1,"Hof 2\r\nHinterhaus",01099\r\n'
        b'2,"Quote ""inside"", comma",00501\r\n'
    )
    frame = read_extract([write(tmp_path / "x.csv", content)]).frame.collect()
    assert frame["external_id"].to_list() == ["1", "2"]
    assert frame["billing_address_1"].to_list() == ["Hof 2\r\nHinterhaus", 'Quote "inside", comma']
    assert frame["billing_postal_code"].to_list() == ["01099", "00501"]


def test_extra_columns_are_ignored_with_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", "external_id,loyalty_points,email\n1,5,a@example.com\n")
    result = read_extract([path])
    assert result.frame.collect()["email"].item() == "a@example.com"
    assert result.warnings == [
        f"{path}: ignored column(s) not in the extract format: loyalty_points"
    ]


def test_column_mapping_renames_crm_columns(tmp_path: Path) -> None:
    mapping = write(
        tmp_path / "map.toml",
        '[columns]\n"Customer No." = "external_id"\n"E-mail" = "email"\n[csv]\ndelimiter = ";"\n',
    )
    path = write(tmp_path / "crm.csv", "Customer No.;E-mail;Notes\n7;Z@Example.com;x\n")
    result = read_extract([path], mapping=mapping)
    frame = result.frame.collect()
    assert frame.select("external_id", "email").row(0) == ("7", "Z@Example.com")
    assert "Notes" in result.warnings[0]


def test_the_example_mapping_file_is_valid(tmp_path: Path) -> None:
    path = write(tmp_path / "crm.csv", '"Customer No.","Given Name","Town"\nK1,Ada,London\n')
    frame = read_extract([path], mapping=DATA / "column_mapping.example.toml").frame.collect()
    assert frame.select("external_id", "first_name", "billing_city").row(0) == (
        "K1",
        "Ada",
        "London",
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[columns]\n"A" = "not_a_column"\n', "not canonical"),
        ('[columns]\n"A" = "email"\n"B" = "email"\n', "several CRM columns"),
        ("[colums]\n", "unknown section"),
        ("[columns\n", "cannot read"),
        ('[csv]\ndelimiter = ";;"\n', "single character"),
    ],
)
def test_bad_mapping_files_are_clear_errors(tmp_path: Path, content: str, message: str) -> None:
    mapping = write(tmp_path / "map.toml", content)
    data = write(tmp_path / "x.csv", "external_id\n1\n")
    with pytest.raises(ExtractError, match=message) as info:
        read_extract([data], mapping=mapping)
    assert info.value.file == str(mapping)


# -- the bad-file corpus: each is one clear error, naming file and line or column ----------


def _error(path: Path) -> ExtractError:
    with pytest.raises(ExtractError) as info:
        read_extract([path]).frame.collect()
    error = info.value
    assert error.file == str(path)
    assert "Traceback" not in str(error) and "\n" not in str(error)
    return error


def test_ragged_row_with_too_many_fields(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", 'external_id,email\n1,a@x.io\n"2\n",b@x.io\n3,c@x.io,extra\n')
    error = _error(path)
    assert error.line == 4
    assert "3 fields" in error.message and "header has 2" in error.message


def test_ragged_row_with_too_few_fields(tmp_path: Path) -> None:
    error = _error(write(tmp_path / "x.csv", "external_id,email,phone\n1,a@x.io,1\n2,b@x.io\n"))
    assert error.line == 3 and "2 fields" in error.message


def test_wrong_encoding_names_the_line(tmp_path: Path) -> None:
    content = "external_id,first_name\n1,Ann\n2,Jörg\n".encode("latin-1")
    error = _error(write(tmp_path / "x.csv", content))
    assert error.line == 3 and "UTF-8" in error.message


def test_wrong_encoding_in_the_header(tmp_path: Path) -> None:
    error = _error(write(tmp_path / "x.csv", "external_id,Straße\n1,x\n".encode("latin-1")))
    assert error.line == 1 and "UTF-8" in error.message


def test_utf16_is_named(tmp_path: Path) -> None:
    error = _error(write(tmp_path / "x.csv", "external_id\n1\n".encode("utf-16")))
    assert "UTF-16" in error.message


def test_unterminated_quote(tmp_path: Path) -> None:
    error = _error(write(tmp_path / "x.csv", 'external_id,email\n1,"a@x.io\n2,b@x.io\n'))
    assert error.line == 2 and "never closed" in error.message


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b"\n"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    assert "empty" in _error(write(tmp_path / "x.csv", content)).message


def test_header_only_is_an_empty_extract_not_an_error(tmp_path: Path) -> None:
    frame = read_extract([write(tmp_path / "x.csv", "external_id,email\n")]).frame.collect()
    assert frame.height == 0 and frame.schema == EXTRACT_SCHEMA


def test_duplicate_headers(tmp_path: Path) -> None:
    error = _error(write(tmp_path / "x.csv", "external_id,email,email\n1,a,b\n"))
    assert error.column == "email" and "columns 2 and 3" in error.message


def test_missing_required_column(tmp_path: Path) -> None:
    error = _error(write(tmp_path / "x.csv", "id,email\n1,a@x.io\n"))
    assert error.column == "external_id" and error.line == 1


def test_a_10_mb_field_is_read_and_rejected_per_row(tmp_path: Path) -> None:
    huge = "x" * (10 * 1024 * 1024)
    path = write(tmp_path / "x.csv", f"external_id,first_name,last_name\n1,{huge},A\n2,Ada,B\n")
    frame = read_extract([path]).frame
    for target in ("verifone", "sumup"):
        result = validate(normalise(frame), target)
        assert result.valid["external_id"].to_list() == ["2"]
        reject = result.rejects.filter(pl.col("rule") == "max_field_size").row(0, named=True)
        assert reject["external_id"] == "1" and reject["value"] == "xxx***"


def test_wrong_types_in_csv_are_per_row_rejects(tmp_path: Path) -> None:
    path = write(
        tmp_path / "x.csv", "external_id,birth_date,tax_id\n1,31/12/1990,12.5\n2,1990-12-31,42\n"
    )
    result = validate(normalise(read_extract([path]).frame), "sumup")
    assert result.valid["external_id"].to_list() == ["2"]
    assert result.rejects.select("external_id", "field", "rule").row(0) == (
        "1",
        "birth_date",
        "date",
    )


def test_parquet_integers_are_read_as_text_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    pl.DataFrame({"external_id": [1, 2], "billing_postal_code": ["01099", "00501"]}).write_parquet(
        path
    )
    result = read_extract([path])
    assert result.frame.collect()["external_id"].to_list() == ["1", "2"]
    assert "read as text" in result.warnings[0]


def test_parquet_wrong_types_are_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    pl.DataFrame({"external_id": ["1"], "tax_id": [12.5]}).write_parquet(path)
    error = _error(path)
    assert error.column == "tax_id" and "Float64" in error.message


def test_not_a_parquet_file(tmp_path: Path) -> None:
    assert "Parquet" in _error(write(tmp_path / "x.parquet", "external_id\n1\n")).message


@pytest.mark.parametrize(
    ("name", "message"), [("x.xlsx", "unsupported file type"), ("missing.csv", "no such file")]
)
def test_unusable_paths(tmp_path: Path, name: str, message: str) -> None:
    if name.endswith(".xlsx"):
        write(tmp_path / name, "x")
    with pytest.raises(ExtractError, match=message):
        read_extract([tmp_path / name])


def test_a_glob_that_matches_nothing(tmp_path: Path) -> None:
    with pytest.raises(ExtractError, match="no file matches"):
        read_extract([tmp_path / "*.csv"])
    with pytest.raises(ExtractError, match="no extract file"):
        read_extract([])


# -- instruments -----------------------------------------------------------------------------


def test_sample_instruments_extract() -> None:
    frame = read_instruments([DATA / "instruments_day2.csv"])
    assert frame.columns == ["external_id", "token"]
    assert frame.height == 2


def test_instruments_are_trimmed_and_deduplicated(tmp_path: Path) -> None:
    path = write(tmp_path / "i.csv", "external_id,token\n A ,t1\nA,t1\nB,t2\n")
    assert read_instruments([path]).rows() == [("A", "t1"), ("B", "t2")]


def test_an_instrument_row_without_token_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "i.csv", "external_id,token\nA,t1\nB,\n")
    with pytest.raises(ExtractError, match="data row 2 has no token"):
        read_instruments([path])
    with pytest.raises(ExtractError, match="required column"):
        read_instruments([write(tmp_path / "j.csv", "external_id\nA\n")])
