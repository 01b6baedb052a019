"""Where things live and which environment variables steer a run."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = PROJECT_ROOT / "sql"
INDICATORS_DIR = Path(os.environ.get("KVALITET_INDICATORS_DIR", PROJECT_ROOT / "indicators"))
SAMPLE_INPUT_DIR = PROJECT_ROOT / "sample_data" / "input"

PSEUDONYM_KEY_ENV = "KVALITET_PSEUDONYM_KEY"
WAREHOUSE_ENV = "KVALITET_WAREHOUSE"
WAREHOUSE_FILE_NAME = "kvalitet.duckdb"

# The throw-away key the bundled demo uses; never valid for real data.
DEMO_PSEUDONYM_KEY = "kvalitet-demo-key-not-for-real-data"


MEMORY_LIMIT_ENV = "KVALITET_MEMORY_LIMIT_GB"
DEFAULT_MEMORY_LIMIT_GB = 8.0


def memory_limit_bytes() -> int:
    """The memory a run may use (GiB in the environment, default 8): large extracts are read in
    batches sized to it, and a file is never read whole beyond it."""
    text = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if not text:
        return int(DEFAULT_MEMORY_LIMIT_GB * 2**30)
    try:
        gib = float(text)
    except ValueError:
        gib = float("nan")
    if not 0 < gib < float("inf"):
        raise ValueError(f"{MEMORY_LIMIT_ENV} must be a positive number of GiB, e.g. 8")
    return int(gib * 2**30)


def default_warehouse(output_dir: Path | None = None) -> Path:
    """The environment wins; else the run's output folder; else ./kvalitet_output."""
    if os.environ.get(WAREHOUSE_ENV, "").strip():
        return Path(os.environ[WAREHOUSE_ENV])
    return (output_dir or Path("kvalitet_output")) / WAREHOUSE_FILE_NAME


RUN_DATE_ENV = "KVALITET_RUN_DATE"


def today() -> dt.date:
    """The day of the run in Danish local time; ``KVALITET_RUN_DATE`` (YYYY-MM-DD) states it
    instead, for tests and for re-running a past day. An extract dated after it is refused."""
    from zoneinfo import ZoneInfo

    told = os.environ.get(RUN_DATE_ENV, "").strip()
    if told:
        try:
            return dt.date.fromisoformat(told)
        except ValueError:
            raise ValueError(f"{RUN_DATE_ENV} must be a date YYYY-MM-DD, e.g. 2026-01-15"
                             ) from None
    return dt.datetime.now(ZoneInfo("Europe/Copenhagen")).date()


SMALL_NUMBER_ENVS = (("KVALITET_SMALL_NUMBER_MIN", 1), ("KVALITET_SMALL_NUMBER_MAX", 4))


def small_number_range() -> tuple[int, int]:
    """The denominators published artefacts hide (default 1-4). A maximum below the minimum
    hides none (an internal publication)."""
    values = []
    for name, default in SMALL_NUMBER_ENVS:
        text = os.environ.get(name, "").strip()
        try:
            values.append(int(text) if text else default)
        except ValueError:
            raise ValueError(f"{name} must be a whole number, e.g. {default}") from None
    if values[0] < 1:
        raise ValueError(f"{SMALL_NUMBER_ENVS[0][0]} must be at least 1 (a denominator of 0 "
                         "has no row)")
    return values[0], values[1]


ORCHESTRATION_ENV = "KVALITET_ORCHESTRATION"
ORCHESTRATIONS = ("auto", "direct", "prefect")


def told_orchestration() -> str:
    """KVALITET_ORCHESTRATION: ``direct``, ``prefect`` or ``auto`` (unset: auto)."""
    told = os.environ.get(ORCHESTRATION_ENV, "").strip().lower() or "auto"
    if told not in ORCHESTRATIONS:
        raise ValueError(f"{ORCHESTRATION_ENV} must be one of {', '.join(ORCHESTRATIONS)}")
    return told


def check_environment() -> None:
    """Every setting read from the environment, checked before any work starts: a bad one
    would otherwise fail each registry in turn, or only the report at the end."""
    memory_limit_bytes()
    today()
    small_number_range()
    told_orchestration()


class MissingPseudonymKey(RuntimeError):
    """A run on real data without a pseudonymisation secret must not start."""

    masked = True


def pseudonym_key(allow_demo: bool = False) -> bytes:
    key = os.environ.get(PSEUDONYM_KEY_ENV, "")
    if key:
        if len(key) < 16:
            raise MissingPseudonymKey(
                f"{PSEUDONYM_KEY_ENV} is shorter than 16 characters; use a long random secret."
            )
        try:
            return key.encode("utf-8")
        except UnicodeEncodeError:  # bytes the locale could not decode: not text
            raise MissingPseudonymKey(f"{PSEUDONYM_KEY_ENV} must be UTF-8 text.") from None
    if allow_demo:
        return DEMO_PSEUDONYM_KEY.encode("utf-8")
    raise MissingPseudonymKey(
        f"Set {PSEUDONYM_KEY_ENV} to the pseudonymisation secret before running on real "
        "extracts (the bundled demo is the only run that may use a throw-away key)."
    )
