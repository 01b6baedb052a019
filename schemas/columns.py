"""Column kinds of the data contract and the Pandera checks each kind carries.

An extract arrives as text. Validation runs on a *typed* frame in which every
column ``c`` sits beside its trimmed text ``__raw__c``, so a check can tell
"empty" from "present but not a date" and the quarantine can show the value as
it was delivered. Every check is vectorised and named after the contract rule
it enforces; that name is the ``rule`` a quarantined row carries.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Literal

import polars as pl


def _pandera_without_hypothesis() -> None:
    """Pandera imports hypothesis (0.4 s, for synthesising data, which no run does) and its
    pandas engine (typeguard, asyncio: 0.1 s) whenever they are installed. Both are hidden
    while Pandera loads, unless something imported them already: its polars-only mode."""
    import importlib.abc
    import sys

    hidden = {"hypothesis", "pandas"} - set(sys.modules)

    class Hide(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in hidden:  # as if not installed, the way Pandera checks
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    finder = Hide()
    sys.meta_path.insert(0, finder)
    try:
        import pandera.polars  # noqa: F401
        import pandera.strategies.base_strategies  # noqa: F401  (what imports hypothesis)
    finally:
        sys.meta_path.remove(finder)


_pandera_without_hypothesis()
import pandera.polars as pa  # noqa: E402
from pandera.api.polars.types import PolarsData  # noqa: E402

from pipelines import cpr as cpr_rules  # noqa: E402
from pipelines import privacy, scratch  # noqa: E402

Kind = Literal["string", "integer", "date", "datetime", "answer", "code", "cpr"]

ANSWERS = ("ja", "nej", "uoplyst")
DATE_SHAPE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
# Hours 00-23, minutes and seconds 00-59 (no 24:00, no leap second), as Python's datetime.
DATETIME_SHAPE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"

RULES = {
    "required": "a required value is empty",
    "type_integer": "not a whole number",
    "type_date": "not a date YYYY-MM-DD",
    "type_datetime": "not a datetime YYYY-MM-DD HH:MM[:SS]",
    "domain": "not one of the allowed values",
    "range": "outside the allowed range",
    "valid_cpr": "not a valid CPR number (shape, date or century rule)",
    "known_code": "not a code in the reference tables",
    "before_admission": "precedes admission_at",
    "after_extract_date": "lies after the extract date",
    "duplicate_record_id": "record_id already seen earlier in the same file",
    "record_id_is_cpr": "a record id shaped like a CPR number (never stored)",
    "unparseable_row": "the line cannot be split into the header's fields (field count, "
                       "a quote that does not close within the line, or too long)",
}


def raw(name: str) -> str:
    return f"__raw__{name}"


@dataclass(frozen=True)
class ValidationContext:
    """What a file is checked against besides its own rows: the extract date and the codes
    of every reporting level's reference table."""

    extract_date: dt.date
    hospital_codes: frozenset[str] = frozenset()
    municipality_codes: frozenset[int] = frozenset()
    other_codes: tuple[tuple[str, frozenset], ...] = ()  # (level, codes) of further levels

    def codes(self, level: str) -> frozenset:
        known = {"hospital": self.hospital_codes, "municipality": self.municipality_codes,
                 **dict(self.other_codes)}
        return known.get(level, frozenset())


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: Kind
    required: bool = True
    allowed: tuple[str, ...] = ()  # domain of a code column (compared upper case)
    pattern: str | None = None  # domain of a code column given as a regex instead
    minimum: int | None = None
    maximum: int | None = None
    reference: str | None = None  # a reporting level whose reference table holds the code
    not_before: str | None = None  # a date or datetime column this one must not precede
    unique_in_file: bool = False
    is_record_id: bool = False  # an identifier: refused when shaped like a CPR number
    dtype: pl.DataType = field(default=None)  # type: ignore[assignment]
    sql_type: str = ""  # the warehouse column type

    def __post_init__(self) -> None:
        default = {
            "string": pl.String, "code": pl.String, "cpr": pl.String, "answer": pl.String,
            "integer": pl.Int64, "date": pl.Date, "datetime": pl.Datetime("us"),
        }[self.kind]
        if self.dtype is None:
            object.__setattr__(self, "dtype", default)
        if not self.sql_type:
            sql = {"integer": "BIGINT", "date": "DATE", "datetime": "TIMESTAMP"}
            object.__setattr__(self, "sql_type", sql.get(self.kind, "VARCHAR"))

    @property
    def order_rule(self) -> str:
        """The rule name of a date-order check: before_admission for admission_at."""
        return "before_" + re.sub(r"_(at|date)$", "", self.not_before or "")

    # -- typing ---------------------------------------------------------------
    def typed(self) -> pl.Expr:
        """The typed value from the trimmed text; null where it is empty or malformed."""
        text = pl.col(raw(self.name))
        if self.kind == "integer":
            value = pl.when(text.str.contains(r"^[+-]?[0-9]+$")).then(text.cast(pl.Int64, strict=False))
        elif self.kind == "date":
            value = pl.when(text.str.contains(DATE_SHAPE)).then(
                text.str.to_date("%Y-%m-%d", strict=False))
        elif self.kind == "datetime":
            # Only the shape here; ExtractSchema.typed parses what fits it.
            return pl.when(text.str.contains(DATETIME_SHAPE)).then(text).alias(self.name)
        elif self.kind == "answer":
            value = text.str.to_lowercase().fill_null("uoplyst")
        elif self.kind == "code":
            value = text.str.to_uppercase()
        elif self.kind == "cpr":
            value = cpr_rules.normalised(text)
        else:
            value = text
        # Not strict: a whole number too large for the column is null (type_integer), not a crash.
        return value.cast(self.dtype, strict=False).alias(self.name)

    # -- checks ---------------------------------------------------------------
    def checks(self, context: ValidationContext) -> list[pa.Check]:
        checks: list[pa.Check] = []
        name, text = self.name, pl.col(raw(self.name))
        value = pl.col(name)
        if self.required and self.kind != "answer":
            checks.append(_check("required", text.is_not_null(), ignore_na=False))
        if self.kind in ("integer", "date", "datetime"):
            checks.append(_check(f"type_{self.kind}", text.is_null() | value.is_not_null(),
                                 ignore_na=False))
        if self.kind == "answer":
            checks.append(_check("domain", value.is_in(list(ANSWERS))))
        if self.allowed:
            checks.append(_check("domain", value.is_in(list(self.allowed))))
        if self.pattern:
            # A free code must not smuggle a CPR number in (e.g. a diagnosis + ten digits).
            checks.append(_check("domain", value.str.contains(self.pattern)
                                 & ~privacy.holds_cpr_expr(value)))
        if self.is_record_id:
            checks.append(_check("record_id_is_cpr", ~privacy.holds_cpr_expr(text)))
        if self.minimum is not None or self.maximum is not None:
            low = self.minimum if self.minimum is not None else -(2**62)
            high = self.maximum if self.maximum is not None else 2**62
            checks.append(_check("range", value.is_between(low, high)))
        if self.kind == "cpr":  # the birth date typed() computed from the same text
            checks.append(_check("valid_cpr",
                                 text.is_null() | pl.col(cpr_rules.BIRTH_DATE).is_not_null()))
        if self.reference:
            known = pl.Series(sorted(context.codes(self.reference)), dtype=self.dtype)
            checks.append(_check("known_code", value.is_in(known.implode())))
        if self.not_before:
            other = pl.col(self.not_before)
            checks.append(_check(self.order_rule, other.is_null() | (value >= other)))
        if self.kind in ("date", "datetime"):
            day = value if self.kind == "date" else value.dt.date()
            checks.append(_check("after_extract_date", day <= pl.lit(context.extract_date)))
        if self.unique_in_file:
            checks.append(_check("duplicate_record_id", value.is_first_distinct()))
        return checks


def _check(rule: str, passes: pl.Expr, ignore_na: bool = True) -> pa.Check:
    def vectorised(data: PolarsData, _passes: pl.Expr = passes) -> pl.LazyFrame:
        return data.lazyframe.select(_passes.fill_null(ignore_na).alias(data.key))

    return pa.Check(vectorised, name=rule, ignore_na=False)


@dataclass(frozen=True)
class ExtractSchema:
    """One registry extract: its columns, in the contract's order."""

    source: str
    columns: tuple[ColumnSpec, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_names(self) -> list[str]:
        """Columns without which a file cannot be read (the contract's types without '?',
        except ja/nej/uoplyst answers, which mean uoplyst when absent)."""
        return [c.name for c in self.columns if c.required and c.kind != "answer"]

    def typed(self, raw_frame: pl.DataFrame) -> pl.DataFrame:
        """Raw text columns renamed to ``__raw__c`` next to their typed values, and the CPR
        number's birth date (null when it is not a valid CPR number) beside them."""
        renamed = raw_frame.select([pl.col(c).alias(raw(c)) for c in self.names])
        born = [cpr_rules.birth_date(pl.col(raw(c.name))).alias(cpr_rules.BIRTH_DATE)
                for c in self.columns if c.kind == "cpr"]
        typed = renamed.lazy().with_columns([c.typed() for c in self.columns] + born).collect()
        return _parse_datetimes(typed, [c.name for c in self.columns if c.kind == "datetime"])

    def pandera(self, context: ValidationContext) -> pa.DataFrameSchema:
        return pa.DataFrameSchema(
            {c.name: pa.Column(c.dtype, nullable=True, checks=c.checks(context))
             for c in self.columns},
            name=self.source,
            strict=False,  # the __raw__ columns and the birth date ride along
        )




def _parse_datetimes(frame: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """Well-shaped datetime text to timestamps, null where the date does not exist.

    DuckDB's ISO cast parses these three times faster than Polars' strptime (which
    needs the 'T' replaced and ':00' appended first) and datetime parsing was the
    largest part of typing a registry extract; the shape check stays in Polars."""
    if not names:
        return frame
    casts = ", ".join(f'try_cast("{n}" AS TIMESTAMP) AS "{n}"' for n in names)
    shaped = frame.select(names).to_arrow(compat_level=pl.CompatLevel.newest())  # noqa: F841
    with scratch.cursor() as con:
        parsed = pl.from_arrow(con.sql(f"SELECT {casts} FROM shaped").to_arrow_table())
    return frame.with_columns(parsed[n].cast(pl.Datetime("us")) for n in names)
