"""Reference tables of the input: regions, municipalities, hospitals."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipelines.extract_reader import FileFormat, decode
from pipelines.privacy import holds_cpr, mask
from schemas.columns import ValidationContext

TABLES = {
    "regions": {"region_code": pl.Int32, "region_name": pl.String},
    "municipalities": {"municipality_code": pl.Int32, "municipality_name": pl.String,
                       "region_code": pl.Int32},
    "hospitals": {"hospital_code": pl.String, "hospital_name": pl.String,
                  "region_code": pl.Int32},
}


class BadReference(Exception):
    """Without trustworthy reference tables nothing can be validated: the run stops."""


@dataclass(frozen=True)
class Reference:
    regions: pl.DataFrame
    municipalities: pl.DataFrame
    hospitals: pl.DataFrame

    def context(self, extract_date: dt.date) -> ValidationContext:
        return ValidationContext(
            extract_date=extract_date,
            hospital_codes=frozenset(self.hospitals["hospital_code"].to_list()),
            municipality_codes=frozenset(self.municipalities["municipality_code"].to_list()),
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


def load_reference(input_dir: Path) -> Reference:
    folder = input_dir / "reference"
    tables = {name: _read_table(folder / f"{name}.csv", cols) for name, cols in TABLES.items()}
    tables["hospitals"] = tables["hospitals"].with_columns(pl.col("hospital_code").str.to_uppercase())
    known_regions = set(tables["regions"]["region_code"].to_list())
    for name in ("municipalities", "hospitals"):
        unknown = set(tables[name]["region_code"].to_list()) - known_regions
        if unknown:
            raise BadReference(f"{name}.csv: unknown region_code(s) {sorted(unknown)}")
    return Reference(**tables)


def store_reference(con, reference: Reference) -> None:
    """Replace the warehouse's reference tables with the input's (one transaction is the caller's)."""
    for name in TABLES:
        frame = getattr(reference, name)  # noqa: F841 - read by DuckDB
        con.execute(f"DELETE FROM {name}")
        con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM frame")
