"""The one gate for CPR-shaped values: everything that can carry input text passes ``mask``.

The ``cpr`` column is pseudonymised at ingest. Any *other* text that came from an
input file — values of other columns, header names, file names, exception texts
from Polars, DuckDB or Pandera — may hold a CPR number too, so it passes this
module before it is stored, logged, reported or raised.

A CPR-shaped value is ten digits ``DDMMYYSSSS``, optionally with a hyphen or a
space after the sixth, whose first six digits form a real date by the century
rule: what could be a CPR number. A longer run of digits is masked wherever such
a window occurs in it, so no ten-digit window of the original survives.
"""

from __future__ import annotations

import datetime as dt
import logging
import re

import polars as pl

HIDDEN_CPR = "<cpr hidden>"
# A candidate window; overlapping windows are found with a lookahead.
_WINDOW = re.compile(r"(?=([0-9]{6}[- ]?[0-9]{4}))")
_CANDIDATE = r"[0-9]{6}[- ]?[0-9]{4}"  # the same shape, for Polars' regex engine


def century(yy: int, seventh: int) -> int:
    """The contract's century rule from the year digits and the first serial digit."""
    if seventh <= 3:
        return 1900
    if seventh in (4, 9):
        return 2000 if yy <= 36 else 1900
    return 2000 if yy <= 57 else 1800


def could_be_cpr(digits: str) -> bool:
    """Ten digits whose first six form a real date by the century rule."""
    if len(digits) != 10 or not digits.isdigit():
        return False
    day, month, yy, seventh = int(digits[:2]), int(digits[2:4]), int(digits[4:6]), int(digits[6])
    try:
        dt.date(century(yy, seventh) + yy, month, day)
    except ValueError:
        return False
    return True


def cpr_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of every window of ``text`` that could be a CPR number, merged."""
    spans: list[tuple[int, int]] = []
    for match in _WINDOW.finditer(text):
        window = match.group(1)
        if could_be_cpr(window.replace("-", "").replace(" ", "")):
            start, end = match.start(1), match.end(1)
            if spans and start <= spans[-1][1]:
                spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
            else:
                spans.append((start, end))
    return spans


def mask(text: object) -> str:
    """``text`` with every CPR-shaped value replaced by ``<cpr hidden>``."""
    text = str(text)
    if not re.search(_CANDIDATE, text):
        return text
    out, last = [], 0
    for start, end in cpr_spans(text):
        out += [text[last:start], HIDDEN_CPR]
        last = end
    out.append(text[last:])
    return "".join(out)


def holds_cpr(text: str | None) -> bool:
    return text is not None and bool(cpr_spans(str(text)))


def masked(column: pl.Expr) -> pl.Expr:
    """``mask`` on a string column; only values with a candidate window go through Python."""
    return (pl.when(column.str.contains(_CANDIDATE))
            .then(column.map_elements(mask, return_dtype=pl.String))
            .otherwise(column))


def holds_cpr_expr(column: pl.Expr) -> pl.Expr:
    """True where a string value holds a CPR-shaped window (vectorised prefilter first)."""
    return (pl.when(column.str.contains(_CANDIDATE))
            .then(column.map_elements(holds_cpr, return_dtype=pl.Boolean))
            .otherwise(False))


def masked_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Every string column of a frame masked (for tables that carry input text)."""
    return frame.with_columns(masked(pl.col(c)).alias(c)
                              for c, t in frame.schema.items() if t == pl.String)


class MaskedError(RuntimeError):
    """An exception whose text passed the gate; the original is not chained (its text and
    its locals could carry input values)."""

    masked = True


def masked_error(problem: BaseException) -> MaskedError:
    return MaskedError(f"{type(problem).__name__}: {mask(problem)}")


def gated(function):
    """Run ``function``; an exception leaving it has passed the gate. Used on every Prefect task
    and flow, whose exception texts Prefect stores in its database as state messages."""
    import functools

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except Exception as problem:
            error = problem if getattr(problem, "masked", False) else masked_error(problem)
        raise error  # raised outside the handler: the unmasked original is not chained

    return wrapper


def one_line(problem: BaseException, limit: int = 300) -> str:
    """A one-line, masked cause for a report: the exception's type and first line."""
    text = mask(problem).strip().splitlines()
    first = text[0] if text else ""
    if len(first) > limit:
        first = first[:limit] + " …"
    if isinstance(problem, MaskedError):  # its text already starts with the original's type
        return first
    return f"{type(problem).__name__}: {first}" if first else type(problem).__name__


_factory = logging.getLogRecordFactory()


def _masking_factory(*args, **kwargs) -> logging.LogRecord:
    """Every log record of the process, ours and Prefect's, leaves masked: the message is
    rendered and masked, and an exception's traceback is rendered and masked up front."""
    record = _factory(*args, **kwargs)
    try:
        message = record.getMessage()
    except Exception:  # a malformed record: keep what can be shown safely
        message = str(record.msg)
    record.msg, record.args = mask(message), None
    if record.exc_info and record.exc_info[1] is not None:
        import traceback

        record.exc_text = mask("".join(traceback.format_exception(*record.exc_info)).rstrip())
        record.exc_info = None
    return record


def install_log_gate() -> None:
    """Route every log record through ``mask`` (idempotent)."""
    if logging.getLogRecordFactory() is not _masking_factory:
        logging.setLogRecordFactory(_masking_factory)
