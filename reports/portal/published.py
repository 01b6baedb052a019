"""What the pipeline published in OUTPUT, read only: monthly deliveries per unit.

Layout: ``OUTPUT/reports/monthly/YYYY-MM/<level>_<code>/`` (results, run charts,
records not meeting an indicator, rejected rows, and ``index.html`` when the
reports step wrote a unit page). Months are published atomically (a hidden
staging folder renamed into place), so a month folder is whole or absent; a read
that races a re-publication is retried once. The warehouse is never opened.
"""

from __future__ import annotations

import csv
import io
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
LEVEL = re.compile(r"^[a-z][a-z_]{0,30}$")
CODE = re.compile(r"^[A-Za-z0-9]{1,20}$")
FOLDER = re.compile(r"^([a-z][a-z_]{0,30}?)_([A-Za-z0-9]{1,20})$")
# Files a unit may download from its delivery: plain names with a known ending only.
FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}\.(html|js|csv|xlsx|parquet|pdf|png|svg|json|txt)$")
COMPARISON_LEVELS = ("region", "national")


@dataclass(frozen=True)
class Unit:
    level: str
    code: str
    name: str
    region: str | None

    @property
    def key(self) -> str:
        return f"{self.level}:{self.code}"


@dataclass
class Delivery:
    """One unit's delivery of one month, read whole."""

    unit: Unit
    month: str
    folder: Path
    files: list[str]
    results: pl.DataFrame
    signals: pl.DataFrame
    records: pl.DataFrame
    rejected: pl.DataFrame
    index_html: str | None
    cache: dict = field(default_factory=dict)


def parse_csv_text(text: str) -> pl.DataFrame:
    """A published CSV with every column as text (record ids keep their zeros)."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return pl.DataFrame()
    header, body = rows[0], rows[1:]
    return pl.DataFrame({h: [r[i] if i < len(r) else "" for r in body]
                         for i, h in enumerate(header)}, schema={h: pl.String for h in header})


def _signature(folder: Path | int) -> tuple:
    with os.scandir(folder) as entries:
        return tuple(sorted((e.name, e.stat().st_mtime_ns, e.stat().st_size)
                            for e in entries if e.is_file()))


def _bytes(directory: int, name: str) -> bytes | None:
    """A file of the folder opened as ``directory`` (a descriptor): a folder renamed away
    and replaced meanwhile is still read whole, from the version first opened."""
    try:
        fd = os.open(name, os.O_RDONLY, dir_fd=directory)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


class Published:
    """Read-only view of OUTPUT's deliveries, cached by each folder's file signature."""

    def __init__(self, output: Path):
        self.output = Path(output)
        self.monthly = self.output / "reports" / "monthly"
        self._lock = threading.Lock()
        self._deliveries: dict[Path, tuple[tuple, Delivery]] = {}
        self._units: dict[str, tuple[float, dict[str, Unit]]] = {}

    # -- months and units -----------------------------------------------------------
    def months(self) -> list[str]:
        if not self.monthly.is_dir():
            return []
        return sorted(e.name for e in os.scandir(self.monthly)
                      if e.is_dir() and MONTH.match(e.name))

    def folder(self, level: str, code: str, month: str) -> Path | None:
        if not (LEVEL.match(level) and CODE.match(code) and MONTH.match(month)):
            return None
        path = self.monthly / month / f"{level}_{code}"
        return path if path.is_dir() else None

    def months_of(self, level: str, code: str) -> list[str]:
        return [m for m in self.months() if self.folder(level, code, m) is not None]

    def units(self, month: str) -> dict[str, Unit]:
        """Every unit delivered in ``month``, with its name and region (from the region
        rows of its own delivery)."""
        root = self.monthly / month
        try:
            stamp = root.stat().st_mtime_ns
        except FileNotFoundError:
            return {}
        cached = self._units.get(month)
        if cached and cached[0] == stamp:
            return cached[1]
        found: dict[str, Unit] = {}
        for entry in sorted(os.scandir(root), key=lambda e: e.name):
            match = FOLDER.match(entry.name)
            if not (entry.is_dir() and match):
                continue
            level, code = match.groups()
            name, region = _name_and_region(Path(entry.path), level, code)
            found[f"{level}:{code}"] = Unit(level, code, name, region)
        self._units[month] = (stamp, found)
        return found

    def all_units(self) -> dict[str, Unit]:
        """Every unit of any month; the latest month's name and region win."""
        out: dict[str, Unit] = {}
        for month in self.months():
            out.update(self.units(month))
        return out

    def unit(self, level: str, code: str) -> Unit | None:
        for month in reversed(self.months()):
            found = self.units(month).get(f"{level}:{code}")
            if found:
                return found
        return None

    def region_names(self) -> dict[str, str]:
        names: dict[str, str] = {}
        for month in self.months()[-1:]:
            for unit in self.units(month).values():
                if unit.region and unit.region not in names:
                    delivery = self.delivery(unit.level, unit.code, month)
                    if delivery is not None:
                        rows = delivery.results.filter(pl.col("level") == "region")
                        if rows.height:
                            names[unit.region] = rows["unit_name"][0]
        return names

    # -- one delivery ---------------------------------------------------------------
    def delivery(self, level: str, code: str, month: str) -> Delivery | None:
        for attempt in (1, 2, 3):  # a month re-published while it was read: read again
            folder = self.folder(level, code, month)
            if folder is None:
                return None
            try:
                directory = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            except FileNotFoundError:
                if attempt == 3:
                    return None
                continue
            try:
                signature = _signature(directory)
                with self._lock:
                    cached = self._deliveries.get(folder)
                if cached and cached[0] == signature:
                    return cached[1]
                delivery = _read(directory, folder, level, code, month, signature)
                if not _still_published(directory, folder):
                    raise _Vanished(folder.name)
            except (FileNotFoundError, _Vanished):
                if attempt == 3:
                    return None
                continue
            finally:
                os.close(directory)
            with self._lock:
                if len(self._deliveries) > 512:
                    self._deliveries.clear()
                self._deliveries[folder] = (signature, delivery)
            return delivery
        return None

    def file(self, level: str, code: str, month: str, name: str) -> Path | None:
        """A published file by its exact name in the listing, never a joined input path."""
        folder = self.folder(level, code, month)
        if folder is None or not FILE.match(name):
            return None
        listed = {e.name: e for e in os.scandir(folder) if e.is_file(follow_symlinks=False)}
        entry = listed.get(name)
        return Path(entry.path) if entry is not None else None


def _still_published(directory: int, folder: Path) -> bool:
    """The folder read is still the one at its path. An old version is deleted only after
    the new one was renamed in, so while this holds, nothing of it was deleted mid-read."""
    try:
        here, there = os.fstat(directory), os.stat(folder)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


class _Vanished(Exception):
    """A file listed in the folder was gone when opened: the month was re-published."""


def _name_and_region(folder: Path, level: str, code: str) -> tuple[str, str | None]:
    try:
        results = pl.read_parquet(folder / "results.parquet",
                                  columns=["level", "unit_code", "unit_name"])
    except (FileNotFoundError, pl.exceptions.PolarsError, OSError):
        return code, None
    return _naming(results, level, code)


def _naming(results: pl.DataFrame, level: str, code: str) -> tuple[str, str | None]:
    if results.is_empty():
        return code, None
    own = results.filter(pl.col("level") == level, pl.col("unit_code") == code)
    region = results.filter(pl.col("level") == "region")["unit_code"].unique().to_list()
    return (own["unit_name"][0] if own.height else code), (str(region[0]) if region else None)


def _read(directory: int, folder: Path, level: str, code: str, month: str,
          signature: tuple) -> Delivery:
    """Every file through one open descriptor of the folder: one version, never a mix."""
    listed = {name for name, _, _ in signature}

    def data(name: str) -> bytes | None:
        if name not in listed:
            return None
        found = _bytes(directory, name)
        if found is None:
            raise _Vanished(name)
        return found

    def csv_frame(name: str) -> pl.DataFrame:
        raw = data(name)
        return pl.DataFrame() if raw is None else parse_csv_text(raw.decode("utf-8-sig"))

    raw = data("results.parquet")
    results = pl.read_parquet(io.BytesIO(raw)) if raw else pl.DataFrame()
    raw = data("run_chart_signals.parquet")
    signals = pl.read_parquet(io.BytesIO(raw)) if raw else pl.DataFrame()
    index = data("index.html")
    name, region = _naming(results, level, code)
    return Delivery(
        unit=Unit(level, code, name, region), month=month, folder=folder,
        files=[n for n, _, _ in signature if FILE.match(n)], results=results, signals=signals,
        records=csv_frame("records_not_meeting.csv"), rejected=csv_frame("quarantined_rows.csv"),
        index_html=index.decode("utf-8") if index is not None else None)


def reference_units(folders: list[Path] | None = None) -> tuple[dict[str, str | None], set[str]]:
    """({level:code: region code}, region codes) from reference tables: every CSV whose
    first column is ``<level>_code`` (hospitals, municipalities, clinics, regions ...).
    Used to refuse an unknown unit in ``portal user add`` before any month is published."""
    from pipelines.settings import PROJECT_ROOT

    folders = folders or [PROJECT_ROOT / "sample_data" / "reference",
                          PROJECT_ROOT / "sample_data" / "input" / "reference"]
    units: dict[str, str | None] = {}
    regions: set[str] = set()
    for folder in folders:
        for path in sorted(Path(folder).glob("*.csv")) if Path(folder).is_dir() else []:
            raw = path.read_bytes()
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                text = raw.decode("cp1252")
            first = text.split("\n", 1)[0]
            rows = list(csv.reader(io.StringIO(text),
                                   delimiter=";" if first.count(";") > first.count(",") else ","))
            if not rows:
                continue
            header = [h.strip().lower() for h in rows[0]]
            if not header or not header[0].endswith("_code"):
                continue
            level = header[0][: -len("_code")]
            at = header.index("region_code") if "region_code" in header else None
            for row in rows[1:]:
                if not row or not row[0].strip():
                    continue
                code = row[0].strip()
                if level == "region":
                    regions.add(code)
                elif LEVEL.match(level) and CODE.match(code):
                    units[f"{level}:{code}"] = (row[at].strip() if at is not None
                                                and at < len(row) else None)
    return units, regions
