"""Reference tables of the input: regions and a table per reporting level (schemas/levels.yaml)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipelines.extract_reader import FileFormat, decode
from pipelines.privacy import holds_cpr, mask
from pipelines.sources import BadInputLayout
from schemas.columns import ValidationContext
from schemas.declarations import LEVELS, REGISTRIES


def _tables() -> dict[str, dict[str, pl.DataType]]:
    """Every reference table of schemas/levels.yaml with its columns, the code first."""
    region = LEVELS.region
    tables = {region.table: {region.code: pl.Int32, region.name: pl.String}}
    for level in LEVELS.units:
        tables[level.table] = LEVELS.reference_columns(level)
    return tables


TABLES = _tables()


class BadReference(Exception):
    """Without trustworthy reference tables nothing can be validated: the run stops."""


@dataclass(frozen=True)
class Reference:
    """The input's reference tables by name (regions, hospitals, municipalities, ...)."""

    tables: dict[str, pl.DataFrame]

    def __getattr__(self, name: str) -> pl.DataFrame:
        try:
            return self.__dict__["tables"][name]
        except KeyError:
            raise AttributeError(name) from None

    def codes(self, level: str) -> frozenset:
        unit = LEVELS.levels[level]
        return frozenset(self.tables[unit.table][unit.code].to_list())

    def context(self, extract_date: dt.date) -> ValidationContext:
        others = tuple((lv, self.codes(lv)) for lv in LEVELS.levels
                       if lv not in ("hospital", "municipality"))
        return ValidationContext(
            extract_date=extract_date,
            hospital_codes=self.codes("hospital") if "hospital" in LEVELS.levels else frozenset(),
            municipality_codes=(self.codes("municipality") if "municipality" in LEVELS.levels
                                else frozenset()),
            other_codes=others,
        )


def _read_table(path: Path, columns: dict[str, pl.DataType]) -> pl.DataFrame:
    if not path.exists():
        raise BadReference(f"reference table {path} is missing")
    text, _ = decode(path, path.read_bytes(), FileFormat())
    delimiter = ";" if text.split("\n", 1)[0].count(";") > text.split("\n", 1)[0].count(",") else ","
    rows = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter) if any(r)]
    header = [h.strip().lstrip("\ufeff").lower() for h in rows[0]] if rows else []
    missing = [c for c in columns if c not in header]
    if missing:
        raise BadReference(f"{path.name}: missing column(s) {', '.join(missing)}")
    data = {c: [r[header.index(c)].strip() if header.index(c) < len(r) else ""
                for r in rows[1:]] for c in columns}
    for column, values in data.items():
        for number, value in enumerate(values, start=1):
            if holds_cpr(value):
                raise BadReference(f"{path.name}: row {number}, column {column} holds a value "
                                   "shaped like a CPR number; reference tables hold no "
                                   "personal data")
    try:
        frame = pl.DataFrame(data).with_columns(pl.col(c).cast(t) for c, t in columns.items())
    except pl.exceptions.InvalidOperationError as problem:
        raise BadReference(f"{path.name}: {mask(str(problem).splitlines()[0])}")
    key = next(iter(columns))
    if frame[key].is_duplicated().any():
        raise BadReference(f"{path.name}: {key} is not unique")
    return frame


def _needed_by(input_dir: Path, level: str) -> list[str]:
    """The registry folders of the input whose records name units of ``level``."""
    return [name for name, r in REGISTRIES.items()
            if level in r.units and (input_dir / name).is_dir()]


def load_reference(input_dir: Path) -> Reference:
    """Every reference table of the declared levels, checked: unique codes, and every unit
    reaches a known region (directly or through the level it names). An optional level's
    table may be absent unless a registry folder of the input names its units."""
    folder = input_dir / "reference"
    tables = {}
    for name, columns in TABLES.items():
        level = next((lv for lv in LEVELS.units if lv.table == name), None)
        if level is not None and level.optional and not (folder / f"{name}.csv").exists():
            needed = _needed_by(input_dir, level.level)
            if needed:
                raise BadInputLayout(
                    f"{needed[0]}/ needs reference/{name}.csv ({','.join(columns)}), which "
                    f"is missing: its records name {level.level}s")
            tables[name] = pl.DataFrame(schema=columns)
            continue
        tables[name] = _read_table(folder / f"{name}.csv", columns)
    for level in LEVELS.units:
        if level.code_type == "code":  # compared in upper case
            tables[level.table] = tables[level.table].with_columns(pl.col(level.code).str.to_uppercase())
    region = LEVELS.region
    for level in LEVELS.units:
        if level.region:
            parent, column, known = region.table, level.region, tables[region.table][region.code]
        else:
            up = LEVELS.levels[level.via]
            parent, column, known = up.table, up.code, tables[up.table][up.code]
        unknown = set(tables[level.table][column].to_list()) - set(known.to_list())
        if unknown:
            raise BadReference(f"{level.table}.csv: unknown {column}(s) "
                               f"{sorted(unknown)[:10]} (not in {parent}.csv)")
    return Reference(tables)


def store_reference(con, reference: Reference) -> None:
    """Replace the warehouse's reference tables with the input's (one transaction is the caller's)."""
    for name in TABLES:
        frame = reference.tables[name]  # noqa: F841 - read by DuckDB
        con.execute(f"DELETE FROM {name}")
        con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM frame")
