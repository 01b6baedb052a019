"""Compile definition criteria to Polars expressions (never Python eval).

A criterion is SQL-style text (parsed by ``polars.sql_expr``) or one of a small
vocabulary of named shapes. Every compiled criterion is two-valued: a missing
value never meets a criterion (SQL's unknown becomes false).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pipelines.definitions import (
    All, AnyOf, Criterion, Definition, DefinitionError, Link, Linked, Not, OnOrBefore,
    Within, registry_columns,
)

MICROSECONDS_PER_MINUTE = 60_000_000


@dataclass
class Compiler:
    """Compiles criteria against one registry's columns; collects links that need a join."""

    registry: str
    columns: dict[str, pl.DataType] = field(init=False)
    links: dict[str, Link] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.columns = registry_columns(self.registry)

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
        linked = Compiler(link.registry)
        if link.key not in linked.columns:
            raise DefinitionError(f"{where}.linked.key: unknown column {link.key!r} in "
                                  f"registry {link.registry}")
        if "record_id" not in self.columns:
            raise DefinitionError(f"{where}.linked: registry {self.registry} has no record_id")
        # The condition sees the linked registry's columns plus this registry's (theirs win).
        linked.columns = {**self.columns, **linked.columns}
        linked.compile(link.where, f"{where}.linked.where")
        name = "__linked_" + hashlib.sha1(link.model_dump_json().encode()).hexdigest()[:12]
        self.links[name] = link
        return pl.col(name)

    def _sql(self, text: str, where: str) -> pl.Expr:
        try:
            expr = pl.sql_expr(text)
        except Exception as problem:  # polars raises several error kinds for bad SQL
            raise DefinitionError(f"{where}: cannot parse {text!r}: {problem}")
        for name in expr.meta.root_names():
            self._column(name, where)
        empty = pl.DataFrame(schema=self.columns)
        try:
            dtype = empty.select(expr.alias("x")).schema["x"]
        except Exception as problem:
            raise DefinitionError(f"{where}: {text!r} does not fit the column types: {problem}")
        if dtype != pl.Boolean:
            raise DefinitionError(f"{where}: {text!r} gives {dtype}, not true/false")
        return expr


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


def check_definition(definition: Definition, path: Path) -> None:
    """Compile once against the registry's schema; any problem names the file and the field."""
    compiler = Compiler(definition.registry)
    try:
        compile_definition(definition, compiler)
        if definition.completeness:
            target = Compiler(definition.completeness.registry)
            for name in definition.completeness.same:
                compiler._column(name, f"{definition.id}.completeness.same")
                target._column(name, f"{definition.id}.completeness.same")
        if definition.risk_adjustment:
            for v in definition.risk_adjustment.case_mix:
                compiler._column(v.column, f"{definition.id}.risk_adjustment.{v.name}")
    except DefinitionError as problem:
        raise DefinitionError(f"{path.name}: {problem}")
