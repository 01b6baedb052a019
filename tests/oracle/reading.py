"""Extract files to rows of text: the oracle's own CSV and Parquet reading.

CSV is decoded as UTF-8 (a byte-order mark is dropped), else cp1252; the delimiter is the one
of ';' and ',' that splits the header into more known column names. Every physical line is
split on its own, so a broken line cannot swallow the lines after it.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

DANISH_TIME = ZoneInfo("Europe/Copenhagen")


class Unreadable(Exception):
    """The file as a whole cannot be read (encoding, delimiter, missing required columns)."""


@dataclass
class Line:
    """One data line: its row number (data rows from 1) and its values by column name,
    or ``None`` when the line cannot be split into the header's fields."""

    number: int
    values: dict[str, str | None] | None


@dataclass
class Table:
    columns: list[str]
    lines: list[Line] = field(default_factory=list)


def decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError as problem:
            raise Unreadable(f"neither UTF-8 nor cp1252: {problem.reason}")
    return text[1:] if text.startswith("\ufeff") else text


def split(line: str, delimiter: str) -> list[str] | None:
    try:
        rows = list(csv.reader([line], delimiter=delimiter, strict=True))
    except csv.Error:
        return None
    return rows[0] if len(rows) == 1 else None


def header_name(text: str) -> str:
    return text.strip()


def read_csv(path: Path, known: set[str]) -> Table:
    text = decode(path.read_bytes())
    physical = re.split(r"\r\n|\n|\r", text)
    if not physical or not physical[0].strip():
        raise Unreadable("no header row")
    header = None
    best = -1
    tie = False
    for delimiter in (";", ","):
        names = split(physical[0], delimiter)
        if names is None:
            continue
        score = sum(1 for n in names if header_name(n) in known)
        if score > best:
            best, header, chosen, tie = score, names, delimiter, False
        elif score == best:
            tie = True
    if header is None or tie or best <= 0:
        raise Unreadable("cannot tell the delimiter from the header")
    columns = [header_name(n) for n in header]
    table = Table(columns)
    number = 0
    for raw in physical[1:]:
        if raw.strip() == "":
            continue  # a blank line (or only spaces) is not a row
        number += 1
        fields = split(raw, chosen)
        if fields is None or len(fields) != len(columns):
            table.lines.append(Line(number, None))
        else:
            table.lines.append(Line(number, dict(zip(columns, fields))))
    return table


def as_text(value) -> str | None:
    """A Parquet cell as the text a CSV would carry (aware timestamps in Danish local time)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(DANISH_TIME).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_parquet(path: Path) -> Table:
    import pyarrow.parquet as pq  # only to read Parquet

    try:
        data = pq.read_table(path).to_pydict()
    except Exception as problem:  # pyarrow raises several kinds for a broken file
        raise Unreadable(f"not a Parquet file: {problem}")
    columns = [header_name(c) for c in data]
    table = Table(columns)
    size = len(next(iter(data.values()))) if data else 0
    for i in range(size):
        table.lines.append(Line(i + 1, {c: as_text(data[raw][i]) for c, raw in zip(columns, data)}))
    return table


def read(path: Path, known: set[str]) -> Table:
    if path.suffix.lower() == ".parquet":
        return read_parquet(path)
    return read_csv(path, known)
