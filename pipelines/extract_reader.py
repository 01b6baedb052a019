"""Read one extract file into frames of trimmed text, one column per contract column.

Nothing here judges values; it decides whether a file can be read at all
(encoding, delimiter, header) and accounts for every data line: a line either
becomes a row handed on, or an *unparseable* row (with its line number and what
is wrong) for the quarantine; a blank line is not a row. The lines are counted
from the bytes, not by the CSV parser, so a parser that merged or skipped lines
would be caught. A record never spans lines: a quote that does not close within
its line makes that line unparseable and leaves the lines after it alone.

Resources are bounded: the header and each line have a length limit, the header
a column limit, every step is linear in the file, and a file can be read in
batches (:func:`iter_extract_batches`) so that memory follows the batch, not the
file. A guess that could be wrong fails loudly instead of loading garbage, and
no message quotes the file's content (it could hold a CPR number).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import polars as pl

from pipelines.privacy import mask
from pipelines.settings import MEMORY_LIMIT_ENV, memory_limit_bytes
from pipelines.sources import UnreadableExtract, extract_date_of
from schemas.columns import ExtractSchema

DELIMITERS = (";", ",")
ENCODINGS = ("utf-8", "cp1252")
ROW_NUMBER = "__row_number"
LOCAL_ZONE = "Europe/Copenhagen"

MAX_HEADER_BYTES = 64 * 1024  # a longer header line fails the file
MAX_COLUMNS = 1_000  # so does a header with more columns
MAX_LINE_BYTES = 1024 * 1024  # a longer data line is an unparseable row
# Memory above the interpreter's, as a multiple of the file (benchmarks/reader_memory.py, a
# 327 MB stroke extract): reading it whole 3.8x; reading, validating and loading it whole 7.0x;
# per batch, through the same steps, 16x the batch's bytes. read_extract refuses a file whose
# whole-file estimate exceeds the memory limit; batches get a share of the limit after an
# allowance for the interpreter, the libraries and DuckDB.
WHOLE_FILE_MEMORY_FACTOR = 8
BATCH_MEMORY_FACTOR = 20
BATCH_ALLOWANCE_BYTES = 1 << 30
MAX_BATCH_BYTES = 64 * 1024 * 1024  # larger batches are no faster
_BLOCK = 16 * 1024 * 1024  # read size when scanning a file that is not held in memory

# A quoted field may be up to a line long (the csv module's default limit is 128 KiB).
csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES + 1))

UNPARSEABLE_SCHEMA = {"row_number": pl.Int64, "line_number": pl.Int64, "problem": pl.String}


def _no_unparseable() -> pl.DataFrame:
    return pl.DataFrame(schema=UNPARSEABLE_SCHEMA)


@dataclass(frozen=True)
class FileFormat:
    """What the pipeline may be told per source instead of detecting it."""

    delimiter: str | None = None
    encoding: str | None = None


@dataclass
class RawExtract:
    """One file, or one batch of it: ``rows_read`` = ``rows.height`` + ``unparseable.height``."""

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
    # Rows the reader could not split: row_number, line_number (the header is line 1), problem
    # (what is wrong, never the line's content).
    unparseable: pl.DataFrame = field(default_factory=_no_unparseable)


@dataclass(frozen=True)
class _Header:
    names: list[str]  # cleaned, in file order
    encoding: str | None = None
    delimiter: str | None = None


@dataclass(frozen=True)
class _Part:
    rows: pl.DataFrame  # __row_number + every header column, as text
    unparseable: pl.DataFrame
    rows_read: int
    lines: int  # physical lines covered, blank ones included


_HASHED: dict[tuple, str] = {}  # (path, device, inode, size, mtime) -> SHA-256, this process


def _identity(path: Path) -> tuple:
    status = path.stat()
    return (str(Path(path).resolve()), status.st_dev, status.st_ino, status.st_size,
            status.st_mtime_ns)


def content_hash(path: Path) -> str:
    """SHA-256 of the file's bytes, always read afresh; remembered for :func:`known_hash`."""
    key = _identity(path)
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 24), b""):
            digest.update(block)
    if len(_HASHED) > 100_000:  # bounded: a long-lived worker sees many files
        _HASHED.clear()
    _HASHED[key] = digest.hexdigest()
    return _HASHED[key]


def known_hash(path: Path) -> str:
    """The hash this process already computed of the file (ingest's), if the file has not
    changed since (same inode, size and modification time); else computed now. The run
    manifest uses it, so each input is hashed once per run."""
    return _HASHED.get(_identity(path)) or content_hash(path)


def default_batch_bytes(limit: int | None = None) -> int:
    """File bytes per batch: a share of the memory limit that a batch's way through read,
    validation and insert fits in; between 1 MiB and MAX_BATCH_BYTES."""
    limit = memory_limit_bytes() if limit is None else limit
    share = (limit - BATCH_ALLOWANCE_BYTES) // BATCH_MEMORY_FACTOR
    return max(1 << 20, min(MAX_BATCH_BYTES, share))


def read_extract(path: Path, schema: ExtractSchema, told: FileFormat = FileFormat(),
                 digest: str | None = None) -> RawExtract:
    """The whole file as one extract; ``digest`` is its content hash when the caller has it.

    A file too large to read whole within the memory limit fails with a message that
    says so: such a file is read with :func:`iter_extract_batches`."""
    size = path.stat().st_size if path.exists() else 0
    limit = memory_limit_bytes()
    if path.suffix.lower() != ".parquet" and size * WHOLE_FILE_MEMORY_FACTOR > limit:
        extract_date_of(path)
        raise UnreadableExtract(
            path, f"{size / 2**30:.1f} GiB is too large to read whole within the memory limit of "
            f"{limit / 2**30:g} GiB ({MEMORY_LIMIT_ENV}); it must be read in batches")
    batches = list(iter_extract_batches(path, schema, told, digest, batch_bytes=1 << 62))
    if len(batches) == 1:
        return batches[0]
    first = batches[0]
    first.rows = pl.concat([b.rows for b in batches])
    first.unparseable = pl.concat([b.unparseable for b in batches])
    first.rows_read = sum(b.rows_read for b in batches)
    return first


def iter_extract_batches(path: Path, schema: ExtractSchema, told: FileFormat = FileFormat(),
                         digest: str | None = None, batch_bytes: int | None = None
                         ) -> Iterator[RawExtract]:
    """The file in batches of about ``batch_bytes`` of its bytes (default: from the memory
    limit), with the file's own row numbers; at least one batch, even for a file without rows.

    Whether the file can be read at all (name, encoding, header) is decided before the first
    batch, so ``next()`` raises :class:`UnreadableExtract` before anything is handed on; a
    Parquet file damaged further in can still raise it later. Every batch accounts for its
    rows: ``rows_read`` = rows handed on + unparseable rows."""
    extract_date = extract_date_of(path)
    batch_bytes = batch_bytes or default_batch_bytes()
    if path.suffix.lower() == ".parquet":
        parts = _parquet_parts(path, schema, batch_bytes)
    else:
        parts = _csv_parts(path, schema, told, batch_bytes)
    header = next(parts)
    assert isinstance(header, _Header)
    missing = [c for c in schema.required_names if c not in header.names]
    if missing:
        hint = f" (read with delimiter '{header.delimiter}')" if header.delimiter else ""
        raise UnreadableExtract(path, f"missing required column(s) {', '.join(missing)}{hint}")
    known = set(schema.names)
    extra = [mask(c) for c in header.names if c not in known]
    absent = [c for c in schema.names if c not in header.names]
    digest = digest or content_hash(path)
    for part in parts:
        rows = _trimmed(part.rows.select(ROW_NUMBER, *[c for c in schema.names
                                                       if c in header.names]))
        rows = rows.with_columns([pl.lit(None, pl.String).alias(c) for c in absent])
        yield RawExtract(
            path=path, source=schema.source, extract_date=extract_date, content_hash=digest,
            rows=rows.select([ROW_NUMBER, *schema.names]), rows_read=part.rows_read,
            encoding=header.encoding, delimiter=header.delimiter, extra_columns=extra,
            absent_optional_columns=absent, unparseable=part.unparseable,
        )


# -- names ------------------------------------------------------------------------------
def _header_names(path: Path, names: list[str], schema: ExtractSchema) -> list[str]:
    """Cleaned column names; too many, or a contract column twice, fails the file (in linear
    time, and naming only the contract's own column names, never the file's content). An
    extra column named twice (Excel's trailing ';;' gives two empty names) is still only
    an extra column: its later copies are told apart as ``name#2``, ``name#3``."""
    if len(names) > MAX_COLUMNS:
        raise UnreadableExtract(path, f"the header has {len(names):,} columns, more than the "
                                f"{MAX_COLUMNS:,} allowed")
    cleaned = [n.strip().lstrip("\ufeff").strip().lower() for n in names]
    repeated = [n for n, count in Counter(cleaned).items() if count > 1 and n in schema.names]
    if repeated:
        raise UnreadableExtract(path, "column names appear more than once in the header: "
                                f"{len(repeated)} duplicate(s) (among them "
                                f"{', '.join(sorted(repeated))})")
    taken, used, distinct = set(cleaned), set(), []
    for name in cleaned:
        if name in used:  # a later copy: the first free name#2, name#3, ...
            copy = 2
            while f"{name}#{copy}" in taken:
                copy += 1
            name = f"{name}#{copy}"
            taken.add(name)
        used.add(name)
        distinct.append(name)
    return distinct


def _trimmed(frame: pl.DataFrame) -> pl.DataFrame:
    """Values without surrounding whitespace, empty as null; a column is rewritten only if
    it needs it (a check is cheaper in time and memory than a copy of every column)."""
    text = [c for c in frame.columns if c != ROW_NUMBER]
    if not text or frame.is_empty():
        return frame
    # Comparing lengths is what stripping would change, at two thirds of a regex's cost.
    flags = frame.lazy().select(
        *[(pl.col(c).str.strip_chars().str.len_bytes() != pl.col(c).str.len_bytes()).any()
          .alias(f"trim{i}") for i, c in enumerate(text)],
        *[(pl.col(c).str.len_bytes() == 0).any().alias(f"empty{i}") for i, c in enumerate(text)],
    ).collect().row(0)
    trim, empty = flags[:len(text)], flags[len(text):]
    return frame.with_columns(
        [pl.col(c).str.strip_chars().replace("", None) for c, t in zip(text, trim) if t]
        + [pl.col(c).replace("", None) for c, t, e in zip(text, trim, empty) if e and not t])


# -- CSV: encoding, delimiter, header -----------------------------------------------------
def decode(path: Path, data: bytes, told: FileFormat) -> tuple[str, str]:
    """Small files read whole (the reference tables): the text and its encoding."""
    encoding = _encoding(path, lambda: [data], told)
    return data.decode(encoding).removeprefix("\ufeff"), encoding


def _ascii_compatible(encoding: str) -> bool:
    probe = "\n\r;,\"\t|abc019"
    try:
        return probe.encode(encoding) == probe.encode("ascii")
    except (UnicodeError, LookupError):
        return False


def _encoding(path: Path, blocks: Callable[[], Iterable[bytes]], told: FileFormat) -> str:
    """The first candidate encoding that decodes every byte of the file (scanned in blocks,
    so a file larger than memory is judged whole before any of it is handed on)."""
    candidates = [told.encoding] if told.encoding else list(ENCODINGS)
    for encoding in candidates:
        try:
            decoder = codecs.getincrementaldecoder(encoding)()
        except LookupError:
            continue
        if not _ascii_compatible(encoding):
            raise UnreadableExtract(path, f"encoding {encoding} is not supported: delimiters "
                                    "and line ends must be single ASCII bytes")
        try:
            for block in blocks():
                if b"\x00" in block:
                    raise UnreadableExtract(path, "not a CSV file (it holds binary data)")
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    tried = told.encoding or " or ".join(ENCODINGS)
    raise UnreadableExtract(path, f"cannot be decoded as {tried}")


def _choose_delimiter(path: Path, header: str, schema: ExtractSchema, told: FileFormat) -> str:
    if told.delimiter:
        if len(told.delimiter) != 1 or not told.delimiter.isascii() or told.delimiter in '"\r\n':
            raise UnreadableExtract(path, "the delimiter told must be one ASCII character "
                                    "other than a quote or a line end")
        return told.delimiter
    known = set(schema.names)
    scores = {d: len(known & {n.strip().strip('"').strip().lower() for n in header.split(d)})
              for d in DELIMITERS}
    best = max(scores.values())
    winners = [d for d, s in scores.items() if s == best]
    if best == 0:
        raise UnreadableExtract(path, "no known column names in the header; is this a "
                                f"{schema.source} extract with a ';' or ',' delimiter?")
    if len(winners) > 1:
        raise UnreadableExtract(path, "the delimiter is ambiguous (';' and ',' fit the header "
                                "equally well); state it for this source")
    return winners[0]


def _header_line(path: Path, head: bytes, encoding: str) -> str:
    """The first line of the file, from its first bytes; too long fails the file."""
    ends = [i for i in (head.find(b"\n"), head.find(b"\r")) if i >= 0]
    bom = 3 if head.startswith(b"\xef\xbb\xbf") else 0
    end = min(ends) if ends else len(head)  # no line end: the header is all there is, or long
    if end - bom > MAX_HEADER_BYTES:
        raise UnreadableExtract(path, f"the header line is longer than {MAX_HEADER_BYTES:,} "
                                "bytes")
    line = head[:end].decode(encoding).removeprefix("\ufeff")
    if not line.strip():
        raise UnreadableExtract(path, "empty file: no header row")
    return line


def _regex_char(char: str) -> str:
    return f"\\x{{{ord(char):X}}}"


def _quoted_line_pattern(delimiter: str) -> str:
    """A line whose quotes pair up: each field is empty, unquoted (not starting with a quote;
    a quote further in is kept as text), or quoted with "" for a quote inside."""
    d = _regex_char(delimiter)
    one = f'(?:"(?:[^"]|"")*"|[^"{d}][^{d}]*|)'
    return f"^{one}(?:{d}{one})*$"


def _split_header(path: Path, line: str, delimiter: str) -> list[str]:
    if '"' not in line:
        return line.split(delimiter)
    if not pl.Series([line]).str.contains(_quoted_line_pattern(delimiter)).item():
        raise UnreadableExtract(path, "the header cannot be split: its quotes do not pair up")
    return next(csv.reader([line], delimiter=delimiter, strict=True))


def _csv_parts(path: Path, schema: ExtractSchema, told: FileFormat, batch_bytes: int
               ) -> Iterator[_Header | _Part]:
    size = path.stat().st_size
    with path.open("rb") as handle:
        whole = handle.read() if size <= batch_bytes else None

        def blocks() -> Iterable[bytes]:
            if whole is not None:
                return [whole]
            handle.seek(0)
            return iter(lambda: handle.read(_BLOCK), b"")

        if size == 0:
            raise UnreadableExtract(path, "empty file: no header row")
        encoding = _encoding(path, blocks, told)
        handle.seek(0)
        head = whole[:MAX_HEADER_BYTES + 8] if whole is not None else handle.read(
            MAX_HEADER_BYTES + 8)
        line = _header_line(path, head, encoding)
        delimiter = _choose_delimiter(path, line, schema, told)
        names = _header_names(path, _split_header(path, line, delimiter), schema)
        yield _Header(names, encoding, delimiter)

        utf8 = codecs.lookup(encoding).name == "utf-8"
        if whole is not None:
            chunks: Iterable[bytes] = _handed_over([whole])
            del whole  # the run of lines below frees it once read
        else:
            handle.seek(0)
            chunks = _line_chunks(handle, batch_bytes)
        row, line_number = 1, 2
        for i, chunk in enumerate(chunks):
            run = [chunk if utf8 else chunk.decode(encoding).encode("utf-8")]
            del chunk
            part = _parse_lines(path, run, names, delimiter, row, line_number, header=i == 0)
            row += part.rows_read
            line_number += part.lines
            yield part


# -- CSV: lines -------------------------------------------------------------------------
def _handed_over(held: list[bytes]) -> Iterator[bytes]:
    """The bytes of ``held``, no longer referenced here once handed on."""
    while held:
        yield held.pop()


def _line_end(buf: bytes) -> int:
    """Index of the last byte of the last complete line end in ``buf``, or -1 (a CR as the
    very last byte is not known to be complete: a LF may follow)."""
    return max(buf.rfind(b"\n"), buf.rfind(b"\r", 0, len(buf) - 1))


def _line_chunks(handle, batch_bytes: int) -> Iterator[bytes]:
    """The file as runs of whole lines of about ``batch_bytes``. A line already longer than
    MAX_LINE_BYTES is not held: it is passed on as a stand-in of MAX_LINE_BYTES + 1 bytes
    (unparseable for its length alone) and the rest of it is skipped, so memory stays bounded
    by the batch whatever the file holds."""
    carry = b""
    while True:
        block = handle.read(max(batch_bytes, len(carry)))  # a long line: read on in doubling steps
        if not block:
            if carry:
                yield carry
            return
        buf = carry + block if carry else block
        cut = _line_end(buf)
        if cut >= 0:
            yield buf[:cut + 1]
            carry = buf[cut + 1:]
        else:
            carry = buf
        if len(carry) > MAX_LINE_BYTES + 1:  # (+1: it may end in the CR of a CRLF)
            yield b"?" * (MAX_LINE_BYTES + 1) + b"\n"
            carry = _skip_line(handle, carry, batch_bytes)


def _skip_line(handle, carry: bytes, batch_bytes: int) -> bytes:
    """What follows the end of the line that ``carry`` begins, reading on as far as needed."""
    buf = carry
    while True:
        ends = [i for i in (buf.find(b"\n"), buf.find(b"\r")) if i >= 0]
        if ends:
            end = min(ends)
            if buf[end:end + 1] == b"\r" and end + 1 == len(buf):
                more = handle.read(1)
                return b"" if more in (b"", b"\n") else more
            if buf[end:end + 2] == b"\r\n":
                end += 1
            return buf[end + 1:]
        buf = handle.read(batch_bytes)
        if not buf:
            return b""


def _lines(utf8: bytes) -> pl.Series:
    """Every line of the buffer with its line end (LF or CRLF) removed. Their number is
    known from the bytes; Polars' native reader (one column, no quote, in parallel) is used
    when it agrees, a plain split otherwise."""
    expected = utf8.count(b"\n") + (0 if not utf8 or utf8.endswith(b"\n") else 1)
    if expected == 0:
        return pl.Series("line", [], dtype=pl.String)
    if b"\x1f" not in utf8:
        try:
            lines = pl.read_csv(io.BytesIO(utf8), has_header=False, separator="\x1f",
                                quote_char=None, schema={"line": pl.String},
                                truncate_ragged_lines=True)["line"]
        except pl.exceptions.PolarsError:
            lines = None
        if lines is not None and lines.len() == expected:
            return lines.fill_null("")
    parts = utf8.decode("utf-8").split("\n")
    if utf8.endswith(b"\n"):
        parts.pop()
    return pl.Series("line", parts, dtype=pl.String).str.strip_suffix("\r")


def _field_counts(lines: pl.Series, delimiter: str) -> pl.Series:
    """Fields per line; lazily, so Polars counts the line chunks in parallel."""
    return lines.to_frame().lazy().select(
        pl.col(lines.name).str.count_matches(delimiter, literal=True) + 1
    ).collect().to_series().rechunk()


def _parse_lines(path: Path, run: list[bytes], names: list[str], delimiter: str,
                 first_row: int, first_line: int, header: bool) -> _Part:
    """Rows and unparseable rows of a run of whole lines, taken out of ``run`` so the bytes
    are freed once read (UTF-8; the file's first line, the header, skipped when ``header``).
    ``first_line`` is the file line number of the first data line, ``first_row`` its row
    number if it is a row.

    Polars' native reader reads the whole run at once: quote-aware when every quote pairs up
    within its line (then no quote can run past a line end), quote-blind otherwise, and only
    if it gives one record per line. Lines it cannot take are split by hand and put back in
    file order."""
    utf8 = run.pop()
    if b"\r" in utf8 and utf8.count(b"\r") != utf8.count(b"\r\n"):
        utf8 = utf8.replace(b"\r\n", b"\n").replace(b"\r", b"\n")  # a lone CR ends a line too
    lines = _lines(utf8)
    table = _classified(lines.slice(1) if header else lines, delimiter, len(names), first_row,
                        first_line, b'"' in utf8)
    del lines
    n = table.height
    unparseable = table.filter(pl.col("problem").is_not_null()).select(
        pl.col(ROW_NUMBER).alias("row_number"), "line_number", "problem")
    rows_read = n - table["blank"].sum()
    ok = pl.col("problem").is_null() & ~pl.col("blank")
    quoted = table["quoted"].any()
    risky = quoted and table.select((pl.col("broken") | pl.col("inner_quote")).any()).item()
    by_hand = table.filter(ok & pl.col("quoted")) if risky else table.clear()
    table = table.select(ROW_NUMBER, "quoted", ok.alias("ok"))  # the lines are not needed now
    keep = table["ok"] & ~table["quoted"] if risky else table["ok"]
    frame = None
    if keep.any():
        frame = _native(utf8, names, delimiter, header, '"' if quoted and not risky else None, n)
        if frame is None:  # the reader does not see the lines as counted: split them by hand
            lines = _lines(utf8)
            by_hand = table.with_columns(line=lines.slice(1) if header else lines).filter("ok")
            keep = keep & False
    del utf8
    try:
        rows = _empty_rows(names)
        if frame is not None:
            # Numbered by line; with blank lines (filtered out below) by row. A row number put
            # in with with_columns would make the next select copy every column into one chunk.
            rows = frame.with_row_index(ROW_NUMBER, offset=first_row)
            if not keep.all():
                rows = rows.filter(keep).with_columns(table[ROW_NUMBER].filter(keep))
            rows = rows.with_columns(pl.col(ROW_NUMBER).cast(pl.Int64)).select(ROW_NUMBER, *names)
        if by_hand.height:
            rows = pl.concat([rows, _split_by_hand(by_hand, names, delimiter)]).sort(ROW_NUMBER)
    except ValueError as problem:
        raise UnreadableExtract(path, f"internal error: {problem}")
    if rows.height + unparseable.height != rows_read:
        raise UnreadableExtract(path, f"internal error: lines {first_line}-{first_line + n - 1} "
                                f"hold {rows_read} rows but {rows.height} + "
                                f"{unparseable.height} were accounted for")
    return _Part(rows, unparseable, rows_read, n)


def _classified(lines: pl.Series, delimiter: str, width: int, first_row: int, first_line: int,
                any_quote: bool) -> pl.DataFrame:
    """Each line with its row and line number, whether it is blank (not a row), what makes it
    unparseable (null if nothing), and whether it holds a quote (``quoted``) or a quote
    inside an unquoted field (``inner_quote``)."""
    n = lines.len()
    fields = _field_counts(lines, delimiter)
    false = pl.repeat(False, n, eager=True)
    blank, quoted, broken, inner = false, false, false, false
    quote_problem = pl.lit(None, pl.String)
    if (fields == 1).any():  # only a line without a delimiter can be blank
        blank = (fields == 1) & (lines.str.strip_chars().str.len_bytes() == 0)
    if any_quote:
        quoted = lines.str.contains('"', literal=True)
        at = quoted.arg_true()
        if at.len():
            checked = _quotes_checked(lines.gather(at), delimiter)
            fields = fields.scatter(at, checked["fields"])
            broken = false.clone().scatter(at, checked["broken"])
            inner = false.clone().scatter(at, checked["inner_quote"])
            quote_problem = pl.repeat(None, n, dtype=pl.String, eager=True).scatter(
                at, checked["problem"])
    if blank.any():
        row_numbers = (~blank).cast(pl.Int64).cum_sum() + (first_row - 1)
    else:
        row_numbers = pl.int_range(first_row, first_row + n, dtype=pl.Int64, eager=True)
    long = lines.str.len_bytes() > MAX_LINE_BYTES
    table = pl.DataFrame({
        ROW_NUMBER: row_numbers,
        "line_number": pl.int_range(first_line, first_line + n, dtype=pl.Int64, eager=True),
        "line": lines, "fields": fields, "blank": blank, "quoted": quoted,
        "broken": broken, "inner_quote": inner, "long": long,
    })
    bad = ~pl.col("blank") & (pl.col("long") | pl.col("broken") | (pl.col("fields") != width))
    problem = pl.repeat(None, n, dtype=pl.String, eager=True)
    at = table.select(bad.arg_true()).to_series()
    if at.len():  # the reason, worded for the few lines that need one
        reasons = table[at].with_columns(quote_problem=quote_problem.gather(at)
                                         if isinstance(quote_problem, pl.Series)
                                         else quote_problem).select(
            pl.when(pl.col("long")).then(pl.lit(f"longer than {MAX_LINE_BYTES:,} bytes"))
            .when(pl.col("broken")).then(pl.col("quote_problem"))
            .otherwise(_fields_problem(width))).to_series()
        problem = problem.scatter(at, reasons)
    return table.with_columns(problem.alias("problem"))


def _quotes_checked(lines: pl.Series, delimiter: str) -> pl.DataFrame:
    """For lines with a quote: ``broken`` if the quotes do not pair up within the line
    (each field empty, unquoted and not starting with a quote, or quoted with "" inside),
    with the reason; else its field count, and whether a quote sits inside an unquoted
    field (kept as text, as the csv module does)."""
    d = _regex_char(delimiter)
    bare = pl.col("line").str.replace_all(f'(^|{d})"(?:[^"]|"")*"', "${1}")
    return lines.alias("line").to_frame().lazy().select(
        pl.col("line").str.contains(_quoted_line_pattern(delimiter)).not_().alias("broken"),
        pl.when(pl.col("line").str.count_matches('"', literal=True) % 2 == 1)
        .then(pl.lit("a quote that does not close within the line"))
        .otherwise(pl.lit("a quote out of place (text after a closing quote)")).alias("problem"),
        (bare.str.count_matches(delimiter, literal=True) + 1).alias("fields"),
        bare.str.contains('"', literal=True).alias("inner_quote"),
    ).collect()


def _split_by_hand(lines: pl.DataFrame, names: list[str], delimiter: str) -> pl.DataFrame:
    """Parseable lines that the native read did not take: those without a quote split at
    the delimiter, those with one read with quoting on, line by line in effect (their quotes
    pair up), and those with a quote inside an unquoted field by the csv module."""
    quoted = lines["quoted"] if "quoted" in lines.columns else lines["line"].str.contains(
        '"', literal=True)
    plain = lines.filter(~quoted)
    quoted_lines = lines.filter(quoted).with_columns(_quotes_checked(
        lines.filter(quoted)["line"], delimiter)["inner_quote"])
    split = plain.select(
        ROW_NUMBER, pl.col("line").str.split_exact(delimiter, len(names) - 1)
        .struct.rename_fields(names).alias("f")).unnest("f")
    return pl.concat([
        split,
        _quoted_by_polars(quoted_lines.filter(~pl.col("inner_quote")), names, delimiter),
        _quoted_by_csv(quoted_lines.filter(pl.col("inner_quote")), names, delimiter),
    ])


def _empty_rows(names: list[str]) -> pl.DataFrame:
    return pl.DataFrame(schema={ROW_NUMBER: pl.Int64, **{n: pl.String for n in names}})


def _native(utf8: bytes, names: list[str], delimiter: str, header: bool,
            quote_char: str | None, lines: int) -> pl.DataFrame | None:
    """Polars' reader over the run of lines, if it gives one record per line."""
    try:
        frame = pl.read_csv(io.BytesIO(utf8), has_header=False, skip_lines=1 if header else 0,
                            separator=delimiter, quote_char=quote_char,
                            schema={n: pl.String for n in names}, truncate_ragged_lines=True,
                            missing_columns="insert", extra_columns="ignore")
    except pl.exceptions.PolarsError:
        return None
    return frame if frame.height == lines else None


def _quoted_by_polars(lines: pl.DataFrame, names: list[str], delimiter: str) -> pl.DataFrame:
    """Lines whose quoted fields pair up, read together by Polars' reader with quoting on."""
    if lines.is_empty():
        return _empty_rows(names)
    text = lines["line"].str.join("\n").item().encode("utf-8")
    frame = _native(text, names, delimiter, False, '"', lines.height)
    if frame is None:
        return _quoted_by_csv(lines, names, delimiter)
    return frame.select(lines[ROW_NUMBER], *names)


def _quoted_by_csv(lines: pl.DataFrame, names: list[str], delimiter: str,
                   step: int = 50_000) -> pl.DataFrame:
    """The exact, slow split, a slice at a time so the Python objects stay few."""
    parts = [_empty_rows(names)]
    for start in range(0, lines.height, step):
        part = lines.slice(start, step)
        records = list(csv.reader(part["line"].to_list(), delimiter=delimiter, strict=True))
        if len(records) != part.height or any(len(r) != len(names) for r in records):
            raise ValueError("a line whose quotes pair up did not split as one record")
        columns = {ROW_NUMBER: part[ROW_NUMBER]}
        for j, name in enumerate(names):
            columns[name] = pl.Series(name, [r[j] for r in records], dtype=pl.String)
        parts.append(pl.DataFrame(columns))
    return pl.concat(parts)


def _fields_problem(width: int) -> pl.Expr:
    # concat_str, not pl.format: Polars 2.1 panics formatting a filtered multi-chunk column.
    return pl.concat_str(pl.col("fields").cast(pl.String), pl.lit(f" fields, header has {width}"))


# -- Parquet ----------------------------------------------------------------------------
def _usable(kind) -> bool:
    """Arrow types whose values have a contract text: strings, numbers, dates, timestamps."""
    import pyarrow as pa

    t = pa.types
    if t.is_dictionary(kind):
        return _usable(kind.value_type)
    return any(check(kind) for check in (
        t.is_string, t.is_large_string, t.is_string_view, t.is_integer, t.is_floating,
        t.is_decimal, t.is_date32, t.is_timestamp, t.is_null))


def _parquet_parts(path: Path, schema: ExtractSchema, batch_bytes: int
                   ) -> Iterator[_Header | _Part]:
    import pyarrow.parquet as pq

    def unreadable(problem: Exception) -> UnreadableExtract:
        return UnreadableExtract(path, f"not a readable Parquet file ({type(problem).__name__})")

    try:
        parquet = pq.ParquetFile(path)
        arrow_schema = parquet.schema_arrow
    except Exception as problem:  # pyarrow raises several kinds for a bad file
        raise unreadable(problem)
    names = _header_names(path, arrow_schema.names, schema)
    wanted = {n: o for n, o in zip(names, arrow_schema.names) if n in schema.names}
    for name, original in wanted.items():
        kind = arrow_schema.field(original).type
        if not _usable(kind):
            raise UnreadableExtract(path, f"column {name} has the Parquet type "
                                    f"{mask(str(kind))}, which has no contract text (use "
                                    "text, numbers, dates or timestamps)")
    yield _Header(names)

    total = parquet.metadata.num_rows
    size = sum(parquet.metadata.row_group(i).total_byte_size
               for i in range(parquet.metadata.num_row_groups))
    batch_rows = max(1, batch_bytes // max(1, size // max(total, 1)))
    columns = list(wanted.values())
    try:
        if batch_rows >= total:
            tables: Iterable = [parquet.read(columns=columns)]
        else:
            tables = parquet.iter_batches(batch_size=batch_rows, columns=columns)
        first = 1
        for table in tables:
            height = table.num_rows
            frame = pl.DataFrame(pl.from_arrow(table)).rename(
                {o: n for n, o in wanted.items()})
            frame = frame.select(
                pl.int_range(first, first + height, dtype=pl.Int64).alias(ROW_NUMBER),
                *[_as_text(c, t) for c, t in frame.schema.items()])
            first += height
            yield _Part(frame, _no_unparseable(), height, height)
    except UnreadableExtract:
        raise
    except Exception as problem:
        raise unreadable(problem)


def _as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    """Parquet values written as the contract's text, so one set of rules applies. A
    timestamp with a time zone becomes Danish local time; a naive one already is."""
    column = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            column = column.dt.convert_time_zone(LOCAL_ZONE).dt.replace_time_zone(None)
        return column.dt.strftime("%Y-%m-%d %H:%M:%S").alias(name)
    if dtype == pl.Date:
        return column.dt.strftime("%Y-%m-%d").alias(name)
    if dtype.is_float():
        # Whole numbers print without ".0"; beyond 2**53 a float is not an exact whole number.
        whole = column.is_finite() & (column == column.round()) & (column.abs() < 2.0**53)
        return (pl.when(whole).then(column.cast(pl.Int64, strict=False).cast(pl.String))
                .otherwise(column.cast(pl.String))).alias(name)
    return column.cast(pl.String).alias(name)
