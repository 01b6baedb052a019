"""Indicator definitions: one YAML file per indicator, checked by a typed model before anything runs.

A definition says *what* is counted (population, denominator, numerator,
missing field, follow-up, standard); levels, periods, intervals and
suppression belong to the engine.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal, Union

import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipelines.sources import SOURCES
from schemas import EXTRACT_SCHEMAS, LEVELS

REGISTRIES = tuple(SOURCES)

# A definition is data an analyst writes; these bounds keep a hostile or mistaken file
# from costing more than a moment to check (see "Adding an indicator" in the README).
MAX_FILE_BYTES = 64 * 1024
MAX_YAML_DEPTH = 32  # nested mappings and lists; the catalogue needs at most 7
MAX_YAML_NODES = 2_000  # values, mappings and lists; the catalogue needs at most 170
MAX_DAYS = 36_600  # 100 years: any window, follow-up or matching distance


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


# -- the criteria vocabulary ------------------------------------------------------------
class Window(Strict):
    """``0 <= to - from <= N``: minutes/hours exact on datetimes, days on dates."""

    from_: str = Field(alias="from")
    to: str
    minutes: int | None = Field(default=None, ge=0, le=MAX_DAYS * 24 * 60)
    hours: int | None = Field(default=None, ge=0, le=MAX_DAYS * 24)
    days: int | None = Field(default=None, ge=0, le=MAX_DAYS)

    @model_validator(mode="after")
    def _one_length(self) -> "Window":
        given = [x for x in (self.minutes, self.hours, self.days) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of minutes, hours or days")
        return self


class Within(Strict):
    within: Window


class DateBound(Strict):
    """``event date <= anchor date + days`` (no lower bound: earlier events count too)."""

    event: str
    anchor: str
    days: int = Field(default=0, ge=0, le=MAX_DAYS)


class OnOrBefore(Strict):
    on_or_before: DateBound


class All(Strict):
    all: list["Criterion"] = Field(min_length=1)


class AnyOf(Strict):
    any: list["Criterion"] = Field(min_length=1)


class Not(Strict):
    not_: "Criterion" = Field(alias="not")


class Link(Strict):
    """A record of another registry refers to this one (``key`` = this ``record_id``)."""

    registry: Literal[REGISTRIES]  # type: ignore[valid-type]
    key: str
    where: "Criterion"


class Linked(Strict):
    linked: Link


Criterion = Union[str, Within, OnOrBefore, All, AnyOf, Not, Linked]
for _model in (All, AnyOf, Not, Link, Linked):
    _model.model_rebuild()


# -- the definition -----------------------------------------------------------------------
class Titles(Strict):
    da: str
    en: str


class Standard(Strict):
    value: float = Field(gt=0)
    direction: Literal["higher_is_better", "lower_is_better"]

    @property
    def lower_is_better(self) -> bool:
        return self.direction == "lower_is_better"


class FollowUp(Strict):
    """Only records whose anchor date + days <= the data cutoff count."""

    from_: str = Field(alias="from")
    days: int = Field(ge=0, le=MAX_DAYS)


class Between(Strict):
    from_: str = Field(alias="from")
    to: str


class Match(Strict):
    """Completeness: a current record of ``registry`` for the same patient and hospital whose
    period date lies within +-days of the contact's date."""

    registry: Literal[REGISTRIES]  # type: ignore[valid-type]
    same: list[str] = Field(default_factory=lambda: ["pseudonym", "hospital_code"])
    days: int = Field(ge=0, le=MAX_DAYS)


class Category(Strict):
    label: str
    min: float | None = None
    max: float | None = None
    values: list[str] | None = None
    missing: bool = False

    @model_validator(mode="after")
    def _one_rule(self) -> "Category":
        rules = [self.values is not None, self.missing, self.min is not None or self.max is not None]
        if sum(rules) != 1:
            raise ValueError(f"category {self.label!r}: give a range (min/max), values, "
                             "or missing: true")
        return self


class CaseMixVariable(Strict):
    name: str
    column: str
    categories: list[Category] = Field(min_length=2)


class RiskAdjustment(Strict):
    case_mix: list[CaseMixVariable] = Field(min_length=1)


class Definition(Strict):
    id: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    version: int = Field(ge=1)
    title: Titles | None = None  # words live in the message catalogues (reports/messages/)
    registry: Literal[REGISTRIES]  # type: ignore[valid-type]
    type: Literal["process", "outcome", "median", "completeness"]
    population: Criterion
    denominator: list[Criterion] = Field(default_factory=list)
    exclusions: list[Criterion] = Field(default_factory=list)
    follow_up: FollowUp | None = None
    numerator: Criterion | None = None
    median_minutes: Between | None = None
    completeness: Match | None = None
    missing_field: str | None = None
    standard: Standard
    risk_adjustment: RiskAdjustment | None = None
    rationale: str | None = None
    reviewed: dict[str, str | dt.date] | None = None

    @model_validator(mode="after")
    def _fits_type(self) -> "Definition":
        needs = {"median": "median_minutes", "completeness": "completeness"}
        for kind, field_name in needs.items():
            if (self.type == kind) != (getattr(self, field_name) is not None):
                raise ValueError(f"{field_name} is required for type {kind} and only for it")
        if self.type != "median" and self.numerator is None and self.type != "completeness":
            raise ValueError("numerator is required")
        if self.type == "completeness" and self.registry != "lpr":
            raise ValueError("completeness indicators are counted on the lpr registry")
        return self

    @property
    def levels(self) -> tuple[str, ...]:
        """Levels follow from the registry's declared units (municipal data has no hospital);
        completeness is counted where the registry counts its region (the hospital)."""
        source = SOURCES[self.registry]
        if self.type == "completeness":
            return ("national", "region", source.region_from)
        return ("national", "region", *(lv for lv in LEVELS.levels if lv in source.unit_columns))

    @property
    def is_proportion(self) -> bool:
        return self.type != "median"


# -- columns an analyst may name ----------------------------------------------------------
def registry_columns(registry: str) -> dict[str, pl.DataType]:
    """Columns of a registry's current table as the engine sees them."""
    columns = {c.name: c.dtype for c in EXTRACT_SCHEMAS[registry].columns if c.name != "cpr"}
    # Age is stored as SMALLINT but widened on load: arithmetic on Int16 wraps silently.
    return {"pseudonym": pl.String(), "age": pl.Int32(), "extract_date": pl.Date(), **columns}


class DefinitionError(Exception):
    """A definition that cannot run; the message names the file and the field."""


def one_line(text: str, limit: int = 200) -> str:
    """Messages are one line each: ``indicators check`` prints one line per problem."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _format(path: Path, error: ValidationError) -> str:
    lines = []
    for problem in error.errors():
        where = ".".join(str(p) for p in problem["loc"] if not str(p).startswith(("function-", "union")))
        lines.append(f"{path.name}: {where or '(top level)'}: {one_line(problem['msg'])}")
    return "\n".join(dict.fromkeys(lines))


class _Refused(Exception):
    """A definition file outside the bounds, found before it is parsed to the end."""


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when installed
_NODES = (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent)
_OPEN, _CLOSE = (yaml.SequenceStartEvent, yaml.MappingStartEvent), (yaml.SequenceEndEvent,
                                                                     yaml.MappingEndEvent)


def _check_structure(text: str) -> None:
    """Walk the YAML events, nothing built yet: an alias bomb or a 5,000-deep nesting is
    refused at its first anchor or 33rd level, before anything expands or recurses."""
    depth = nodes = 0
    for event in yaml.parse(text, Loader=_LOADER):
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _Refused(f"line {line}: YAML anchors and aliases (& and *) are not allowed; "
                           "write each value out")
        nodes += isinstance(event, _NODES)
        if nodes > MAX_YAML_NODES:
            raise _Refused(f"line {line}: more than {MAX_YAML_NODES} YAML values")
        if isinstance(event, _OPEN):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise _Refused(f"line {line}: nested more than {MAX_YAML_DEPTH} levels deep")
        elif isinstance(event, _CLOSE):
            depth -= 1


def _yaml_problem(problem: yaml.YAMLError) -> str:
    mark = getattr(problem, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return one_line(f"{getattr(problem, 'problem', None) or problem}{where}")


def read_definition_file(path: Path) -> dict:
    """The file's fields as plain data, or a DefinitionError; never reads more than the limit."""
    if not path.is_file():  # a folder, a pipe or a device named *.yaml
        raise DefinitionError(f"{path.name}: not a regular file")
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as problem:
        reason = problem.strerror or type(problem).__name__
        raise DefinitionError(f"{path.name}: cannot be read ({reason})")
    if len(raw) > MAX_FILE_BYTES:
        raise DefinitionError(f"{path.name}: larger than {MAX_FILE_BYTES // 1024} KiB; "
                              "a definition is a short text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DefinitionError(f"{path.name}: not UTF-8 text")
    try:
        _check_structure(text)
        data = yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader
    except _Refused as problem:
        raise DefinitionError(f"{path.name}: {problem}")
    except yaml.YAMLError as problem:
        raise DefinitionError(f"{path.name}: not valid YAML: {_yaml_problem(problem)}")
    except (ValueError, OverflowError) as problem:  # e.g. an integer of 5,000 digits
        raise DefinitionError(f"{path.name}: not valid YAML: {one_line(problem, 120)}")
    if not isinstance(data, dict):
        raise DefinitionError(f"{path.name}: expected a mapping of fields")
    return data


def load_definition(path: Path) -> Definition:
    """One file, checked: bounds, fields, columns, types, and a trial on sample records."""
    data = read_definition_file(path)
    try:
        definition = Definition.model_validate(data)
    except ValidationError as error:
        raise DefinitionError(_format(path, error))
    if definition.id != path.stem:
        raise DefinitionError(f"{path.name}: id {definition.id!r} differs from the file name")
    from pipelines.criteria import check_definition  # the compiler knows the columns and types

    check_definition(definition, path)
    return with_words(definition, path)


def with_words(definition: Definition, path: Path) -> Definition:
    """Title and rationale from the message catalogues (reports/messages/*.yaml), which hold
    every user-visible word; a definition outside the repository may carry its own."""
    from reports.labels import MissingMessage, catalogue, languages, remember_own_words

    try:
        da, en = (catalogue(lang)["indicators"][definition.id] for lang in ("da", "en"))
        words = {"title": Titles(da=da["title"], en=en["title"]),
                 "rationale": " ".join(en["rationale"].split())}
        # every language's report needs them: found here, not when that report is made
        lacking = [f"{lang}.yaml" for lang in languages()
                   if definition.id not in catalogue(lang)["indicators"]]
        if lacking:
            raise DefinitionError(f"{path.name}: no title and rationale for {definition.id} in "
                                  f"the message catalogue {', '.join(lacking)} (every language "
                                  "in reports/messages/ needs them)")
    except MissingMessage:
        if definition.title is None or definition.rationale is None:
            raise DefinitionError(f"{path.name}: no title and rationale for {definition.id} in "
                                  "the message catalogues (reports/messages/da.yaml, en.yaml)")
        remember_own_words(definition.id, definition.title.model_dump(), definition.rationale,
                           definition.missing_field)
        return definition
    return definition.model_copy(update=words)


def definition_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.yaml") if not p.name.startswith("_"))


def load_definitions(folder: Path) -> list[Definition]:
    """All definitions, or a DefinitionError listing every problem found."""
    definitions, problems, seen = [], [], {}
    for path in definition_files(folder):
        try:
            definition = load_definition(path)
        except DefinitionError as problem:
            problems.append(str(problem))
            continue
        except (Exception, pl.exceptions.PanicException) as problem:  # a bug, not the analyst's
            problems.append(f"{path.name}: could not be checked ({type(problem).__name__})")
            continue
        if definition.id in seen:
            problems.append(f"{path.name}: id {definition.id} is also defined in {seen[definition.id]}")
            continue
        seen[definition.id] = path.name
        definitions.append(definition)
    if problems:
        raise DefinitionError("\n".join(problems))
    if not definitions:
        raise DefinitionError(f"no indicator definitions (*.yaml) in {folder}")
    return definitions
