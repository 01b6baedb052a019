"""The registries the contract knows, and what is fixed about each of them."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Source:
    name: str
    period_column: str  # the column whose date defines a record's period
    has_record_id: bool = True
    hospital_column: str | None = "hospital_code"


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source("stroke", "admission_at"),
        Source("hipfracture", "admission_at"),
        Source("cardiac_rehab_hospital", "index_date"),
        Source("cardiac_rehab_municipal", "referral_received_date", hospital_column=None),
        Source("lpr", "admission_at", has_record_id=False),
    )
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
