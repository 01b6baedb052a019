"""Ingest: every extract of an input directory into the warehouse, validated and pseudonymised.

Each file is its own transaction: it loads whole (good rows + quarantine) or,
if it cannot be read, leaves the warehouse as it was while the others go on.
A file whose content hash is already loaded is skipped, so re-ingest is a no-op.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import duckdb
import polars as pl

from pipelines import cpr as cpr_rules
from pipelines import settings, warehouse
from pipelines.privacy import mask, masked_frame, one_line
from pipelines.warehouse import scalar
from pipelines.extract_reader import (ROW_NUMBER, FileFormat, RawExtract, content_hash,
                                      iter_extract_batches)
from pipelines.pseudonym import pseudonymise
from pipelines.read_ahead import ReadAhead, run_reader
from pipelines.reference import Reference, load_reference, store_reference
from pipelines.sources import SOURCES, BadInputLayout, UnreadableExtract, extract_date_of
from pipelines.validation import ValidatedExtract, validate
from schemas import EXTRACT_SCHEMAS
from schemas.columns import ValidationContext

log = logging.getLogger("kvalitet.ingest")
FORMATS_FILE = "formats.yaml"
ALREADY_LOADED = ("SELECT 1 FROM extract_files WHERE source = ? AND content_hash = ? "
                  "AND extract_date = ?")


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
    """Extract files by source, oldest extract first. Everything else of the input is listed
    as unrecognised (masked names): folders that are not registries, and entries of a registry
    folder that are not files (a folder named like an extract is not an extract)."""
    found, unrecognised = [], []
    for entry in sorted(input_dir.iterdir()):
        if entry.name.startswith(".") or entry.name == "reference" or entry.name == FORMATS_FILE:
            continue
        if entry.is_dir() and entry.name in SOURCES:
            for path in sorted(entry.iterdir()):
                if path.name.startswith("."):
                    continue
                if path.is_file():
                    found.append((entry.name, path))
                else:
                    unrecognised.append(mask(f"{entry.name}/{path.name}/ (a folder, not an "
                                             "extract file)"))
        else:
            unrecognised.append(mask(entry.name + ("/" if entry.is_dir() else "")))

    def order(item: tuple[str, Path]) -> tuple:
        try:
            day = extract_date_of(item[1])
        except UnreadableExtract:
            day = dt.date.min
        return (list(SOURCES).index(item[0]), day, item[1].name)

    return sorted(found, key=order), unrecognised


def warehouse_rows(valid: pl.DataFrame, source: str, key: bytes, file_id: int,
                   extract_date: dt.date) -> pl.DataFrame:
    """Valid typed rows as the history table stores them: the CPR replaced by pseudonym and age
    (from the birth date validation computed)."""
    period = pl.col(SOURCES[source].period_column)
    if valid.schema[SOURCES[source].period_column] != pl.Date:
        period = period.dt.date()
    born = pl.col(cpr_rules.BIRTH_DATE)
    rows = (valid.lazy()
            .with_columns(
                pl.lit(file_id, pl.Int32).alias("file_id"),
                pl.col(ROW_NUMBER).alias("row_number"),
                pl.lit(extract_date).alias("extract_date"),
                cpr_rules.age_on(born, period).alias("age"),
            ).drop(cpr_rules.BIRTH_DATE).collect())
    rows = rows.with_columns(pseudonymise(rows["cpr"], key).alias("pseudonym"))
    return rows.drop("cpr", ROW_NUMBER)


class FatalIngestError(RuntimeError):
    """Trouble that is not one file's: the warehouse itself cannot be written (disk full,
    permission denied, another run holds it). The run stops with this one line."""

    masked = True


def ingest_file(con, source: str, path: Path, reference: Reference, key: bytes,
                told: FileFormat = FileFormat(), today: dt.date | None = None,
                ahead: tuple[ReadAhead, int] | None = None) -> FileOutcome:
    """One file in one transaction. Whatever goes wrong with it fails this file only: named,
    with a one-line masked cause, and the warehouse as it was for it. ``ahead``: the reader
    already reading it (and its place in the reader's order)."""
    name = mask(path.name)
    outcome = FileOutcome(source=source, file_name=name, status="failed")
    try:
        _load(con, source, path, reference, key, told, today or settings.today(), outcome, ahead)
    except UnreadableExtract as problem:
        outcome.problem = mask(problem.problem)
    except (duckdb.Error, OSError) as problem:  # a full disk may first show at COMMIT
        if _is_operational(problem):
            raise FatalIngestError(f"{source}/{name}: {one_line(problem)}") from None
        outcome.problem = one_line(problem)
    except Exception as problem:  # any other failure stays with its file
        outcome.problem = one_line(problem)
    finally:
        if ahead:
            ahead[0].done_with(ahead[1])
    if outcome.status == "failed":  # nothing of it counts, not even the rows read before
        outcome.rows_read = outcome.rows_loaded = outcome.rows_quarantined = 0
        log.error("%s/%s failed: %s", source, name, outcome.problem)
    return outcome


def _is_operational(problem: BaseException) -> bool:
    text = str(problem)
    return any(s in text for s in ("No space left", "Permission denied", "Read-only file system",
                                   "Could not set lock", "Disk quota"))


def _load(con, source: str, path: Path, reference: Reference, key: bytes, told: FileFormat,
          today: dt.date, outcome: FileOutcome, ahead: tuple[ReadAhead, int] | None) -> None:
    extract_date = extract_date_of(path)
    outcome.extract_date = extract_date.isoformat()
    if extract_date > today:
        raise UnreadableExtract(path, f"its extract date {extract_date} lies after the day of "
                                f"the run ({today}); refused")
    digest = ahead[0].digest(ahead[1]) if ahead else None
    if digest is None:  # the reader does not have this file: hash and read it here
        ahead, digest = None, content_hash(path)
    if scalar(con, ALREADY_LOADED, [source, digest, extract_date]):
        outcome.status = "already_loaded"
        return
    schema = EXTRACT_SCHEMAS[source]
    if ahead:  # read and checked by the reader
        batches = ahead[0].batches(ahead[1])
    else:
        check = checker(reference)
        batches = ((b, check(source, path, b))
                   for b in iter_extract_batches(path, schema, told, digest))
    first = next(batches)  # decides whether the file can be read at all, before any write
    outcome.extra_columns = first[0].extra_columns
    outcome.absent_columns = first[0].absent_optional_columns
    rules: dict[str, int] = {}
    seen_ids = pl.Series("record_id", [], pl.String)
    with warehouse.transaction(con):
        file_id = scalar(con, "SELECT nextval('extract_file_ids')")
        for extract, checked in itertools.chain([first], batches):
            if "record_id" in schema.names:  # the first row of an id wins across batches too
                checked, seen_ids = _earlier_batch_duplicates(extract, checked, seen_ids)
            quarantined = extract.rows_read - checked.valid.height
            outcome.rows_read += extract.rows_read
            outcome.rows_loaded += checked.valid.height
            outcome.rows_quarantined += quarantined
            for rule, count in checked.quarantine.group_by("rule").len().iter_rows():
                rules[rule] = rules.get(rule, 0) + count
            rows = warehouse_rows(checked.valid, source, key, file_id, extract_date)
            rejected = masked_frame(checked.quarantine).with_columns(  # noqa: F841
                pl.lit(file_id).alias("file_id"), pl.lit(source).alias("source"),
                pl.lit(outcome.file_name).alias("file_name"))
            warehouse.store_rows(con, source, rows, file_id, extract_date, outcome.file_name)
            con.execute("INSERT INTO quarantine BY NAME SELECT * FROM rejected")
            del rows, rejected, checked
        outcome.rules = dict(sorted(rules.items()))
        if outcome.rows_read != outcome.rows_loaded + outcome.rows_quarantined:
            raise RuntimeError(f"rows do not add up: {outcome.rows_read} read, "
                               f"{outcome.rows_loaded} loaded, {outcome.rows_quarantined} "
                               "quarantined")
        con.execute(
            "INSERT INTO extract_files (file_id, source, file_name, extract_date, content_hash, "
            "encoding, delimiter, rows_read, rows_loaded, rows_quarantined, extra_columns, "
            "absent_columns, loaded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "now()::TIMESTAMP)",
            [file_id, source, outcome.file_name, extract_date, digest, first[0].encoding,
             first[0].delimiter, outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined,
             outcome.extra_columns, outcome.absent_columns],
        )
    outcome.status = "loaded"
    log.info("%s/%s: %d rows read, %d loaded, %d quarantined", source, outcome.file_name,
             outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined)


def checker(reference: Reference) -> Callable[[str, Path, RawExtract], ValidatedExtract]:
    """A batch of a registry's file checked against the contract, as the reader does it
    ahead of the writer (or the writer itself, for a file the reader does not have)."""
    contexts: dict[dt.date, ValidationContext] = {}

    def check(source: str, path: Path, extract: RawExtract) -> ValidatedExtract:
        day = extract_date_of(path)
        if day not in contexts:
            contexts[day] = reference.context(day)
        return validate(extract, EXTRACT_SCHEMAS[source], contexts[day])
    return check


def _earlier_batch_duplicates(extract, checked, seen: pl.Series):
    """Rows of this batch whose record_id an earlier batch of the same file already had are
    quarantined as ``duplicate_record_id`` (within a batch, validation found them)."""
    from pipelines.validation import QUARANTINE_COLUMNS, UNIT_COLUMNS, ValidatedExtract

    ids = extract.rows["record_id"]
    again = (extract.rows.filter(pl.col("record_id").is_in(seen.implode())) if seen.len()
             else extract.rows.clear())
    seen = pl.concat([seen, ids.drop_nulls()])  # an id twice in it changes nothing for is_in
    if again.is_empty():
        return checked, seen
    context = [c for c in UNIT_COLUMNS if c in extract.rows.columns]
    extra = again.select(
        pl.col(ROW_NUMBER).alias("row_number"), pl.lit("record_id").alias("column_name"),
        pl.lit("duplicate_record_id").alias("rule"), pl.col("record_id").alias("value"),
        pl.col("record_id"), *context)
    quarantine = pl.concat([checked.quarantine, extra], how="diagonal_relaxed").select(
        [pl.col(c).cast(t) if c in extra.columns or c in checked.quarantine.columns
         else pl.lit(None, t).alias(c) for c, t in QUARANTINE_COLUMNS.items()])
    valid = checked.valid.filter(~pl.col(ROW_NUMBER).is_in(again[ROW_NUMBER].implode()))
    return ValidatedExtract(valid=valid, quarantine=quarantine,
                            rows_quarantined=extract.rows_read - valid.height), seen


def told_formats(input_dir: Path) -> dict[str, FileFormat]:
    """Optional INPUT/formats.yaml telling a source's delimiter and/or encoding, e.g.
    ``hipfracture: {delimiter: ";", encoding: cp1252}``; what it names is not guessed."""
    path = input_dir / FORMATS_FILE
    if not path.exists():
        return {}
    from pipelines.definitions import DefinitionError, read_definition_file

    try:  # bounded like a definition file: no aliases, no depth bombs, 64 KiB at most
        data = read_definition_file(path)
    except DefinitionError as problem:
        raise BadInputLayout(str(problem))
    formats = {}
    for source, told in data.items():
        if source not in SOURCES or not isinstance(told, dict) or set(told) - {"delimiter",
                                                                             "encoding"}:
            raise BadInputLayout(f"{FORMATS_FILE}: {source!r} must be a registry with only "
                                 "delimiter and/or encoding")
        formats[source] = FileFormat(told.get("delimiter"), told.get("encoding"))
    return formats


def _already_loaded(cursor) -> Callable[[str, str, dt.date], bool]:
    """The reader's question, on its own cursor: is this file (by content) loaded already?"""
    def loaded(source: str, digest: str, extract_date: dt.date) -> bool:
        return bool(cursor.execute(ALREADY_LOADED, [source, digest, extract_date]).fetchall())
    return loaded


def ingest_directory(input_dir: Path, warehouse_path: Path, key: bytes,
                     formats: dict[str, FileFormat] | None = None,
                     progress: Callable[[int, int, str], None] | None = None,
                     sources: tuple[str, ...] | None = None) -> IngestSummary:
    """Every extract of the input (or of the named sources only)."""
    run = run_reader(input_dir)
    reference = run.reference() if run is not None else load_reference(input_dir)
    formats = {**told_formats(input_dir), **(formats or {})}
    every_file, unrecognised = discover(input_dir)
    files = every_file
    if sources is not None:
        files = [(s, p) for s, p in every_file if s in sources]
        unrecognised = [u for u in unrecognised if u.split("/")[0] in sources]
    for name in unrecognised:
        log.warning("not an extract of the contract, not loaded: %s", name)
    outcomes = []
    today = settings.today()
    with warehouse.connect(warehouse_path) as con:
        # A file's uncommitted rows would otherwise grow with the file inside DuckDB.
        con.execute(f"SET memory_limit = '{warehouse.duckdb_memory_mb(4)}MB'")
        with warehouse.transaction(con):
            warehouse.claim_key(con, key, warehouse_path)
            store_reference(con, reference)
        if run is not None:  # the run's reader, over every registry's files
            reader, places = run.reader(con, every_file, formats, today, _already_loaded,
                                        checker(reference))
            today = run.today
        else:
            cursor = con.cursor()  # the reader's own: it asks which files are loaded already
            reader = ReadAhead(files, formats, today, _already_loaded(cursor),
                               checker(reference))
            places = {file: place for place, file in enumerate(files)}
        try:
            for done, (source, path) in enumerate(files):
                if progress:
                    progress(done, len(files), f"{source}/{mask(path.name)}")
                place = places.get((source, path))  # None: delivered after the reader began
                outcomes.append(ingest_file(con, source, path, reference, key,
                                            formats.get(source, FileFormat()), today,
                                            None if place is None else (reader, place)))
        finally:
            if run is None:
                reader.close()
                cursor.close()
        if progress:
            progress(len(files), len(files), "done")
    return IngestSummary(files=outcomes, unrecognised=unrecognised)
