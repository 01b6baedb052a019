"""Registries and reporting levels as declared data: ``schemas/registries/*.yaml`` and
``schemas/levels.yaml``.

A registry is described once (its columns with type, domain and whether required, its
period column, which columns name which reporting unit, its link keys and date-order
rules); the Pandera schema, the warehouse's history table and current view, the validation
report and the sample generator are derived from that description. The levels file says
which reporting levels exist, their reference tables and how each unit reaches its region.
``KVALITET_SCHEMAS_DIR`` points at another folder of declarations (tests, a new registry
being tried out).
"""

from __future__ import annotations

import os
import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

import polars as pl
import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas.columns import ColumnSpec, ExtractSchema

SCHEMAS_DIR_ENV = "KVALITET_SCHEMAS_DIR"
NAME = r"^[a-z][a-z0-9_]*$"  # every declared name ends up in SQL: plain identifiers only
SMALLINT = (-32768, 32767)


class DeclarationError(Exception):
    """A registry or level declaration that cannot be used; names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- levels ---------------------------------------------------------------------------------
class National(_Strict):
    code: str
    name: str


class RegionTable(_Strict):
    table: str = Field(pattern=NAME)
    code: str = Field(pattern=NAME)
    name: str = Field(pattern=NAME)


def _titles(value: dict[str, str]) -> dict[str, str]:
    missing = {"da", "en"} - set(value)
    if missing:
        raise ValueError(f"title needs {' and '.join(sorted(missing))} (one per language)")
    return value


Titles = Annotated[dict[str, str], AfterValidator(_titles)]


class Level(_Strict):
    """A reporting level below the region: its reference table and how it reaches a region."""

    level: str = Field(default="", pattern=r"^$|" + NAME)
    title: Titles  # the level's name in reports, per language
    table: str = Field(pattern=NAME)
    code: str = Field(pattern=NAME)
    code_type: Literal["code", "integer", "text"]
    name: str = Field(pattern=NAME)
    region: str | None = Field(default=None, pattern=NAME)  # a column naming the region
    via: str | None = Field(default=None, pattern=NAME)  # or another level's unit
    optional: bool = False  # the reference table is needed only by a registry naming the level

    @model_validator(mode="after")
    def _one_way_up(self) -> "Level":
        if (self.region is None) == (self.via is None):
            raise ValueError("give either region (a column) or via (another level)")
        return self

    def title_in(self, language: str) -> str:
        return self.title.get(language, self.title["en"])

    @property
    def dtype(self) -> pl.DataType:
        return pl.Int32() if self.code_type == "integer" else pl.String()

    @property
    def sql_type(self) -> str:
        return "INTEGER" if self.code_type == "integer" else "VARCHAR"


class Levels(_Strict):
    national: National
    region: RegionTable
    levels: dict[str, Level]

    @model_validator(mode="after")
    def _reach_a_region(self) -> "Levels":
        for name, level in self.levels.items():
            object.__setattr__(level, "level", name)
            seen = {name}
            while level.via is not None:
                if level.via not in self.levels:
                    raise ValueError(f"level {name}: via {level.via!r} is not a declared level")
                if level.via in seen:
                    raise ValueError(f"level {name}: its way to a region goes round in a circle")
                seen.add(level.via)
                level = self.levels[level.via]
        return self

    @property
    def names(self) -> tuple[str, ...]:
        """Every level in reporting order: national, region, then the declared units."""
        return ("national", "region", *self.levels)

    @property
    def units(self) -> tuple[Level, ...]:
        return tuple(self.levels.values())

    def reference_columns(self, level: Level) -> dict[str, pl.DataType]:
        """The columns of a level's reference table, its code first."""
        up = ({level.region: pl.Int32()} if level.region else
              {self.levels[level.via].code: self.levels[level.via].dtype})
        return {level.code: level.dtype, level.name: pl.String(), **up}

    def region_sql(self, level: str) -> str:
        """SELECT unit code, region code (both as text) for every unit of a level."""
        unit = self.levels[level]
        joins, alias, current = [], "t0", unit
        while current.via is not None:
            parent = self.levels[current.via]
            nxt = f"t{len(joins) + 1}"
            joins.append(f"JOIN {parent.table} AS {nxt} ON {nxt}.{parent.code} = "
                         f"{alias}.{parent.code}")
            alias, current = nxt, parent
        return (f"SELECT CAST(t0.{unit.code} AS VARCHAR), CAST({alias}.{current.region} AS "
                f"VARCHAR) FROM {unit.table} AS t0 {' '.join(joins)}")


# -- registries -----------------------------------------------------------------------------
class Column(_Strict):
    type: Literal["record_id", "link", "cpr", "text", "code", "answer", "integer", "date",
                  "datetime", "unit"]
    required: bool = True
    values: list[str] | None = None  # code: the allowed values
    pattern: str | None = None  # code: the allowed values as a regular expression
    min: int | None = None
    max: int | None = None
    registry: str | None = Field(default=None, pattern=NAME)  # link: the registry it refers to
    sample: dict | None = None  # hints for the sample generator (see sample_data/generate.py)

    @model_validator(mode="after")
    def _fits_type(self) -> "Column":
        if (self.values is not None or self.pattern is not None) != (self.type == "code"):
            raise ValueError("values or pattern belong to type code, and code needs one")
        if (self.min is not None or self.max is not None) and self.type != "integer":
            raise ValueError("min and max belong to type integer")
        if (self.registry is None) != (self.type != "link"):
            raise ValueError("registry belongs to type link, and link needs it")
        return self


class DateOrder(_Strict):
    column: str = Field(pattern=NAME)
    not_before: str = Field(pattern=NAME)


class Registry(_Strict):
    registry: str = Field(pattern=NAME)
    title: Titles
    report: str | None = Field(default=None, pattern=NAME)  # the annual report it belongs to
    period: str = Field(pattern=NAME)
    units: dict[str, str]  # level -> the column naming the unit
    region_from: str  # the level whose region a record counts in
    columns: dict[str, Column]
    date_order: list[DateOrder] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> "Registry":
        for name in self.columns:
            if not re.match(NAME, name):
                raise ValueError(f"column {name!r}: lower-case letters, digits and _ only")
        if self.period not in self.columns or self.columns[self.period].type not in (
                "date", "datetime") or not self.columns[self.period].required:
            raise ValueError(f"period {self.period!r} must be a required date or datetime column")
        if self.region_from not in self.units:
            raise ValueError(f"region_from {self.region_from!r} must be one of its units")
        for level, column in self.units.items():
            if column not in self.columns or self.columns[column].type != "unit":
                raise ValueError(f"units.{level}: {column!r} must be a column of type unit")
        named = set(self.units.values())
        for name, column in self.columns.items():
            if column.type == "unit" and name not in named:
                raise ValueError(f"column {name!r} is a unit but no level names it in units")
        if sum(c.type == "cpr" for c in self.columns.values()) != 1:
            raise ValueError("exactly one column of type cpr (the patient)")
        if sum(c.type == "record_id" for c in self.columns.values()) > 1:
            raise ValueError("at most one column of type record_id")
        for rule in self.date_order:
            for name in (rule.column, rule.not_before):
                if name not in self.columns or self.columns[name].type not in ("date", "datetime"):
                    raise ValueError(f"date_order: {name!r} is not a date or datetime column")
        return self

    @property
    def name(self) -> str:
        return self.registry

    def title_in(self, language: str) -> str:
        return self.title.get(language, self.title["en"])

    @property
    def report_group(self) -> str:
        return self.report or self.registry

    @property
    def has_record_id(self) -> bool:
        return any(c.type == "record_id" for c in self.columns.values())

    @property
    def region_column(self) -> str:
        return self.units[self.region_from]


class Declarations:
    """The registries and levels of one schemas folder, checked together."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.levels = _load(folder / "levels.yaml", Levels)
        self.registries: dict[str, Registry] = {}
        for path in sorted((folder / "registries").glob("*.yaml")):
            registry = _load(path, Registry)
            if registry.registry != path.stem:
                raise DeclarationError(f"{path.name}: registry {registry.registry!r} differs "
                                       "from the file name")
            for level in registry.units:
                if level not in self.levels.levels:
                    raise DeclarationError(f"{path.name}: units.{level}: not a level of "
                                           "levels.yaml")
            self.registries[registry.registry] = registry
        for registry in self.registries.values():
            for name, column in registry.columns.items():
                if column.type == "link" and column.registry not in self.registries:
                    raise DeclarationError(f"{registry.registry}.yaml: columns.{name}: no "
                                           f"registry {column.registry!r}")

    @cached_property
    def schemas(self) -> dict[str, ExtractSchema]:
        return {name: self.schema(r) for name, r in self.registries.items()}

    def level_of_column(self, registry: Registry, column: str) -> Level:
        return self.levels.levels[next(lv for lv, c in registry.units.items() if c == column)]

    def schema(self, registry: Registry) -> ExtractSchema:
        """The registry's Pandera-backed extract schema, in the declared column order."""
        not_before = {r.column: r.not_before for r in registry.date_order}
        specs = []
        for name, c in registry.columns.items():
            if c.type == "record_id":
                spec = ColumnSpec(name, "string", unique_in_file=True, is_record_id=True)
            elif c.type == "link":
                spec = ColumnSpec(name, "string", required=c.required, is_record_id=True)
            elif c.type == "text":
                spec = ColumnSpec(name, "string", required=c.required)
            elif c.type == "cpr":
                spec = ColumnSpec(name, "cpr")
            elif c.type == "answer":
                spec = ColumnSpec(name, "answer", required=False)
            elif c.type == "code":
                spec = ColumnSpec(name, "code", required=c.required,
                                  allowed=tuple(v.upper() for v in c.values or ()),
                                  pattern=c.pattern)
            elif c.type == "integer":
                small = (c.min is not None and c.max is not None
                         and SMALLINT[0] <= c.min and c.max <= SMALLINT[1])
                # Int32 in frames although stored as SMALLINT: arithmetic on Int16 wraps.
                spec = ColumnSpec(name, "integer", required=c.required, minimum=c.min,
                                  maximum=c.max, dtype=pl.Int32 if small else pl.Int64,
                                  sql_type="SMALLINT" if small else "BIGINT")
            elif c.type == "unit":
                level = self.level_of_column(registry, name)
                kind = {"code": "code", "integer": "integer", "text": "string"}[level.code_type]
                spec = ColumnSpec(name, kind, required=c.required, reference=level.level,
                                  dtype=level.dtype, sql_type=level.sql_type)
            else:  # date, datetime
                spec = ColumnSpec(name, c.type, required=c.required,
                                  not_before=not_before.get(name))
            specs.append(spec)
        return ExtractSchema(registry.registry, tuple(specs))

    def history_columns(self, registry: Registry) -> list[tuple[str, str]]:
        """(name, SQL type and nullability) of the history table after the file columns: the
        extract's columns in order, the CPR number replaced by pseudonym and age."""
        out = []
        for spec in self.schemas[registry.registry].columns:
            if spec.kind == "cpr":
                out += [("pseudonym", "VARCHAR NOT NULL"), ("age", "SMALLINT NOT NULL")]
            else:
                stored = spec.required or spec.kind == "answer"  # answers default to uoplyst
                out.append((spec.name, spec.sql_type + (" NOT NULL" if stored else "")))
        return out


def _load(path: Path, model):
    if not path.is_file():
        raise DeclarationError(f"{path} is missing")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"),  # noqa: S506 - a safe loader (libyaml's)
                         Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        return model.model_validate(data)
    except yaml.YAMLError as problem:
        raise DeclarationError(f"{path.name}: not valid YAML: {problem}")
    except ValidationError as error:
        problems = "; ".join(
            (f"{'.'.join(str(p) for p in e['loc'])}: " if e["loc"] else "")
            + e["msg"].removeprefix("Value error, ") for e in error.errors())
        raise DeclarationError(f"{path.name}: {problems}")


def schemas_dir() -> Path:
    told = os.environ.get(SCHEMAS_DIR_ENV, "").strip()
    return Path(told) if told else Path(__file__).resolve().parent


DECLARED = Declarations(schemas_dir())
LEVELS = DECLARED.levels
REGISTRIES = DECLARED.registries


def render_sql(path: Path, declared: Declarations | None = None) -> str:
    """A SQL template of sql/ rendered for the declared registries and levels."""
    from jinja2 import Environment, StrictUndefined

    declared = declared or DECLARED
    levels = declared.levels
    context = {
        "region": levels.region,
        "units": levels.units,
        "level_columns": {
            level.level: [(c, "INTEGER" if t == pl.Int32 else "VARCHAR")
                          for c, t in levels.reference_columns(level).items()]
            for level in levels.units},
        "registries": [{"name": r.name, "has_record_id": r.has_record_id,
                        "columns": declared.history_columns(r)}
                       for r in declared.registries.values()],
    }
    template = Environment(undefined=StrictUndefined, keep_trailing_newline=True,
                           autoescape=False).from_string(path.read_text(encoding="utf-8"))
    return template.render(**context)
