"""Hand-made inputs for tests: contract-shaped folders from a few explicit rows."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from pipelines.settings import PROJECT_ROOT
from schemas import EXTRACT_SCHEMAS

REFERENCE = PROJECT_ROOT / "sample_data" / "reference"
TEST_KEY = b"a-test-key-that-is-long-enough"


def cpr_for(born: dt.date, serial: int = 123) -> str:
    """A valid CPR number for a birth date (7th digit by the century rule)."""
    yy = born.year % 100
    if 1900 <= born.year <= 1999:
        seventh = 0
    elif 2000 <= born.year <= 2036:
        seventh = 4
    elif 1858 <= born.year <= 1899:
        seventh = 5
    else:
        raise ValueError(born)
    return f"{born:%d%m}{yy:02d}{seventh}{serial % 1000:03d}"


def born_years_before(day: dt.date, years: int, days_after: int = 1) -> dt.date:
    """Birth date making someone ``years`` old (not a day more) on ``day``."""
    return dt.date(day.year - years, day.month, day.day) + dt.timedelta(days=days_after)


def stroke_row(**values) -> dict:
    row = {"record_id": "S1", "cpr": cpr_for(dt.date(1950, 5, 17)), "sex": "M",
           "municipality_code": "101", "hospital_code": "H401",
           "admission_at": "2024-03-10 10:00", "diagnosis": "DI63", "thrombolysis": "nej"}
    row.update(values)
    return row


def hip_row(**values) -> dict:
    row = {"record_id": "H1", "cpr": cpr_for(dt.date(1940, 2, 3)), "sex": "F",
           "municipality_code": "751", "hospital_code": "H201",
           "admission_at": "2024-03-10 10:00", "diagnosis": "DS721", "rehab_plan": "ja"}
    row.update(values)
    return row


def cardiac_row(**values) -> dict:
    row = {"record_id": "C1", "cpr": cpr_for(dt.date(1960, 1, 1)), "sex": "M",
           "municipality_code": "101", "hospital_code": "H401", "diagnosis": "DI21",
           "index_date": "2024-03-10", "referred": "ja", "referral_date": "2024-03-11"}
    row.update(values)
    return row


def municipal_row(**values) -> dict:
    row = {"record_id": "M1", "hospital_record_id": "C1", "cpr": cpr_for(dt.date(1960, 1, 1)),
           "municipality_code": "101", "referral_received_date": "2024-03-15",
           "completed": "ja", "smoker": "nej", "smoking_cessation_offered": "nej"}
    row.update(values)
    return row


def lpr_row(**values) -> dict:
    row = {"cpr": cpr_for(dt.date(1950, 5, 17)), "hospital_code": "H401",
           "municipality_code": "101", "admission_at": "2024-03-10 09:00",
           "action_diagnosis": "DI63"}
    row.update(values)
    return row


def new_input(folder: Path) -> Path:
    """An input folder with every declared reference table the sample data has."""
    from pipelines.reference import TABLES

    (folder / "reference").mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        if (REFERENCE / f"{name}.csv").exists():
            shutil.copy(REFERENCE / f"{name}.csv", folder / "reference" / f"{name}.csv")
    return folder


def write_extract(folder: Path, source: str, extract_date: str, rows: list[dict],
                  delimiter: str = ";", encoding: str = "utf-8", columns: list[str] | None = None,
                  name: str | None = None) -> Path:
    """A CSV extract with the contract's columns (missing values empty)."""
    columns = columns or EXTRACT_SCHEMAS[source].names
    lines = [delimiter.join(columns)]
    for row in rows:
        lines.append(delimiter.join("" if row.get(c) is None else str(row[c]) for c in columns))
    path = folder / source / (name or f"{source}_{extract_date}.csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def stop(process, log=None) -> None:
    """End a server process started by a test: politely, then firmly."""
    import subprocess

    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
    if log is not None:
        log.close()
