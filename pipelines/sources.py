"""The registries the contract knows (as declared in schemas/registries/), and extract file names."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from schemas.declarations import REGISTRIES


@dataclass(frozen=True)
class Source:
    name: str
    period_column: str  # the column whose date defines a record's period
    has_record_id: bool = True
    units: tuple[tuple[str, str], ...] = (("hospital", "hospital_code"),
                                          ("municipality", "municipality_code"))
    region_from: str = "hospital"  # the level whose region a record counts in

    @property
    def unit_columns(self) -> dict[str, str]:
        """Reporting level -> the column naming the record's unit at that level."""
        return dict(self.units)

    @property
    def hospital_column(self) -> str | None:
        return self.unit_columns.get("hospital")

    @property
    def region_column(self) -> str:
        return self.unit_columns[self.region_from]


# Declared in schemas/registries/*.yaml; nothing about a registry is written here.
SOURCES: dict[str, Source] = {
    r.name: Source(r.name, r.period, r.has_record_id, tuple(r.units.items()), r.region_from)
    for r in REGISTRIES.values()
}

EXTRACT_FILE_PATTERN = re.compile(r"(\d{4}-\d{2}-\d{2})\.(csv|parquet)$", re.IGNORECASE)


class UnreadableExtract(Exception):
    """A file that cannot be read at all; the message names the file and the problem."""

    def __init__(self, path: Path, problem: str):
        super().__init__(f"{path.name}: {problem}")
        self.path = path
        self.problem = problem


def extract_date_of(path: Path) -> dt.date:
    match = EXTRACT_FILE_PATTERN.search(path.name)
    if not match:
        raise UnreadableExtract(
            path, "file name must end in its extract date and .csv or .parquet, "
            "e.g. stroke_2025-06-30.csv"
        )
    try:
        return dt.date.fromisoformat(match.group(1))
    except ValueError:
        raise UnreadableExtract(path, f"'{match.group(1)}' in the file name is not a real date")


class BadInputLayout(Exception):
    """The input directory itself is not as the contract (or formats.yaml) says: the run stops."""
