"""An input directory to the current records of every registry.

Latest extract wins per record_id; within one file the first row with a record_id wins and
later rows with it are quarantined; a correction that breaks a rule is quarantined and the
version already loaded stays current. Every accepted LPR row of every extract counts.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

from tests.oracle.contract import SOURCES, Reference, check_row, date_of
from tests.oracle.reading import Unreadable, read, read_csv

EXTRACT_NAME = re.compile(r"(\d{4})-(\d{2})-(\d{2})\.(csv|parquet)$", re.IGNORECASE)


@dataclass
class FileCount:
    source: str
    file_name: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    failed: str | None = None


@dataclass(repr=False)
class Loaded:
    reference: Reference
    current: dict[str, dict[str, dict]]  # source -> record_id -> record
    lpr: list[dict]
    files: list[FileCount] = field(default_factory=list)
    # (source, file name, row number, record_id or None, rules broken) of every quarantined row
    quarantined: list[tuple[str, str, int, str | None, list[str]]] = field(default_factory=list)
    latest_extract: dt.date | None = None

    def __repr__(self) -> str:  # records hold CPR numbers: never show them
        counts = {source: len(records) for source, records in self.current.items()}
        return f"Loaded({counts}, lpr={len(self.lpr)}, latest_extract={self.latest_extract})"


def _reference_table(path: Path, columns: list[str]) -> list[dict[str, str]]:
    table = read_csv(path, set(columns))
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise Unreadable(f"{path.name} lacks {missing}")
    return [{c: (line.values[c] or "").strip() for c in columns}
            for line in table.lines if line.values is not None]


def read_reference(folder: Path) -> Reference:
    regions = {str(int(r["region_code"])): r["region_name"] for r in
               _reference_table(folder / "regions.csv", ["region_code", "region_name"])}
    municipalities = {
        int(r["municipality_code"]): (r["municipality_name"], str(int(r["region_code"])))
        for r in _reference_table(folder / "municipalities.csv",
                                  ["municipality_code", "municipality_name", "region_code"])}
    hospitals = {
        r["hospital_code"].upper(): (r["hospital_name"], str(int(r["region_code"])))
        for r in _reference_table(folder / "hospitals.csv",
                                  ["hospital_code", "hospital_name", "region_code"])}
    clinics = {}
    if (folder / "clinics.csv").exists():  # general practice only (second release)
        clinics = {r["clinic_code"]: (r["clinic_name"], int(r["municipality_code"]))
                   for r in _reference_table(folder / "clinics.csv",
                                             ["clinic_code", "clinic_name", "municipality_code"])}
    return Reference(regions, municipalities, hospitals, clinics)


def extract_date(path: Path) -> dt.date | None:
    return date_of(EXTRACT_NAME.search(path.name))


def load(input_dir: Path, today: dt.date | None = None) -> Loaded:
    input_dir = Path(input_dir)
    today = today or dt.date.today()
    loaded = Loaded(read_reference(input_dir / "reference"), {}, [])
    for source, columns in SOURCES.items():
        folder = input_dir / source
        paths = [p for p in sorted(folder.iterdir()) if p.suffix.lower() in (".csv", ".parquet")
                 ] if folder.is_dir() else []
        dated = sorted(((extract_date(p), p) for p in paths), key=lambda x: (x[0] or dt.date.min,
                                                                             x[1].name))
        current = loaded.current.setdefault(source, {})
        for day, path in dated:
            count = FileCount(source, path.name)
            loaded.files.append(count)
            if day is None or day > today:
                count.failed = "no extract date in the file name, or one after today"
                continue
            try:
                table = read(path, {c.name for c in columns})
                needed = [c.name for c in columns if c.required and c.kind != "answer"]
                absent = [n for n in needed if n not in table.columns]
                if absent:
                    raise Unreadable(f"missing required columns {absent}")
            except Unreadable as problem:
                count.failed = str(problem)
                continue
            loaded.latest_extract = max(filter(None, [loaded.latest_extract, day]))
            seen: set[str] = set()
            for line in table.lines:
                count.rows_read += 1
                if line.values is None:
                    count.rows_quarantined += 1
                    loaded.quarantined.append((source, path.name, line.number, None,
                                               ["unparseable_row"]))
                    continue
                record, broken = check_row(source, line.values, day, loaded.reference)
                rid = (line.values.get("record_id") or "").strip()
                if source != "lpr" and rid:
                    if rid in seen:
                        broken.append("duplicate_record_id")
                    seen.add(rid)
                if broken:
                    count.rows_quarantined += 1
                    loaded.quarantined.append((source, path.name, line.number, rid, broken))
                    continue
                count.rows_loaded += 1
                if source == "lpr":
                    loaded.lpr.append(record)
                else:
                    current[record["record_id"]] = record
    return loaded
