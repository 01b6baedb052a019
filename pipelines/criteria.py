"""Compile definition criteria to Polars expressions (never Python eval).

A criterion is SQL-style text (parsed by ``polars.sql_expr``) or one of a small
vocabulary of named shapes. Every compiled criterion is two-valued: a missing
value never meets a criterion (SQL's unknown becomes false).

A condition's text is measured before Polars sees it: Polars' SQL parser and
optimiser recurse over the expression tree, so a 6,000-term AND chain crashed
the process and 1,000 terms took over 20 s (200 terms: 0.2 s, 100: 0.02 s).
Only a few characters, functions, terms and nesting levels are accepted; then
the condition is tried on an empty frame (types) and on synthetic sample records
(values), so that a definition that would fail mid-run fails ``indicators check``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pipelines.definitions import (
    All, AnyOf, Criterion, Definition, DefinitionError, Link, Linked, Not, OnOrBefore,
    Within, one_line, registry_columns,
)
from schemas import EXTRACT_SCHEMAS
from schemas.columns import ANSWERS

MICROSECONDS_PER_MINUTE = 60_000_000

# -- bounds on a condition's text (documented in the README, "Adding an indicator") ----------
MAX_TERMS = 100  # per condition: operands joined by AND, OR, NOT, comparisons, arithmetic
MAX_NESTING = 32  # parentheses (and brackets) inside one condition
MAX_CONDITIONS = 100  # criteria in one definition, nested ones included
MAX_TERMS_PER_DEFINITION = 400
FUNCTIONS = frozenset("""
    CAST TRY_CAST COALESCE NULLIF IFNULL IF GREATEST LEAST
    ABS CEIL CEILING FLOOR ROUND TRUNC SIGN MOD DIV SQRT CBRT EXP LN LOG10 LOG2 POW POWER
    LEFT RIGHT SUBSTR SUBSTRING LENGTH CHAR_LENGTH CHARACTER_LENGTH OCTET_LENGTH LOWER UPPER
    INITCAP TRIM LTRIM RTRIM STARTS_WITH ENDS_WITH STRPOS REGEXP_LIKE CONCAT CONCAT_WS
    REVERSE SPLIT_PART DATE TIMESTAMP DATE_PART EXTRACT STRFTIME STRPTIME
""".split())
# Words that may stand before "(" without calling anything.
_BEFORE_PARENTHESIS = frozenset("""
    AND OR NOT IN IS BETWEEN LIKE ILIKE CASE WHEN THEN ELSE FROM FOR
    DECIMAL NUMERIC VARCHAR CHAR CHARACTER
""".split())
_OPERATOR_WORDS = frozenset("AND OR NOT XOR IS IN LIKE ILIKE BETWEEN CASE WHEN THEN ELSE "
                            "REGEXP RLIKE DIV".split())
_OPERATOR_CHARS = set("=<>!+-*/%|&^~:@")
_OPERATORS = ("<=>", "->>", "<>", "!=", "<=", ">=", "==", "||", "::", "->", "!~", "~*")
_PLAIN = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_ALLOWED = _PLAIN | _OPERATOR_CHARS | set("(),.[] \t\r\n'\"")


class ConditionRefused(ValueError):
    """A condition's text outside the bounds, found before any parser sees it."""


def measure(text: str) -> int:
    """The condition's number of terms, after checking characters, functions and nesting.

    A small scanner that knows exactly the quoting Polars' SQL dialect shares with it:
    'text' with '' inside, "name" with "" inside. Anything it could read differently
    (comments, $-quotes, backticks, prefixed strings such as E'...') is refused."""
    operators, depth, deepest, i, n = 0, 0, 0, 0, len(text)
    previous = ""  # the word or quoted name just before, to recognise a function call
    while i < n:
        ch = text[i]
        if ch not in _ALLOWED:
            raise ConditionRefused(f"character {ch!r} is not allowed outside quotes")
        if ch in "'\"":
            if i and (text[i - 1] in _PLAIN or text[i - 1] == "&"):
                raise ConditionRefused(f"put a space before the quote at position {i + 1} "
                                       "(prefixed strings such as E'...' are not allowed)")
            end = i + 1
            while True:
                end = text.find(ch, end)
                if end == -1:  # unterminated: the parser says so
                    return operators + 1
                if text.startswith(ch * 2, end):
                    end += 2
                    continue
                break
            previous = text[i + 1:end].upper() if ch == '"' else ""
            i = end + 1
            continue
        if ch in _PLAIN:
            end = i
            while end < n and text[end] in _PLAIN:
                end += 1
            word = text[i:end].upper()
            if word == "SELECT":
                raise ConditionRefused("subqueries (SELECT) are not allowed")
            operators += word in _OPERATOR_WORDS
            previous, i = ("" if word[0].isdigit() else word), end
            continue
        if ch in _OPERATOR_CHARS:
            if text.startswith(("--", "/*"), i):
                raise ConditionRefused("comments are not allowed in a condition; "
                                       "use a YAML comment (#) beside it")
            length = next((len(op) for op in _OPERATORS if text.startswith(op, i)), 1)
            operators += 1
            previous, i = "", i + length
            continue
        if ch in "[." and not text[i + 1:i + 2].isdigit():  # subscripts and fields chain too
            operators += 1
        if ch in "([":
            if ch == "(" and previous and previous not in FUNCTIONS | _BEFORE_PARENTHESIS:
                raise ConditionRefused(f"function {previous} is not allowed in a condition "
                                       "(see the README for the functions that are)")
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_NESTING:
                raise ConditionRefused(f"condition is nested more than {MAX_NESTING} "
                                       "parentheses deep")
        elif ch in ")]":
            depth = max(depth - 1, 0)
        if not ch.isspace():
            previous = ""
        i += 1
    return operators + 1


def _quoted(text: str) -> str:
    return repr(one_line(text, 60))


_NUMBER = re.compile(r"\b\d+\b")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def without_values(problem: BaseException, columns) -> str:
    """Polars' message without the values it quotes from the data: its first clause, with
    quoted text other than column names and every number replaced by '…'."""
    lines = str(problem).strip().splitlines()
    first = lines[0] if lines else ""
    for stop in (" for ", ": "):
        first = first.split(stop, 1)[0]
    first = _QUOTED.sub(lambda m: m.group(0) if m.group(0)[1:-1] in columns else "'…'", first)
    first = _NUMBER.sub("…", first)
    return f"{one_line(first, 160)} ({type(problem).__name__})"


# -- synthetic sample records ---------------------------------------------------------------
SAMPLE_ROWS = 6
_DIAGNOSES = ("DI21", "DI500", "DI25X9", "DI639", "DS720", "DA001", "DZ99")
_DAYS = (dt.date(2024, 2, 29), dt.date(1990, 1, 1), dt.date(2025, 1, 31))
_TIMES = (dt.datetime(2024, 2, 29, 23, 59, 59), dt.datetime(1990, 1, 1),
          dt.datetime(2025, 1, 31, 8, 30))
_TEXTS = ("S-001", "R 17/2024", "Ærø-3", "12")


def _sample_values(name: str, dtype: pl.DataType, registries: tuple[str, ...]) -> list:
    """Values the data contract lets through for a column, awkward ones included; the
    column's rules come from the first of ``registries`` that has it."""
    specs = [c for r in registries for c in EXTRACT_SCHEMAS[r].columns if c.name == name][:1]
    if name == "pseudonym":
        return ["a3f1" * 16, "0" * 64]
    if name == "age":
        return [0, 17, 18, 64, 105]
    if name == "extract_date":
        return [dt.date(2025, 1, 31), dt.date(2024, 2, 29)]
    if not specs or specs[0].dtype != dtype:
        return _by_type(dtype)
    spec = specs[0]
    if spec.kind == "answer":
        values = list(ANSWERS)
    elif spec.kind == "code" and spec.allowed:
        values = list(spec.allowed)
    elif spec.kind == "code" and spec.pattern:
        values = [d for d in _DIAGNOSES if re.match(spec.pattern, d)]
    elif spec.kind == "code":
        values = ["H401", "SGH-7", "6620"]
    elif spec.kind == "integer" and (spec.minimum is not None or spec.maximum is not None):
        low = spec.minimum if spec.minimum is not None else 0
        high = spec.maximum if spec.maximum is not None else low + 100
        values = [low, high, (low + high) // 2]
    elif spec.kind == "integer" and spec.reference == "municipality":
        values = [101, 851, 147]
    else:
        values = _by_type(dtype)
    return values + [None] if not spec.required and spec.kind != "answer" else values


def _by_type(dtype: pl.DataType) -> list:
    if dtype == pl.String:
        return list(_TEXTS)
    if dtype == pl.Date:
        return list(_DAYS)
    if isinstance(dtype, pl.Datetime):
        return list(_TIMES)
    if dtype == pl.Boolean:
        return [True, False, None]
    if dtype.is_integer():
        return [0, 1, 100]
    if dtype.is_float():
        return [0.0, 1.5]
    return [None]


def sample_frame(columns: dict[str, pl.DataType], registries: tuple[str, ...]) -> pl.DataFrame:
    """A few synthetic records that meet the data contract, chosen to be awkward: a record_id
    that is not a number, every allowed code, score bounds, leap days, empty optional fields."""
    data = {}
    for name, dtype in columns.items():
        values = _sample_values(name, dtype, registries)
        data[name] = [values[i % len(values)] for i in range(SAMPLE_ROWS)]
    return pl.DataFrame(data, schema=columns)


@dataclass
class Compiler:
    """Compiles criteria against one registry's columns; collects links that need a join."""

    registry: str
    trial: bool = False  # also try each condition on sample records (indicators check)
    columns: dict[str, pl.DataType] = field(init=False)
    sources: tuple[str, ...] = field(init=False)  # registries whose rules shape the sample
    links: dict[str, Link] = field(default_factory=dict)
    _frames: dict[str, pl.DataFrame] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.columns = registry_columns(self.registry)
        self.sources = (self.registry,)

    def frame(self, kind: str) -> pl.DataFrame:
        """An ``empty`` frame of the columns' types, or a few ``sample`` records."""
        key = f"{kind}:{self.sources}:{list(self.columns.items())}"
        if key not in self._frames:
            self._frames[key] = (pl.DataFrame(schema=self.columns) if kind == "empty"
                                 else sample_frame(self.columns, self.sources))
        return self._frames[key]

    # -- helpers ------------------------------------------------------------------------
    def _column(self, name: str, where: str) -> pl.Expr:
        if name not in self.columns:
            raise DefinitionError(f"{where}: unknown column {name!r} in registry {self.registry} "
                                  f"(known: {', '.join(sorted(self.columns))})")
        return pl.col(name)

    def _date(self, name: str, where: str) -> pl.Expr:
        column = self._column(name, where)
        dtype = self.columns[name]
        if dtype == pl.Date:
            return column
        if isinstance(dtype, pl.Datetime):
            return column.dt.date()
        raise DefinitionError(f"{where}: column {name!r} is {dtype}, not a date or datetime")

    def _datetime(self, name: str, where: str) -> pl.Expr:
        column = self._column(name, where)
        if not isinstance(self.columns[name], pl.Datetime):
            raise DefinitionError(f"{where}: a window in minutes or hours needs datetimes; "
                                  f"{name!r} is {self.columns[name]}")
        return column

    # -- the vocabulary -----------------------------------------------------------------
    def compile(self, criterion: Criterion, where: str) -> pl.Expr:
        if isinstance(criterion, str):
            expr = self._sql(criterion, where)
        elif isinstance(criterion, Within):
            expr = self.within(criterion, where)
        elif isinstance(criterion, OnOrBefore):
            bound = criterion.on_or_before
            expr = (self._date(bound.event, where)
                    <= self._date(bound.anchor, where) + pl.duration(days=bound.days))
        elif isinstance(criterion, All):
            expr = pl.all_horizontal([self.compile(c, f"{where}.all[{i}]")
                                      for i, c in enumerate(criterion.all)])
        elif isinstance(criterion, AnyOf):
            expr = pl.any_horizontal([self.compile(c, f"{where}.any[{i}]")
                                      for i, c in enumerate(criterion.any)])
        elif isinstance(criterion, Not):
            expr = ~self.compile(criterion.not_, f"{where}.not")
        elif isinstance(criterion, Linked):
            expr = self.linked(criterion.linked, where)
        else:  # pragma: no cover - the model admits nothing else
            raise DefinitionError(f"{where}: unknown criterion {criterion!r}")
        return expr.fill_null(False)

    def within(self, criterion: Within, where: str) -> pl.Expr:
        w = criterion.within
        if w.days is not None:
            gap = (self._date(w.to, where) - self._date(w.from_, where)).dt.total_days()
            return gap.is_between(0, w.days)
        minutes = w.minutes if w.minutes is not None else w.hours * 60
        gap = (self._datetime(w.to, where) - self._datetime(w.from_, where)).dt.total_microseconds()
        return gap.is_between(0, minutes * MICROSECONDS_PER_MINUTE)

    def linked(self, link: Link, where: str) -> pl.Expr:
        """A flag column the engine adds by joining the linked registry (see ``link_flags``)."""
        linked = Compiler(link.registry, trial=self.trial)
        if link.key not in linked.columns:
            raise DefinitionError(f"{where}.linked.key: unknown column {link.key!r} in "
                                  f"registry {link.registry}")
        if "record_id" not in self.columns:
            raise DefinitionError(f"{where}.linked: registry {self.registry} has no record_id")
        # The condition sees the linked registry's columns plus this registry's (theirs win).
        linked.columns = {**self.columns, **linked.columns}
        linked.sources = (link.registry, *self.sources)
        linked.compile(link.where, f"{where}.linked.where")
        name = "__linked_" + hashlib.sha1(link.model_dump_json().encode()).hexdigest()[:12]
        self.links[name] = link
        return pl.col(name)

    def _sql(self, text: str, where: str) -> pl.Expr:
        try:
            measure_within_bounds(text)
        except ConditionRefused as problem:
            raise DefinitionError(f"{where}: {problem}")
        try:
            expr = pl.sql_expr(text)
        except (Exception, pl.exceptions.PanicException) as problem:  # several error kinds
            raise DefinitionError(f"{where}: cannot parse {_quoted(text)}: {one_line(problem)}")
        for name in expr.meta.root_names():
            self._column(name, where)
            if name == "pseudonym":  # the engine carries a hash of it, for joins only
                raise DefinitionError(f"{where}: a condition cannot test pseudonym; it only "
                                      "links records")
        try:
            dtype = self.frame("empty").select(expr.alias("x")).schema["x"]
        except (Exception, pl.exceptions.PanicException) as problem:  # no data: no values shown
            raise DefinitionError(f"{where}: {_quoted(text)} does not fit the column types: "
                                  f"{one_line(problem)}")
        if dtype != pl.Boolean:
            raise DefinitionError(f"{where}: {_quoted(text)} gives {dtype}, not true/false")
        if self.trial:
            try_on(self.frame("sample"), expr, f"{where}: {_quoted(text)}", self.registry)
        return expr


def measure_within_bounds(text: str) -> int:
    terms = measure(text)
    if terms > MAX_TERMS:
        raise ConditionRefused(f"condition has {terms} terms; at most {MAX_TERMS}")
    return terms


def try_on(frame: pl.DataFrame, expr: pl.Expr, what: str, registry: str) -> None:
    """Evaluate on sample records: one value per record, no error. The message never shows
    the records' values."""
    try:
        result = frame.select(expr.alias("x"))
    except (Exception, pl.exceptions.PanicException) as problem:
        raise DefinitionError(f"{what} fails on valid {registry} records: "
                              f"{without_values(problem, frame.columns)}")
    if result.height != frame.height and expr.meta.root_names():
        raise DefinitionError(f"{what} gives {result.height} value(s) for {frame.height} records; "
                              "a condition gives one per record")


def link_flags(frame: pl.LazyFrame, links: dict[str, Link], tables: dict[str, pl.LazyFrame],
               compiler: Compiler) -> pl.LazyFrame:
    """Add one boolean column per link: some linked record refers to this record and meets
    the link's condition. Each record counts once, however many linked records it has."""
    for name, link in links.items():
        linked = Compiler(link.registry)
        linked.columns = {**compiler.columns, **linked.columns}
        condition = linked.compile(link.where, name)
        own = [c for c in condition.meta.root_names() if c not in registry_columns(link.registry)]
        parent = frame.select(["record_id", *own]).rename({"record_id": link.key})
        hits = (tables[link.registry].select(link.key, *[c for c in condition.meta.root_names()
                                                         if c not in own])
                .join(parent, on=link.key, how="inner")
                .filter(condition).select(pl.col(link.key).alias("record_id")).unique()
                .with_columns(pl.lit(True).alias(name)))
        frame = frame.join(hits, on="record_id", how="left").with_columns(pl.col(name).fill_null(False))
    return frame


@dataclass
class CompiledDefinition:
    definition: Definition
    population: pl.Expr
    denominator: pl.Expr  # population, denominator criteria, follow-up, not excluded
    numerator: pl.Expr | None
    missing: pl.Expr | None
    value: pl.Expr | None  # the median indicator's minutes


def compile_definition(definition: Definition, compiler: Compiler, cutoff=None) -> CompiledDefinition:
    d, c = definition, compiler
    population = c.compile(d.population, f"{d.id}.population")
    parts = [population] + [c.compile(x, f"{d.id}.denominator[{i}]")
                            for i, x in enumerate(d.denominator)]
    parts += [~c.compile(x, f"{d.id}.exclusions[{i}]") for i, x in enumerate(d.exclusions)]
    if d.follow_up:
        anchor = c._date(d.follow_up.from_, f"{d.id}.follow_up.from")
        limit = pl.lit(cutoff) if cutoff is not None else pl.lit(None, pl.Date)
        parts.append((anchor + pl.duration(days=d.follow_up.days) <= limit).fill_null(False))
    value = None
    if d.median_minutes:
        start = c._datetime(d.median_minutes.from_, f"{d.id}.median_minutes.from")
        end = c._datetime(d.median_minutes.to, f"{d.id}.median_minutes.to")
        value = (end - start).dt.total_microseconds() / MICROSECONDS_PER_MINUTE
        parts.append(value.is_not_null())
    denominator = pl.all_horizontal(parts)
    numerator = c.compile(d.numerator, f"{d.id}.numerator") if d.numerator is not None else None
    missing = None
    if d.missing_field:
        field_ = c._column(d.missing_field, f"{d.id}.missing_field")
        empty = field_.is_null()
        if c.columns[d.missing_field] == pl.String:
            empty = empty | (field_.str.to_lowercase() == "uoplyst")
        missing = empty
    return CompiledDefinition(d, population, denominator, numerator, missing, value)


def _criteria(definition: Definition):
    """Every criterion of a definition with the field it sits in, nested ones included."""
    d = definition
    fields = [("population", d.population), ("numerator", d.numerator)]
    fields += [(f"denominator[{i}]", c) for i, c in enumerate(d.denominator)]
    fields += [(f"exclusions[{i}]", c) for i, c in enumerate(d.exclusions)]
    stack = [(f"{d.id}.{name}", c) for name, c in reversed(fields) if c is not None]
    while stack:
        where, criterion = stack.pop()
        yield where, criterion
        if isinstance(criterion, All):
            stack += [(f"{where}.all[{i}]", c) for i, c in reversed(list(enumerate(criterion.all)))]
        elif isinstance(criterion, AnyOf):
            stack += [(f"{where}.any[{i}]", c) for i, c in reversed(list(enumerate(criterion.any)))]
        elif isinstance(criterion, Not):
            stack.append((f"{where}.not", criterion.not_))
        elif isinstance(criterion, Linked):
            stack.append((f"{where}.linked.where", criterion.linked.where))


def check_size(definition: Definition) -> None:
    """Bounds on the whole definition, before anything is parsed or compiled."""
    conditions, terms = 0, 0
    for where, criterion in _criteria(definition):
        conditions += 1
        if isinstance(criterion, str):
            try:
                terms += measure_within_bounds(criterion)
            except ConditionRefused as problem:
                raise DefinitionError(f"{where}: {problem}")
    if conditions > MAX_CONDITIONS:
        raise DefinitionError(f"{definition.id}: {conditions} conditions; at most {MAX_CONDITIONS}")
    if terms > MAX_TERMS_PER_DEFINITION:
        raise DefinitionError(f"{definition.id}: its conditions have {terms} terms in all; "
                              f"at most {MAX_TERMS_PER_DEFINITION}")


def check_definition(definition: Definition, path: Path) -> None:
    """Bounds first, then compile against the registry's schema, then try every part on an
    empty frame and on sample records; any problem names the file and the field."""
    d = definition
    compiler = Compiler(d.registry, trial=True)
    try:
        check_size(d)
        compiled = compile_definition(d, compiler)
        if d.completeness:
            target = Compiler(d.completeness.registry)
            for name in d.completeness.same:
                compiler._column(name, f"{d.id}.completeness.same")
                target._column(name, f"{d.id}.completeness.same")
        if d.risk_adjustment:
            for v in d.risk_adjustment.case_mix:
                where = f"{d.id}.risk_adjustment.{v.name}"
                compiler._column(v.column, where)
                dtype = compiler.columns[v.column]
                ranged = [c.label for c in v.categories if c.min is not None or c.max is not None]
                if ranged and not dtype.is_numeric():
                    raise DefinitionError(f"{where}: category {ranged[0]!r} is a range (min/max) "
                                          f"but {v.column!r} is {dtype}, not a number")
        _try_compiled(compiled, compiler)
    except DefinitionError as problem:
        raise DefinitionError(f"{path.name}: {problem}")


def _try_compiled(compiled: CompiledDefinition, compiler: Compiler) -> None:
    """The assembled expressions (vocabulary, follow-up, links) on both frames."""
    d = compiled.definition
    flags = [pl.Series(name, [(True, False, None)[i % 3] for i in range(SAMPLE_ROWS)], pl.Boolean)
             for name in compiler.links]
    empty = compiler.frame("empty").with_columns(pl.lit(None, pl.Boolean).alias(n)
                                                 for n in compiler.links)
    sample = compiler.frame("sample").with_columns(flags)
    parts = {"population": compiled.population, "denominator": compiled.denominator,
             "numerator": compiled.numerator, "missing_field": compiled.missing,
             "median_minutes": compiled.value}
    for name, expr in parts.items():
        if expr is not None:
            for frame in (empty, sample):
                try_on(frame, expr, f"{d.id}.{name}", d.registry)
