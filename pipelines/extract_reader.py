"""Read one extract file into a frame of trimmed text, one column per contract column.

Nothing here judges values; it only decides whether a file can be read at all
(encoding, delimiter, header) and keeps each row's position for the quarantine.
A guess that could be wrong fails loudly instead of loading garbage.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pipelines.sources import UnreadableExtract, extract_date_of
from schemas.columns import ExtractSchema

DELIMITERS = (";", ",")
ENCODINGS = ("utf-8", "cp1252")
ROW_NUMBER = "__row_number"


@dataclass(frozen=True)
class FileFormat:
    """What the pipeline may be told per source instead of detecting it."""

    delimiter: str | None = None
    encoding: str | None = None


@dataclass
class RawExtract:
    path: Path
    source: str
    extract_date: dt.date
    content_hash: str
    rows: pl.DataFrame  # contract columns as trimmed text (null = empty) + __row_number
    rows_read: int
    encoding: str | None = None
    delimiter: str | None = None
    extra_columns: list[str] = field(default_factory=list)
    absent_optional_columns: list[str] = field(default_factory=list)
    ragged_rows: list[tuple[int, int]] = field(default_factory=list)  # (row number, fields)


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_extract(path: Path, schema: ExtractSchema, told: FileFormat = FileFormat(),
                 digest: str | None = None) -> RawExtract:
    """The file as text columns; ``digest`` is its content hash when the caller has it."""
    extract_date = extract_date_of(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame, read = _read_parquet(path), {}
    else:
        frame, read = _read_csv(path, schema, told)
    frame = _trimmed(frame)
    extra = [c for c in frame.columns if c not in schema.names and c != ROW_NUMBER]
    missing = [c for c in schema.required_names if c not in frame.columns]
    if missing:
        hint = f" (read with delimiter '{read['delimiter']}')" if read.get("delimiter") else ""
        raise UnreadableExtract(path, f"missing required column(s) {', '.join(missing)}{hint}")
    absent = [c for c in schema.names if c not in frame.columns]
    frame = frame.with_columns([pl.lit(None, pl.String).alias(c) for c in absent])
    return RawExtract(
        path=path, source=schema.source, extract_date=extract_date,
        content_hash=digest or content_hash(path), rows=frame.select([ROW_NUMBER, *schema.names]),
        rows_read=frame.height + len(read.get("ragged", [])),
        encoding=read.get("encoding"), delimiter=read.get("delimiter"),
        extra_columns=extra, absent_optional_columns=absent,
        ragged_rows=read.get("ragged", []),
    )


def _header_names(names: list[str]) -> list[str]:
    cleaned = [n.strip().lstrip("\ufeff").strip().lower() for n in names]
    duplicates = sorted({n for n in cleaned if cleaned.count(n) > 1})
    if duplicates:
        raise ValueError(f"column(s) {', '.join(duplicates)} appear more than once in the header")
    return cleaned


def _trimmed(frame: pl.DataFrame) -> pl.DataFrame:
    text = [c for c in frame.columns if c != ROW_NUMBER]
    return frame.with_columns(
        pl.col(c).str.strip_chars().replace("", None) for c in text
    )


def decode(path: Path, data: bytes, told: FileFormat) -> tuple[str, str]:
    if b"\x00" in data:
        raise UnreadableExtract(path, "not a CSV file (it holds binary data)")
    for encoding in ([told.encoding] if told.encoding else ENCODINGS):
        try:
            text = data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
        return text.removeprefix("\ufeff"), encoding
    tried = told.encoding or " or ".join(ENCODINGS)
    raise UnreadableExtract(path, f"cannot be decoded as {tried}")


def _choose_delimiter(path: Path, header: str, schema: ExtractSchema, told: FileFormat) -> str:
    if told.delimiter:
        return told.delimiter
    known = set(schema.names)
    scores = {d: len(known & {n.strip().lower() for n in header.split(d)}) for d in DELIMITERS}
    best = max(scores.values())
    winners = [d for d, s in scores.items() if s == best]
    if best == 0:
        raise UnreadableExtract(path, "no known column names in the header; is this a "
                                f"{schema.source} extract with a ';' or ',' delimiter?")
    if len(winners) > 1:
        raise UnreadableExtract(path, "the delimiter is ambiguous (';' and ',' fit the header "
                                "equally well); state it for this source")
    return winners[0]


def _read_csv(path: Path, schema: ExtractSchema, told: FileFormat) -> tuple[pl.DataFrame, dict]:
    data = path.read_bytes()
    text, encoding = decode(path, data, told)
    header_line = text.split("\n", 1)[0].rstrip("\r")
    if not header_line.strip():
        raise UnreadableExtract(path, "empty file: no header row")
    delimiter = _choose_delimiter(path, header_line, schema, told)
    quoted = '"' in text or "\x1f" in text
    header = _split_quoted(header_line, delimiter)[0] if quoted else header_line.split(delimiter)
    try:
        names = _header_names(header)
    except ValueError as problem:
        raise UnreadableExtract(path, str(problem))
    read = {"encoding": encoding, "delimiter": delimiter, "ragged": []}
    if quoted:
        body = _split_quoted(text, delimiter)[1]
    else:
        utf8 = text.encode("utf-8") if encoding != "utf-8" else data.removeprefix(b"\xef\xbb\xbf")
        lines = _lines(utf8)
        fields = _field_counts(lines, delimiter)
        blank = fields == 1  # only a line without a delimiter can be blank
        if blank.any():
            blank &= lines.str.strip_chars().str.len_bytes() == 0
        if not blank.any():
            # No blank line: the native parser's rows are the file's rows, one to one.
            frame = pl.read_csv(io.BytesIO(utf8), separator=delimiter, quote_char=None,
                                infer_schema=False, has_header=True, new_columns=names,
                                truncate_ragged_lines=True)
            if frame.height == lines.len():
                numbers = pl.int_range(1, lines.len() + 1, dtype=pl.Int64, eager=True)
                frame = frame.with_columns(numbers.alias(ROW_NUMBER))
                ragged = fields != len(names)
                if ragged.any():
                    read["ragged"] = list(zip(numbers.filter(ragged).to_list(),
                                              fields.filter(ragged).to_list()))
                    frame = frame.filter(~ragged)
                return frame, read
        body = lines.str.strip_suffix("\r").filter(~blank)
    frame, read["ragged"] = _fields(body, names, delimiter)
    return frame, read


def _lines(utf8: bytes) -> pl.Series:
    """Data lines as delivered (a trailing \\r kept), read natively by Polars as one column:
    no separator or quote applies."""
    frame = pl.read_csv(io.BytesIO(utf8), has_header=False, separator="\x1f",
                        quote_char=None, new_columns=["line"], infer_schema=False)
    return frame["line"].slice(1).fill_null("")


def _field_counts(lines: pl.Series, delimiter: str) -> pl.Series:
    """Fields per line; lazily, so Polars counts the line chunks in parallel."""
    return lines.to_frame().lazy().select(
        pl.col(lines.name).str.count_matches(delimiter, literal=True) + 1).collect().to_series()


def _split_quoted(text: str, delimiter: str) -> tuple[list[str], list[list[str]]]:
    """The slow, exact path for files that quote fields."""
    records = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter) if any(r)]
    return (records[0] if records else []), records[1:]


def _fields(body: pl.Series | list[list[str]], names: list[str], delimiter: str
            ) -> tuple[pl.DataFrame, list[tuple[int, int]]]:
    """Columns from data rows; rows whose field count is off are set aside by number."""
    width = len(names)
    if isinstance(body, pl.Series):
        counts = _field_counts(body, delimiter)
        lines = pl.DataFrame({ROW_NUMBER: pl.int_range(1, body.len() + 1, eager=True),
                              "line": body, "n": counts})
        ragged = lines.filter(pl.col("n") != width)
        good = lines.filter(pl.col("n") == width)
        split = good.select(
            ROW_NUMBER,
            pl.col("line").str.split_exact(delimiter, width - 1)
            .struct.rename_fields(names).alias("f"),
        ).unnest("f")
        return split, list(zip(ragged[ROW_NUMBER].to_list(), ragged["n"].to_list()))
    ragged = [(i, len(r)) for i, r in enumerate(body, start=1) if len(r) != width]
    good = [(i, r) for i, r in enumerate(body, start=1) if len(r) == width]
    columns = {ROW_NUMBER: [i for i, _ in good]}
    for j, name in enumerate(names):
        columns[name] = [r[j] for _, r in good]
    schema = {ROW_NUMBER: pl.Int64, **{n: pl.String for n in names}}
    return pl.DataFrame(columns, schema=schema), ragged


def _read_parquet(path: Path) -> pl.DataFrame:
    try:
        frame = pl.read_parquet(path)
    except Exception as problem:  # polars raises several kinds for a bad file
        raise UnreadableExtract(path, f"not a readable Parquet file ({type(problem).__name__})")
    try:
        frame = frame.rename(dict(zip(frame.columns, _header_names(frame.columns))))
    except ValueError as problem:
        raise UnreadableExtract(path, str(problem))
    return frame.select(
        pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias(ROW_NUMBER),
        *[_as_text(c, t) for c, t in frame.schema.items()],
    )


def _as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    """Parquet values written as the contract's text, so one set of rules applies."""
    column = pl.col(name)
    if dtype == pl.Datetime or isinstance(dtype, pl.Datetime):
        return column.dt.strftime("%Y-%m-%d %H:%M:%S").alias(name)
    if dtype == pl.Date:
        return column.dt.strftime("%Y-%m-%d").alias(name)
    if dtype.is_float():
        whole = column.is_finite() & (column == column.round())
        return (pl.when(whole).then(column.cast(pl.Int64).cast(pl.String))
                .otherwise(column.cast(pl.String))).alias(name)
    return column.cast(pl.String).alias(name)
