"""Ingest: every extract of an input directory into the warehouse, validated and pseudonymised.

Each file is its own transaction: it loads whole (good rows + quarantine) or,
if it cannot be read, leaves the warehouse as it was while the others go on.
A file whose content hash is already loaded is skipped, so re-ingest is a no-op.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import polars as pl

from pipelines import cpr as cpr_rules
from pipelines import warehouse
from pipelines.warehouse import scalar
from pipelines.extract_reader import ROW_NUMBER, FileFormat, content_hash, read_extract
from pipelines.pseudonym import pseudonymise
from pipelines.reference import Reference, load_reference, store_reference
from pipelines.sources import SOURCES, BadInputLayout, UnreadableExtract, extract_date_of
from pipelines.validation import validate
from schemas import EXTRACT_SCHEMAS

log = logging.getLogger("kvalitet.ingest")


@dataclass
class FileOutcome:
    source: str
    file_name: str
    status: str  # loaded | already_loaded | failed
    extract_date: str | None = None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rules: dict[str, int] = field(default_factory=dict)
    extra_columns: list[str] = field(default_factory=list)
    absent_columns: list[str] = field(default_factory=list)
    problem: str | None = None


@dataclass
class IngestSummary:
    files: list[FileOutcome]
    unrecognised: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[FileOutcome]:
        return [f for f in self.files if f.status == "failed"]

    def as_dict(self) -> dict:
        return {"files": [asdict(f) for f in self.files], "unrecognised": self.unrecognised}

    @classmethod
    def from_dict(cls, data: dict) -> "IngestSummary":
        return cls([FileOutcome(**f) for f in data["files"]], list(data.get("unrecognised", [])))


def discover(input_dir: Path) -> tuple[list[tuple[str, Path]], list[str]]:
    """Extract files by source, oldest extract first; names that fit no source are listed."""
    found, unrecognised = [], []
    for entry in sorted(input_dir.iterdir()):
        if entry.name.startswith(".") or entry.name == "reference" or entry.name.endswith(".yaml"):
            continue
        if entry.is_dir() and entry.name in SOURCES:
            for path in sorted(entry.iterdir()):
                if path.is_file() and not path.name.startswith("."):
                    found.append((entry.name, path))
        else:
            unrecognised.append(entry.name)

    def order(item: tuple[str, Path]) -> tuple:
        try:
            day = extract_date_of(item[1])
        except UnreadableExtract:
            day = dt.date.min
        return (list(SOURCES).index(item[0]), day, item[1].name)

    return sorted(found, key=order), unrecognised


def warehouse_rows(valid: pl.DataFrame, source: str, key: bytes, file_id: int,
                   extract_date: dt.date) -> pl.DataFrame:
    """Valid typed rows as the history table stores them: the CPR replaced by pseudonym and age."""
    period = pl.col(SOURCES[source].period_column)
    if valid.schema[SOURCES[source].period_column] != pl.Date:
        period = period.dt.date()
    rows = (valid.lazy()
            .with_columns(cpr_rules.birth_date(pl.col("cpr")).alias("__born"), period.alias("__on"))
            .with_columns(
                pl.lit(file_id, pl.Int32).alias("file_id"),
                pl.col(ROW_NUMBER).alias("row_number"),
                pl.lit(extract_date).alias("extract_date"),
                cpr_rules.age_on(pl.col("__born"), pl.col("__on")).alias("age"),
            ).drop("__born", "__on").collect())
    rows = rows.with_columns(pseudonymise(rows["cpr"], key).alias("pseudonym"))
    return rows.drop("cpr", ROW_NUMBER)


def ingest_file(con, source: str, path: Path, reference: Reference, key: bytes,
                told: FileFormat = FileFormat()) -> FileOutcome:
    outcome = FileOutcome(source=source, file_name=path.name, status="failed")
    try:
        digest = content_hash(path)
        if scalar(con, "SELECT 1 FROM extract_files WHERE content_hash = ?", [digest]):
            outcome.status = "already_loaded"
            outcome.extract_date = extract_date_of(path).isoformat()
            return outcome
        schema = EXTRACT_SCHEMAS[source]
        extract = read_extract(path, schema, told, digest)
        checked = validate(extract, schema, reference.context(extract.extract_date))
    except UnreadableExtract as problem:
        outcome.problem = problem.problem
        log.error("%s/%s cannot be read: %s", source, path.name, problem.problem)
        return outcome

    outcome.extract_date = extract.extract_date.isoformat()
    outcome.rows_read = extract.rows_read
    outcome.rows_quarantined = checked.rows_quarantined
    outcome.rows_loaded = checked.valid.height
    outcome.rules = dict(checked.quarantine.group_by("rule").len().sort("rule").iter_rows())
    outcome.extra_columns, outcome.absent_columns = extract.extra_columns, extract.absent_optional_columns

    con.execute("BEGIN TRANSACTION")
    try:
        file_id = scalar(con, "SELECT nextval('extract_file_ids')")
        rows = warehouse_rows(checked.valid, source, key, file_id, extract.extract_date)  # noqa: F841
        rejected = checked.quarantine.with_columns(  # noqa: F841
            pl.lit(file_id).alias("file_id"), pl.lit(source).alias("source"),
            pl.lit(path.name).alias("file_name"))
        con.execute(f"INSERT INTO {source}_history BY NAME SELECT * FROM rows")
        con.execute("INSERT INTO quarantine BY NAME SELECT * FROM rejected")
        con.execute(
            "INSERT INTO extract_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP)",
            [file_id, source, path.name, extract.extract_date, extract.content_hash,
             extract.encoding, extract.delimiter, outcome.rows_read, outcome.rows_loaded,
             outcome.rows_quarantined, extract.extra_columns, extract.absent_optional_columns],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    outcome.status = "loaded"
    log.info("%s/%s: %d rows read, %d loaded, %d quarantined", source, path.name,
             outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined)
    return outcome


FORMATS_FILE = "formats.yaml"


def told_formats(input_dir: Path) -> dict[str, FileFormat]:
    """Optional INPUT/formats.yaml telling a source's delimiter and/or encoding, e.g.
    ``hipfracture: {delimiter: ";", encoding: cp1252}``; what it names is not guessed."""
    import yaml

    path = input_dir / FORMATS_FILE
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    formats = {}
    for source, told in data.items():
        if source not in SOURCES or not isinstance(told, dict) or set(told) - {"delimiter",
                                                                             "encoding"}:
            raise BadInputLayout(f"{FORMATS_FILE}: {source!r} must be a registry with only "
                                 "delimiter and/or encoding")
        formats[source] = FileFormat(told.get("delimiter"), told.get("encoding"))
    return formats


def ingest_directory(input_dir: Path, warehouse_path: Path, key: bytes,
                     formats: dict[str, FileFormat] | None = None,
                     progress: Callable[[int, int, str], None] | None = None,
                     sources: tuple[str, ...] | None = None) -> IngestSummary:
    """Every extract of the input (or of the named sources only)."""
    reference = load_reference(input_dir)
    formats = {**told_formats(input_dir), **(formats or {})}
    files, unrecognised = discover(input_dir)
    if sources is not None:
        files = [(s, p) for s, p in files if s in sources]
    for name in unrecognised:
        log.warning("ignored %s in %s: not a registry folder of the contract", name, input_dir)
    outcomes = []
    with warehouse.connect(warehouse_path) as con:
        con.execute("BEGIN TRANSACTION")
        store_reference(con, reference)
        con.execute("COMMIT")
        for done, (source, path) in enumerate(files):
            if progress:
                progress(done, len(files), f"{source}/{path.name}")
            outcomes.append(ingest_file(con, source, path, reference, key,
                                        (formats or {}).get(source, FileFormat())))
        if progress:
            progress(len(files), len(files), "done")
    return IngestSummary(files=outcomes, unrecognised=unrecognised)
