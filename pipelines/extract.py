"""Read customer extracts (CSV, Parquet) into the canonical format, or say clearly why not.

Every column is read as text with an explicit schema; nothing is inferred. CSV is parsed by
DuckDB's strict reader: it handles a UTF-8 BOM, CRLF and quoted line breaks, and, unlike
polars' reader (which pads a short row with nulls), it refuses a row with too few or too many
fields, naming its line. Parquet is scanned lazily by polars. A file that cannot be read as an
extract raises :class:`ExtractError` (the CLI's exit code 2); a bad *row* is not an error
here: validation rejects it.
"""

from __future__ import annotations

import csv
import glob
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from transforms.schema import (
    CANONICAL_COLUMNS,
    INSTRUMENT_COLUMNS,
    INSTRUMENT_SCHEMA,
    REQUIRED_COLUMNS,
)

CSV_SUFFIXES = (".csv", ".csv.gz", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
MAX_CSV_LINE_BYTES = 16 * 1024 * 1024
"""A CSV record may be this long: a 10 MB value is read, then rejected by validation."""

_GLOB_CHARS = re.compile(r"[*?\[]")
_OTHER_DELIMITERS = ((";", "';'", ";"), ("\t", "tabs", "\\t"), ("|", "'|'", "|"))
"""Delimiters CRMs use instead of a comma; a header holding one of them earns a hint."""
_UNICODE_BOMS = {
    b"\xff\xfe\x00\x00": "UTF-32",
    b"\x00\x00\xfe\xff": "UTF-32",
    b"\xff\xfe": "UTF-16",
    b"\xfe\xff": "UTF-16",
}


class ExtractError(Exception):
    """An input file cannot be read as an extract. ``str()`` is one sentence for the user."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.line = line
        self.column = column
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = [self.file] if self.file else []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


@dataclass(frozen=True)
class ExtractResult:
    """What :func:`read_extract` read."""

    frame: pl.LazyFrame
    """Exactly :data:`~transforms.schema.CANONICAL_COLUMNS`, all ``pl.String``."""
    files: list[Path]
    """The files read, globs expanded, in order."""
    warnings: list[str] = field(default_factory=list)
    """Things the user should know that did not stop the read (ignored columns, casts)."""
    rows: list[int] = field(default_factory=list)
    """Data rows of each of :attr:`files` (a CSV's as parsed, a Parquet file's from its
    footer), for the run's ``inputs``."""

    def check_readable(self) -> None:
        """Raise :class:`ExtractError` naming a Parquet file whose data pages do not decode.

        Parquet files are scanned lazily, so a file whose footer is intact but whose pages
        are damaged fails only when the planner collects it, as a polars error. A caller that
        sees one asks this: a damaged file is bad input (exit 2); if every file decodes, the
        error was not the input's. Kept off the happy path: the pass decodes every page.
        """
        for path in self.files:
            if _kind(path) == "parquet":
                _check_parquet_pages(pl.scan_parquet(path), path)


@dataclass(frozen=True)
class ColumnMapping:
    """A CRM's own export format: column renames and the CSV delimiter."""

    columns: Mapping[str, str]
    """CRM column name → canonical column name."""
    delimiter: str = ","


def load_mapping(path: Path) -> ColumnMapping:
    """Read a column-mapping TOML (see ``data/column_mapping.example.toml``)."""
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ExtractError(f"cannot read the column mapping: {exc}", file=path) from exc
    unknown = set(raw) - {"columns", "csv"}
    if unknown:
        raise ExtractError(f"unknown section(s) {', '.join(sorted(unknown))}", file=path)
    columns = raw.get("columns", {})
    if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
        raise ExtractError("[columns] must map CRM column names to canonical names", file=path)
    wrong = sorted(v for v in columns.values() if v not in CANONICAL_COLUMNS)
    if wrong:
        raise ExtractError(f"not canonical column(s): {', '.join(wrong)}", file=path)
    targets = list(columns.values())
    doubled = sorted({v for v in targets if targets.count(v) > 1})
    if doubled:
        raise ExtractError(f"several CRM columns map to {', '.join(doubled)}", file=path)
    delimiter = raw.get("csv", {}).get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '"\r\n':
        raise ExtractError("[csv] delimiter must be a single character", file=path)
    return ColumnMapping(columns=dict(columns), delimiter=delimiter)


def expand_paths(paths: Sequence[str | Path], *, optional: bool = False) -> list[Path]:
    """Expand globs (``**`` included) and check every file exists; keep order, drop repeats.

    ``optional``: a glob that matches nothing adds no file instead of being an error (a
    named file must still exist: a typo is not "nothing today").
    """
    if not paths and not optional:
        raise ExtractError("no extract file given")
    found: list[Path] = []
    for entry in paths:
        text = str(entry)
        if _GLOB_CHARS.search(text):
            # glob.glob, not Path.glob: the pattern may be absolute and may contain "**".
            hits = glob.glob(text, recursive=True)  # noqa: PTH207
            matches = sorted(Path(p) for p in hits if Path(p).is_file())
            if not matches and not optional:
                raise ExtractError("no file matches this pattern", file=text)
            found.extend(matches)
        elif Path(text).is_file():
            found.append(Path(text))
        elif Path(text).is_dir():
            raise ExtractError(
                "is a directory; name the files in it, e.g. a glob such as DIR/*.csv", file=text
            )
        else:
            raise ExtractError("no such file", file=text)
    return list(dict.fromkeys(found))


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    raise ExtractError("unsupported file type: use .csv or .parquet", file=path)


def _select(
    names: Sequence[str],
    path: Path,
    mapping: ColumnMapping | None,
    wanted: Sequence[str],
    required: Sequence[str],
    warnings: list[str],
) -> dict[str, str]:
    """File column → canonical column for the wanted columns; checks names and requirements."""
    # A CSV's names are its line 1; a Parquet file's are its schema, which has no line.
    csv_file = _kind(path) == "csv"
    line, header = (1, "header") if csv_file else (None, "file's schema")
    renames = mapping.columns if mapping else {}
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if name in seen:
            raise ExtractError(
                f"the {header} names this column twice (columns {seen[name]} and {position})",
                file=path,
                line=line,
                column=name,
            )
        seen[name] = position
    chosen: dict[str, str] = {}
    ignored: list[str] = []
    for name in names:
        canonical = renames.get(name, name)
        if canonical not in wanted:
            ignored.append(name or "<unnamed>")
            continue
        if canonical in chosen.values():
            other = next(k for k, v in chosen.items() if v == canonical)
            raise ExtractError(
                f"columns {other!r} and {name!r} are both read as {canonical!r}",
                file=path,
                line=line,
                column=name,
            )
        chosen[name] = canonical
    missing = [c for c in required if c not in chosen.values()]
    if missing:
        raise ExtractError(
            f"the required column is missing from the {header}"
            + (_delimiter_hint(names, mapping) if csv_file else ""),
            file=path,
            line=line,
            column=missing[0],
        )
    if ignored:
        warnings.append(
            f"{path}: ignored column(s) not in the extract format: {', '.join(ignored)}"
        )
    return chosen


def _delimiter_hint(names: Sequence[str], mapping: ColumnMapping | None) -> str:
    """A hint when a one-column header looks split by another delimiter (a ``;`` export)."""
    used = mapping.delimiter if mapping else ","
    if len(names) != 1:
        return ""
    for other, label, toml in _OTHER_DELIMITERS:
        if other != used and other in names[0]:
            return (
                f'; it looks separated by {label}: set [csv] delimiter = "{toml}" '
                "in a column-mapping file (--mapping)"
            )
    return ""


def _csv_header(path: Path, delimiter: str) -> list[str]:
    try:
        with path.open("rb") as raw:
            start = raw.read(4)
    except OSError as exc:
        raise ExtractError(f"cannot be read ({exc.strerror})", file=path) from exc
    for bom, encoding in _UNICODE_BOMS.items():
        if start.startswith(bom):
            raise ExtractError(f"the file is {encoding}; export it as UTF-8", file=path, line=1)
    try:
        # Decoding is lenient here because the reader decodes ahead of the header; a bad byte in
        # the header itself shows as U+FFFD below, one in a data row is DuckDB's to report.
        with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
            header = next(csv.reader(handle, delimiter=delimiter), None)
    except csv.Error as exc:
        raise ExtractError(f"the header cannot be parsed: {exc}", file=path, line=1) from exc
    if not header or header == [""]:
        raise ExtractError("the file is empty: it has no header row", file=path)
    if any("\ufffd" in name for name in header):
        raise ExtractError(
            "the header is not valid UTF-8; export the file as UTF-8", file=path, line=1
        )
    return [name.strip() for name in header]


_DUCKDB_LINE = re.compile(r"CSV Error on Line: (\d+)")
_DUCKDB_COUNTS = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")


def _csv_error(exc: duckdb.Error, path: Path) -> ExtractError:
    # DuckDB's message quotes the offending line; customer data must not reach logs, so only
    # the line number and a known reason are kept.
    text = str(exc)
    match = _DUCKDB_LINE.search(text)
    line = int(match.group(1)) if match else None
    counts = _DUCKDB_COUNTS.search(text)
    if counts:
        reason = f"the row has {counts.group(2)} fields but the header has {counts.group(1)}"
    elif "unicode" in text.lower():
        reason = "the file is not valid UTF-8 here; export it as UTF-8"
    elif "unterminated quote" in text.lower():
        reason = "a quoted value is never closed"
    elif "maximum line size" in text.lower():
        reason = f"a row is longer than {MAX_CSV_LINE_BYTES // (1024 * 1024)} MiB"
    else:
        reason = "the file is not a readable CSV (" + text.splitlines()[0][:200] + ")"
    return ExtractError(reason, file=path, line=line)


def _read_csv(
    path: Path,
    chosen: Mapping[str, str],
    header: Sequence[str],
    delimiter: str,
    spool: Path | None = None,
) -> tuple[pl.LazyFrame, int]:
    """The CSV file's chosen columns and its number of data rows: held in memory, or, with a
    ``spool`` directory, parsed into a Parquet file there and scanned lazily."""
    # Columns are addressed by position: header names may need quoting, differ from the
    # file by the trimming done here, or be empty.
    columns = {f"c{i}": "VARCHAR" for i in range(len(header))}
    positions = {name: i for i, name in enumerate(header)}
    select = ", ".join(f'c{positions[name]} AS "{canonical}"' for name, canonical in chosen.items())
    struct = ", ".join(f"'{name}': 'VARCHAR'" for name in columns)
    query = (
        f"SELECT {select} FROM read_csv($path, header = true, columns = {{{struct}}}, "
        "auto_detect = false, delim = $delim, quote = '\"', escape = '\"', strict_mode = true, "
        f"null_padding = false, max_line_size = {MAX_CSV_LINE_BYTES}, "
        f"buffer_size = {2 * MAX_CSV_LINE_BYTES}, encoding = 'utf-8')"
    )
    with duckdb.connect() as con:
        try:
            relation = con.sql(query, params={"path": str(path), "delim": delimiter})
            assert relation is not None
            if spool is not None:
                # Parsed as strictly, written a row group at a time: the plan stage reads it
                # a slice at a time instead of holding the whole extract (issue 14).
                out = spool / f"extract-{sum(1 for _ in spool.iterdir())}.parquet"
                relation.write_parquet(str(out))
                return pl.scan_parquet(out), _parquet_rows(out)
            table = relation.to_arrow_table()
        except duckdb.Error as exc:
            raise _csv_error(exc, path) from exc
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame.lazy(), frame.height


def _parquet_schema(path: Path) -> tuple[list[str], pl.Schema]:
    """The column names as the file holds them (repeats included) and their polars types."""
    if path.stat().st_size == 0:
        raise ExtractError("the file is empty (0 bytes): not a Parquet file", file=path)
    try:
        # pyarrow reports a column named twice as such; polars refuses the whole schema.
        names = list(pq.read_schema(path).names)
    except (pa.ArrowException, OSError) as exc:
        raise ExtractError(
            f"not a readable Parquet file: truncated, damaged or not Parquet ({_first_line(exc)})",
            file=path,
        ) from exc
    if len(set(names)) < len(names):
        return names, pl.Schema()  # _select names the repeated column
    try:
        return names, pl.Schema(pl.read_parquet_schema(path))
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise ExtractError(f"not a readable Parquet file ({_first_line(exc)})", file=path) from exc


def _check_parquet_pages(frame: pl.LazyFrame, path: Path) -> None:
    """Decode every page once, keeping nothing (see :meth:`ExtractResult.check_readable`).

    This streaming pass fails wherever a full read would, and costs ~0.3 CPU-s per million
    rows of 33 columns (the 1M-row plan costs ~1.9 CPU-s), which is why it runs only after a
    read failed. Counting nulls needs every page decompressed and decoded but computes almost
    nothing else.
    """
    try:
        frame.select(pl.all().is_null().sum()).collect(engine="streaming")
    except pl.exceptions.PolarsError as exc:
        raise ExtractError(
            f"not a readable Parquet file: damaged data pages ({_first_line(exc)})", file=path
        ) from exc


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


def _parquet_columns(
    path: Path, schema: pl.Schema, chosen: Mapping[str, str], warnings: list[str]
) -> list[pl.Expr]:
    exprs = []
    for name, canonical in chosen.items():
        dtype = schema[name]
        col = pl.col(name)
        if dtype in (pl.String, pl.Null) or isinstance(dtype, pl.Categorical | pl.Enum):
            exprs.append(col.cast(pl.String).alias(canonical))
        elif dtype.is_integer():
            warnings.append(f"{path}: column {name!r} is {dtype}, read as text")
            exprs.append(col.cast(pl.String).alias(canonical))
        elif dtype == pl.Date:
            exprs.append(col.dt.to_string("%Y-%m-%d").alias(canonical))
        else:
            raise ExtractError(
                f"has type {dtype}; extract columns must be text", file=path, column=name
            )
    return exprs


def _read_file(
    path: Path,
    mapping: ColumnMapping | None,
    wanted: Sequence[str],
    required: Sequence[str],
    warnings: list[str],
    spool: Path | None = None,
) -> tuple[pl.LazyFrame, int]:
    """The file's wanted columns (lazily for Parquet, and for CSV with a ``spool``) and its
    number of data rows."""
    delimiter = mapping.delimiter if mapping else ","
    if _kind(path) == "csv":
        names = _csv_header(path, delimiter)
        chosen = _select(names, path, mapping, wanted, required, warnings)
        frame, rows = _read_csv(path, chosen, names, delimiter, spool)
    else:
        names, schema = _parquet_schema(path)
        chosen = _select(names, path, mapping, wanted, required, warnings)
        frame = pl.scan_parquet(path).select(_parquet_columns(path, schema, chosen, warnings))
        rows = _parquet_rows(path)
    present = set(chosen.values())
    return frame.select(
        pl.col(name) if name in present else pl.lit(None, pl.String).alias(name) for name in wanted
    ), rows


def _parquet_rows(path: Path) -> int:
    """A Parquet file's row count, from its footer (read by :func:`_parquet_schema` already)."""
    try:
        return int(pq.read_metadata(path).num_rows)
    except (pa.ArrowException, OSError) as exc:
        raise ExtractError(f"not a readable Parquet file ({_first_line(exc)})", file=path) from exc


def read_extract(
    paths: Sequence[str | Path], *, mapping: Path | None = None, spool: Path | None = None
) -> ExtractResult:
    """Read one or more extract files (globs allowed) into the canonical format.

    ``mapping`` is a column-mapping TOML renaming a CRM's own columns. Extra columns are
    ignored with a warning; a missing ``external_id`` column, an unreadable file, a ragged
    row or a file that is not UTF-8 raise :class:`ExtractError` naming file, line or column.
    CSV files are parsed here (so that every such error surfaces now, not at collect time);
    Parquet files are scanned lazily after their schema is checked.

    ``spool``: a directory the caller owns and removes once done with the frame. Each CSV
    file is then parsed into a Parquet file there and scanned lazily like one, so that a
    caller reading the extract a slice at a time (the plan stage) never holds it whole;
    without it a CSV extract is held in memory.
    """
    files = expand_paths(paths)
    column_mapping = load_mapping(mapping) if mapping is not None else None
    warnings: list[str] = []
    read = [
        _read_file(path, column_mapping, CANONICAL_COLUMNS, REQUIRED_COLUMNS, warnings, spool)
        for path in files
    ]
    frames = [frame for frame, _rows in read]
    frame = pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]
    return ExtractResult(
        frame=frame, files=files, warnings=warnings, rows=[rows for _frame, rows in read]
    )


def check_headers(paths: Sequence[str | Path], *, mapping: Path | None = None) -> list[Path]:
    """Check what an extract's files say before a run reads them: every file exists, has a
    known type, and its header (CSV line 1, or the Parquet schema) names the required columns
    once each, after ``mapping``. Reads no data row; raises :class:`ExtractError` as
    :func:`read_extract` would. Returns the files."""
    files = expand_paths(paths)
    column_mapping = load_mapping(mapping) if mapping is not None else None
    delimiter = column_mapping.delimiter if column_mapping else ","
    for path in files:
        if _kind(path) == "csv":
            names = _csv_header(path, delimiter)
        else:
            names, _schema = _parquet_schema(path)
        _select(names, path, column_mapping, CANONICAL_COLUMNS, REQUIRED_COLUMNS, [])
    return files


def read_instruments(paths: Sequence[str | Path]) -> pl.DataFrame:
    """Read instruments extracts: ``external_id``, ``token`` per payment instrument to deactivate.

    Values are trimmed; exact repeats are dropped; a row without a key or a token is an
    :class:`ExtractError` (deactivating "some" instrument is never what was meant). The
    extract is optional: a glob matching no file means nothing to deactivate (an empty frame).
    """
    return read_instrument_files(paths).frame.collect()


def read_instrument_files(paths: Sequence[str | Path]) -> ExtractResult:
    """:func:`read_instruments`, with the files read and their row counts (the frame eager)."""
    files = expand_paths(paths, optional=True)
    warnings: list[str] = []
    frames = []
    counts = []
    for path in files:
        lazy, rows = _read_file(path, None, INSTRUMENT_COLUMNS, INSTRUMENT_COLUMNS, warnings)
        frame = lazy.collect()
        counts.append(rows)
        frame = frame.with_columns(
            pl.col(c).str.strip_chars().replace("", None) for c in INSTRUMENT_COLUMNS
        )
        incomplete = frame.with_row_index("row", offset=1).filter(
            pl.any_horizontal(pl.col(c).is_null() for c in INSTRUMENT_COLUMNS)
        )
        if incomplete.height:
            first = incomplete.row(0, named=True)
            missing = "external_id" if first["external_id"] is None else "token"
            raise ExtractError(
                f"data row {first['row']} has no {missing}", file=path, column=missing
            )
        frames.append(frame)
    if not frames:
        found = pl.DataFrame(schema=INSTRUMENT_SCHEMA)
    else:
        found = pl.concat(frames).unique(maintain_order=True)
    return ExtractResult(frame=found.lazy(), files=files, warnings=warnings, rows=counts)
