"""A hostile input that hides CPR numbers everywhere but in the `cpr` column, and the scanner
that looks for them in every byte a run produced.

The contract allows a CPR number only in the input, and only as a pseudonym after ingest.
`build_leak_input` copies the sample input and plants freshly generated, valid CPR numbers
in every other column of every registry (plain, `DDMMYY-SSSS`, `DDMMYY SSSS`), in header
names, in a file that cannot be parsed, in integer columns they overflow and in Parquet.
`scan_tree` then reads files, DuckDB tables, Parquet columns, xlsx XML and SQLite tables
(Prefect's database) and reports where a planted or sample number turns up, always masked:
nothing here ever prints a number it looks for.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import random
import re
import shutil
import sqlite3
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

SAMPLE_INPUT = Path(__file__).resolve().parent.parent / "sample_data" / "input"

# The contract's columns (data-contract.md), cpr excluded: every one of them gets a planted number.
COLUMNS = {
    "stroke": ["record_id", "sex", "municipality_code", "hospital_code", "admission_at",
               "diagnosis", "stroke_unit_at", "imaging_at", "thrombolysis", "thrombolysis_at",
               "dysphagia_screening_at", "physio_assessment_at", "sss_score", "prestroke_mrs",
               "discharge_at", "death_date"],
    "hipfracture": ["record_id", "sex", "municipality_code", "hospital_code", "admission_at",
                    "diagnosis", "surgery_at", "asa_score", "new_mobility_score", "mobilised_at",
                    "cas_at_discharge", "rehab_plan", "discharge_at", "reoperation_date",
                    "death_date"],
    "cardiac_rehab_hospital": ["record_id", "sex", "municipality_code", "hospital_code",
                               "diagnosis", "index_date", "referred", "referral_date"],
    "cardiac_rehab_municipal": ["record_id", "hospital_record_id", "municipality_code",
                                "referral_received_date", "rehab_start_date", "rehab_end_date",
                                "completed", "smoker", "smoking_cessation_offered"],
    "lpr": ["hospital_code", "municipality_code", "admission_at", "action_diagnosis"],
    "general_practice_diabetes": ["record_id", "sex", "municipality_code", "clinic_code",
                                  "review_date", "diabetes_type", "hba1c_date", "hba1c",
                                  "eye_exam_date", "foot_exam_date", "statin"],
}
INTEGER_COLUMNS = {"municipality_code", "sss_score", "prestroke_mrs", "asa_score",
                   "new_mobility_score", "cas_at_discharge", "hba1c"}
HOSPITAL, MUNICIPALITY = "H401", "101"  # both in the sample's reference tables

# One valid row per registry in June 2025 that misses some indicators (so its record_id is
# listed in the monthly `records_not_meeting.csv` when it loads).
TEMPLATES = {
    "stroke": {"sex": "F", "municipality_code": MUNICIPALITY, "hospital_code": HOSPITAL,
               "admission_at": "2025-06-10 08:00", "diagnosis": "DI63", "thrombolysis": "nej",
               "sss_score": "30", "prestroke_mrs": "1", "discharge_at": "2025-06-20 10:00"},
    "hipfracture": {"sex": "F", "municipality_code": MUNICIPALITY, "hospital_code": HOSPITAL,
                    "admission_at": "2025-06-10 08:00", "diagnosis": "DS720",
                    "surgery_at": "2025-06-12 20:00", "asa_score": "2",
                    "new_mobility_score": "5", "cas_at_discharge": "3", "rehab_plan": "nej",
                    "discharge_at": "2025-06-20 10:00"},
    "cardiac_rehab_hospital": {"sex": "M", "municipality_code": MUNICIPALITY,
                               "hospital_code": HOSPITAL, "diagnosis": "DI21",
                               "index_date": "2025-06-12", "referred": "nej"},
    "cardiac_rehab_municipal": {"municipality_code": MUNICIPALITY,
                                "referral_received_date": "2025-06-12", "completed": "nej",
                                "smoker": "ja", "smoking_cessation_offered": "nej"},
    "lpr": {"hospital_code": HOSPITAL, "municipality_code": MUNICIPALITY,
            "admission_at": "2025-06-10 08:00", "action_diagnosis": "DI63"},
    # a clinic code with its leading zeros, as in the sample's clinics.csv
    "general_practice_diabetes": {"sex": "F", "municipality_code": MUNICIPALITY,
                                  "clinic_code": "009533", "review_date": "2025-06-12",
                                  "diabetes_type": "DE11", "hba1c_date": "2025-05-01",
                                  "hba1c": "60", "statin": "nej"},
}
CPR_ORDER = {"stroke": 1, "hipfracture": 1, "cardiac_rehab_hospital": 1,
             "cardiac_rehab_municipal": 2, "lpr": 0, "general_practice_diabetes": 1}  # where `cpr` sits in the header

FORMS = ("plain", "hyphen", "space")
MASKS = {"plain": "**********", "hyphen": "******-****", "space": "****** ****",
         "number": "*********"}


# -- CPR numbers -------------------------------------------------------------------------
def century(seventh: int, yy: int) -> int:
    """The contract's century rule (7th digit and YY)."""
    if seventh <= 3:
        return 1900
    if seventh in (4, 9):
        return 2000 if yy <= 36 else 1900
    return 2000 if yy <= 57 else 1800


def birth_date(digits: str) -> dt.date | None:
    """The birth date a 10-digit CPR stands for, None if it is not a valid one."""
    if not re.fullmatch(r"[0-9]{10}", digits):
        return None
    day, month, yy, seventh = int(digits[:2]), int(digits[2:4]), int(digits[4:6]), int(digits[6])
    try:
        return dt.date(century(seventh, yy) + yy, month, day)
    except ValueError:
        return None


def written(digits: str, form: str) -> str:
    return {"plain": digits, "hyphen": f"{digits[:6]}-{digits[6:]}",
            "space": f"{digits[:6]} {digits[6:]}"}[form]


class CprMaker:
    """Fresh valid CPR numbers, none of them the sample's and none twice."""

    def __init__(self, avoid: set[str], seed: int = 20250630):
        self.rng = random.Random(seed)
        self.used = set(avoid)

    def new(self, day: int | None = None, born: tuple[int, int] = (1858, 2030)) -> str:
        """A valid number born in `born` (years), on day `day` of its month when given."""
        while True:
            year, month = self.rng.randint(*born), self.rng.randint(1, 12)
            try:
                date = dt.date(year, month, day or self.rng.randint(1, 28))
            except ValueError:
                continue
            yy = year % 100
            sevenths = [s for s in range(10) if century(s, yy) + yy == year]
            if not sevenths:
                continue
            digits = f"{date:%d%m}{yy:02d}{self.rng.choice(sevenths)}{self.rng.randint(0, 999):03d}"
            if digits not in self.used:
                self.used.add(digits)
                return digits


# -- the sample's own numbers ------------------------------------------------------------
def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252")


def _delimiter(header: str) -> str:
    return ";" if header.count(";") > header.count(",") else ","


def sample_cprs(folder: Path = SAMPLE_INPUT) -> set[str]:
    """Every CPR-shaped value of every `cpr` column of the sample's extracts, as 10 digits."""
    found = set()
    for path in sorted(folder.glob("*/*")):
        if path.parent.name == "reference":
            continue
        if path.suffix == ".parquet":
            values = pq.read_table(path, columns=["cpr"]).column("cpr").to_pylist()
        else:
            text = _decode(path.read_bytes())
            rows = csv.reader(io.StringIO(text), delimiter=_delimiter(text.split("\n", 1)[0]))
            header = [h.strip().lower() for h in next(rows)]
            values = [r[header.index("cpr")] for r in rows if len(r) == len(header)]
        found |= {v.strip().replace("-", "") for v in values if v}
    return {v for v in found if re.fullmatch(r"[0-9]{10}", v)}  # the CPR-shaped ones


# -- the hostile input -------------------------------------------------------------------
@dataclass
class LeakInput:
    folder: Path
    planted: dict[str, str]  # 10 digits -> where and how it was planted (no digits in it)
    sample: set[str]
    data_rows: dict[str, int] = field(default_factory=dict)  # file name -> data rows written

    def __repr__(self) -> str:  # pytest shows arguments of failing frames: never the numbers
        return f"LeakInput({self.folder}, {len(self.planted)} planted, {len(self.sample)} sample)"

    @property
    def targets(self) -> dict[str, str]:
        return {**{d: "sample cpr" for d in self.sample},
                **{d: f"planted: {where}" for d, where in self.planted.items()}}


class _Planter:
    def __init__(self, maker: CprMaker):
        self.maker, self.planted, self.ids = maker, {}, 0

    def number(self, where: str, day: int | None = None) -> str:
        digits = self.maker.new(day)
        self.planted[digits] = where
        return digits

    def record_id(self, source: str) -> str:
        self.ids += 1
        return f"LK{source[:2].upper()}{self.ids:05d}"

    def patient(self, where: str) -> str:
        """A planted number in the `cpr` column itself, of a patient aged 65+ (hip fracture)."""
        digits = self.maker.new(born=(1925, 1959))
        self.planted[digits] = f"{where} cpr"
        return digits

    def rows(self, source: str, file_name: str, columns: list[str], numbers: bool = False
             ) -> list[dict[str, str]]:
        """Rows of a valid template, each with one column holding a planted number.

        Text cases (``numbers=False``): every column in every form, except the plain form of
        an integer column. Number cases: the plain form of every integer column, as a random
        number, one that overflows a 32-bit integer (day 31) and one with a leading zero."""
        out = []
        for column in columns:
            if numbers:
                cases = [("plain", d) for d in (None, 31, 5)] if column in INTEGER_COLUMNS else []
            else:
                cases = [(f, None) for f in FORMS if f != "plain" or column not in INTEGER_COLUMNS]
            for form, day in cases:
                where = f"{file_name} {column} ({form}{', day %d' % day if day else ''})"
                row = dict(TEMPLATES[source], cpr=self.patient(where))
                if source != "lpr":
                    row["record_id"] = self.record_id(source)
                row[column] = written(self.number(where, day), form)
                out.append(row)
        return out


def _append_rows(path: Path, rows: list[dict[str, str]], ragged: list[str] = ()) -> int:
    """Rows appended to a CSV in its own encoding, delimiter and line ending; data rows after."""
    data = path.read_bytes()
    bom = data.startswith(b"\xef\xbb\xbf")
    try:
        text, encoding = data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = data.decode("cp1252"), "cp1252"
    newline = "\r\n" if "\r\n" in text else "\n"
    header_line = text.split("\n", 1)[0].rstrip("\r")
    delimiter = _delimiter(header_line)
    header = [h.strip().lower() for h in header_line.split(delimiter)]
    if not text.endswith("\n"):
        text += newline
    lines = [delimiter.join(row.get(h, "") for h in header) for row in rows] + list(ragged)
    text += newline.join(lines) + newline
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding))
    return len([line for line in text.split("\n")[1:] if line.strip()])


def _write_csv(path: Path, header: list[str], rows: list[dict[str, str]], newline: str = "\n"
               ) -> None:
    lines = [",".join(header)] + [",".join(r.get(h, "") for h in header) for r in rows]
    path.write_bytes((newline.join(lines) + newline).encode("utf-8"))


def build_leak_input(folder: Path) -> LeakInput:
    """A copy of the sample input with CPR numbers planted around the `cpr` column."""
    sample = sample_cprs()
    shutil.copytree(SAMPLE_INPUT, folder)
    planter = _Planter(CprMaker(avoid=sample))
    data_rows = {}

    # 1. Extra rows in a copy of each registry's latest extract: every column, every form.
    for source, columns in COLUMNS.items():
        path = folder / source / f"{source}_2025-12-31.csv"
        rows = planter.rows(source, path.name, columns)
        ragged = []
        if source == "stroke":  # a row with one field too many, holding a number
            extra = planter.number(f"{path.name} an extra field of a ragged row")
            ragged.append(",".join([planter.record_id(source), planter.patient(path.name)]
                                   + [TEMPLATES[source].get(c, "") for c in columns[1:]]
                                   + [written(extra, "hyphen")]))
        data_rows[path.name] = _append_rows(path, rows, ragged)

    # 1b. Integer columns holding a number (it overflows them), in a file of their own that is
    # read last in its registry, so a registry that fails on it has read everything else first.
    for source, columns in COLUMNS.items():
        if source == "stroke":
            continue  # stroke's are in a typed Parquet file (5.)
        path = folder / source / f"{source}_overflow_2025-12-31.csv"
        rows = planter.rows(source, path.name, columns, numbers=True)
        _write_csv(path, ["cpr"] + columns, rows)
        data_rows[path.name] = len(rows)

    # 2. The free-text column the sample's June hip fracture extract has (an extra column).
    path = folder / "hipfracture" / "hipfracture_2025-06-30.csv"
    free_text = []
    for form in FORMS:
        where = f"{path.name} bemærkning, free text ({form})"
        row = dict(TEMPLATES["hipfracture"], cpr=planter.patient(where),
                   record_id=planter.record_id("hipfracture"))
        row["bemærkning"] = f"Overflyttet, ring pt. {written(planter.number(where), form)} ved spm."
        free_text.append(row)
    data_rows[path.name] = _append_rows(path, free_text)

    # 3. Header names shaped like CPR numbers (extra columns), with numbers as their values.
    path = folder / "cardiac_rehab_hospital" / "cardiac_rehab_hospital_2025-09-30.csv"
    names = [written(planter.number(f"{path.name} header name ({form})"), form) for form in FORMS]
    header = ["record_id", "cpr"] + COLUMNS["cardiac_rehab_hospital"][1:] + names
    rows = []
    for _ in range(3):
        row = dict(TEMPLATES["cardiac_rehab_hospital"], record_id=planter.record_id("cr"),
                   cpr=planter.patient(path.name))
        row.update({n: written(planter.number(f"{path.name} value under a CPR-named column"),
                               "plain") for n in names})
        rows.append(row)
    _write_csv(path, header, rows)
    data_rows[path.name] = len(rows)

    # 4. A file that cannot be parsed: CR-only line endings, every line holding numbers, each
    # twice (so a "column appears more than once" message would list them), sample lines too.
    path = folder / "stroke" / "stroke_2025-08-31.csv"
    sample_lines = (SAMPLE_INPUT / "stroke" / "stroke_2025-12-31.csv").read_text(
        encoding="utf-8").splitlines()[1:41]
    header = ["record_id", "cpr"] + COLUMNS["stroke"][1:]
    lines = [",".join(header)] + sample_lines + sample_lines
    for form in FORMS:
        where = f"{path.name} CR-only line endings ({form})"
        number, patient = planter.number(where), planter.patient(where)
        for _ in range(2):
            row = dict(TEMPLATES["stroke"], record_id=written(number, form), cpr=patient,
                       hospital_code=written(number, form))
            lines.append(",".join(row.get(h, "") for h in header))
    path.write_bytes(("\r".join(lines) + "\r").encode("utf-8"))

    # 5. Parquet: rows appended to a copy of the sample's LPR Parquet (text columns) ...
    path = folder / "lpr" / "lpr_2025-06-30.parquet"
    table = pq.read_table(path)
    extra = planter.rows("lpr", path.name, COLUMNS["lpr"])
    appended = pa.Table.from_pylist(
        [{c: r.get(c) for c in table.column_names} for r in extra], schema=table.schema)
    pq.write_table(pa.concat_tables([table, appended]), path)
    data_rows[path.name] = table.num_rows + appended.num_rows

    # ... and a typed stroke Parquet, read last in its registry: 64-bit integers that
    # overflow the 32-bit municipality code and the 16-bit scores, numbers in text columns and
    # a column named like a CPR number.
    path = folder / "stroke" / "stroke_typed_2025-12-31.parquet"
    named = planter.number(f"{path.name} column name")
    template = {"sex": "M", "municipality_code": int(MUNICIPALITY), "hospital_code": HOSPITAL,
                "admission_at": dt.datetime(2025, 6, 10, 8), "diagnosis": "DI63",
                "thrombolysis": "nej", "sss_score": 30, "prestroke_mrs": 1,
                "discharge_at": dt.datetime(2025, 6, 20, 10), "death_date": None}
    cases = [(c, f, None) for c in ("record_id", "hospital_code", "diagnosis") for f in FORMS]
    # (an int64 cannot keep a leading zero: days from the 10th on, one beyond 2**31)
    cases += [(c, "plain", d) for c in ("municipality_code", "sss_score", "prestroke_mrs")
              for d in (15, 31)]
    records = []
    for column, form, day in cases:
        typed = "int64" if column in INTEGER_COLUMNS else "text"
        where = f"{path.name} {column} ({typed}, {form}{', day %d' % day if day else ''})"
        value = planter.number(where, day)
        row = dict(template, record_id=planter.record_id("stroke"), cpr=planter.patient(where))
        row[str(named)] = int(planter.number(f"{path.name} int64 value of the CPR-named column",
                                             day=20))
        row[column] = int(value) if column in INTEGER_COLUMNS else written(value, form)
        records.append(row)
    schema = pa.schema([("record_id", pa.string()), ("cpr", pa.string()), ("sex", pa.string()),
                        ("municipality_code", pa.int64()), ("hospital_code", pa.string()),
                        ("admission_at", pa.timestamp("us")), ("diagnosis", pa.string()),
                        ("thrombolysis", pa.string()), ("sss_score", pa.int64()),
                        ("prestroke_mrs", pa.int64()), ("discharge_at", pa.timestamp("us")),
                        ("death_date", pa.date32()), (str(named), pa.int64())])
    pq.write_table(pa.Table.from_pylist(records, schema=schema), path)
    data_rows[path.name] = len(records)

    collisions = len(set(planter.planted) & sample)
    if collisions:  # never printed: only how many
        raise AssertionError(f"{collisions} planted numbers are also sample numbers")
    return LeakInput(folder=folder, planted=planter.planted, sample=sample, data_rows=data_rows)


# -- the scanner -------------------------------------------------------------------------
# A digit run of 9 or more (a fraction's digits after "N." are not a number of their own).
_RUN = re.compile(r"(?<![0-9]\.)(?<![0-9])[0-9]{9,}")
_SEPARATED = {"hyphen": re.compile(r"(?=([0-9]{6})-([0-9]{4}))"),
              "space": re.compile(r"(?=([0-9]{6})[ \t\u00a0]([0-9]{4}))")}
_ALNUM = re.compile(r"[0-9A-Za-z]")


def find_numbers(text: str, targets, numbers: bool = True) -> Counter:
    """(form, digits) -> count for every target number in `text`: plain (also any 10 digits of
    a longer digit run), hyphenated, spaced, or (``numbers``) one that lost its leading zero:
    a standalone 9-digit run, as an integer column would keep 0508341710. Binary data is
    scanned without that last form (Parquet's prefix compression makes such runs)."""
    hits = Counter()
    for match in _RUN.finditer(text):
        run = match.group()
        if len(run) == 9:
            if not numbers:
                continue
            before = text[match.start() - 1:match.start()]
            after = text[match.end():match.end() + 1]
            if "0" + run in targets and not _ALNUM.match(before) and not _ALNUM.match(after):
                hits["number", "0" + run] += 1
            continue
        for i in range(len(run) - 9):
            if run[i:i + 10] in targets:
                hits["plain", run[i:i + 10]] += 1
    for form, pattern in _SEPARATED.items():
        if form == "hyphen" and "-" not in text:
            continue
        for match in pattern.finditer(text):
            digits = match.group(1) + match.group(2)
            if digits in targets:
                hits[form, digits] += 1
    return hits


@dataclass(frozen=True)
class Leak:
    where: str  # a file, file!member, "database table t.column", a command's stdout/stderr
    line: int | None  # line number in a text file
    form: str
    origin: str  # "sample cpr" or where the number was planted; never the number

    def __str__(self) -> str:
        line = f" line {self.line}" if self.line else ""
        return f"{self.where}{line}: {MASKS[self.form]} ({self.form}) from {self.origin}"


class Scan:
    """Leaks found so far, by location, form and origin, with counts; and what was read."""

    def __init__(self, targets: dict[str, str]):
        self.targets = targets
        self.leaks: Counter = Counter()
        self.found: set[str] = set()  # digits seen (kept to check the scan's own coverage)
        self.read: Counter = Counter()  # kind of thing read -> how many

    def __repr__(self) -> str:  # pytest shows arguments of failing frames: never the targets
        return f"Scan({len(self.targets)} numbers, {sum(self.leaks.values())} hits)"

    def text(self, where: str, text: str, lines: bool = True, binary: bool = False) -> None:
        hits = find_numbers(text, self.targets, numbers=not binary)
        if not hits:
            return
        if lines and not binary:  # name the lines
            per_line = Counter()
            for number, line in enumerate(text.splitlines(), start=1):
                found = find_numbers(line, self.targets)
                per_line.update(found)
                for (form, digits), count in found.items():
                    self._add(where, number, form, digits, count)
            for key, count in (hits - per_line).items():  # a number split over two lines
                self._add(where, None, *key, count)
        else:
            for (form, digits), count in hits.items():
                self._add(where, None, form, digits, count)

    def _add(self, where: str, line: int | None, form: str, digits: str, count: int) -> None:
        self.found.add(digits)
        self.leaks[Leak(masked(where), line, form, self.targets[digits])] += count

    def places(self) -> set[str]:
        return {leak.where for leak in self.leaks}

    def report(self) -> list[str]:
        """One masked line per place and form: count, lines, and where the numbers came from."""
        groups: dict[tuple[str, str], list] = {}
        for leak, count in self.leaks.items():
            groups.setdefault((leak.where, leak.form), []).append((leak, count))
        out = []
        for (where, form), items in sorted(groups.items()):
            lines = sorted({leak.line for leak, _ in items if leak.line})
            shown = ", ".join(map(str, lines[:5])) + (f", +{len(lines) - 5}" if len(lines) > 5
                                                       else "")
            origins = Counter()
            for leak, count in items:
                origins[leak.origin] += count
            named = sorted(o for o in origins if o != "sample cpr")
            text = "; ".join(named[:3] + [f"+{len(named) - 3} more"] * (len(named) > 3)
                             + [f"sample cpr x{origins['sample cpr']}"] * ("sample cpr" in origins))
            label = "" if not lines else f" line {shown}" if len(lines) == 1 else f" lines {shown}"
            out.append(f"{where}{label}: {MASKS[form]} ({form}) "
                       f"x{sum(origins.values())} from {text}")
        return out


def _values_text(values) -> str:
    return "\n".join("" if v is None else v.decode("latin-1") if isinstance(v, bytes) else str(v)
                     for v in values)


def scan_duckdb(scan: Scan, path: Path, label: str) -> None:
    """Every column of every table (and the catalogue: table and column names, view text)."""
    with duckdb.connect(str(path), read_only=True) as con:
        for catalog in ("duckdb_tables()", "duckdb_columns()", "duckdb_views()"):
            scan.text(f"{label} {catalog}", _values_text(
                str(row) for row in con.sql(f"SELECT * FROM {catalog}").fetchall()), lines=False)
        tables = con.sql("SELECT schema_name, table_name FROM duckdb_tables() "
                         "WHERE NOT internal").fetchall()
        for schema, table in tables:
            columns = [r[0] for r in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ?",
                [schema, table]).fetchall()]
            scan.read["duckdb table"] += 1
            for column in columns:
                values = con.sql(f'SELECT CAST("{column}" AS VARCHAR) FROM '
                                 f'"{schema}"."{table}"').fetchall()
                scan.read["duckdb value"] += len(values)
                scan.text(f"{label} table {table}.{column}", _values_text(v for (v,) in values),
                          lines=False)


def scan_sqlite(scan: Scan, path: Path, label: str) -> None:
    """Every column of every table; blobs read as bytes (Prefect keeps JSON in some)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        con.text_factory = bytes
        tables = [t.decode() for (t,) in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()]
        scan.text(f"{label} sqlite_master", _values_text(
            str(r) for r in con.execute("SELECT * FROM sqlite_master").fetchall()), lines=False)
        for table in tables:
            columns = [r[1].decode() if isinstance(r[1], bytes) else r[1]
                       for r in con.execute(f'PRAGMA table_info("{table}")').fetchall()]
            scan.read["sqlite table"] += 1
            scan.read[f"sqlite rows {table}"] += con.execute(
                f'SELECT count(*) FROM "{table}"').fetchone()[0]
            for column in columns:
                values = [v for (v,) in con.execute(f'SELECT "{column}" FROM "{table}"')]
                scan.text(f"{label} table {table}.{column}", _values_text(
                    v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values),
                    lines=False)
    finally:
        con.close()


def scan_parquet(scan: Scan, path: Path, label: str) -> None:
    table = pq.read_table(path)
    scan.read["parquet file"] += 1
    scan.text(f"{label} schema", str(table.schema) + str(table.schema.metadata or ""),
              lines=False)
    for name in table.column_names:
        scan.text(f"{label} column {name}", _values_text(table.column(name).to_pylist()),
                  lines=False)


def scan_xlsx(scan: Scan, path: Path, label: str) -> None:
    with zipfile.ZipFile(path) as book:
        for member in book.namelist():
            scan.read["xlsx member"] += 1
            scan.text(f"{label}!{member}", book.read(member).decode("utf-8", "replace"),
                      lines=False)


SQLITE_MAGIC = b"SQLite format 3\x00"


def scan_tree(scan: Scan, root: Path, label: str) -> None:
    """Every file under `root`: its name, its raw bytes, and its structure where it has one.

    Files with the same bytes (plotly.min.js in every unit folder) are read once."""
    seen: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        where = f"{label}/{path.relative_to(root)}"
        scan.text(f"{label} path name {path.relative_to(root)}", str(path.relative_to(root)),
                  lines=False)
        if not path.is_file():
            continue
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            scan.read["duplicate file"] += 1
            continue
        seen[digest] = where
        scan.read["file"] += 1
        scan.read["bytes"] += len(data)
        suffix = path.suffix.lower()
        textual = suffix in (".csv", ".html", ".htm", ".json", ".md", ".txt", ".log", ".js",
                             ".yaml", ".yml", ".toml", ".xml", ".svg", ".tsv")
        if textual:  # (bytes that are not UTF-8 are never digits, hyphens or spaces)
            scan.text(where, data.decode("utf-8", "replace"))
            continue
        scan.text(f"{where} (raw bytes)", data.decode("latin-1"), lines=False, binary=True)
        try:
            if suffix == ".parquet":
                scan_parquet(scan, path, where)
            elif suffix == ".xlsx":
                scan_xlsx(scan, path, where)
            elif suffix in (".duckdb", ".db") and data.startswith(b"DUCK", 8):
                scan_duckdb(scan, path, where)
            elif data.startswith(SQLITE_MAGIC):
                scan_sqlite(scan, path, where)
        except Exception as problem:  # an unreadable structure is itself worth reporting
            scan.read[f"unreadable {suffix}"] += 1
            scan.text(f"{where} (unreadable: {type(problem).__name__})", "", lines=False)


_ANY_NUMBER = re.compile(r"[0-9]{6}[- \t\u00a0]?[0-9]{4,}|[0-9]{9,}")


def masked(text: str) -> str:
    """Text safe to print in a test failure: every CPR-shaped or long digit run starred."""
    return _ANY_NUMBER.sub(lambda m: re.sub(r"[0-9]", "*", m.group()), text)
