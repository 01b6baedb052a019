"""The data contract's row rules, written out plainly: columns, types, domains, ranges,
CPR validity with the century rule, known codes, date order and the extract date."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # text, cpr, sex, municipality, hospital, datetime, date, int, code, answer, icd
    required: bool = True
    low: int | None = None
    high: int | None = None
    codes: tuple[str, ...] = ()  # allowed values (code) or allowed prefixes (prefix)
    prefix: bool = False


def _answer(name: str) -> Column:
    return Column(name, "answer", required=False)


def _opt(name: str, kind: str, low=None, high=None) -> Column:
    return Column(name, kind, required=False, low=low, high=high)


_PERSON = [Column("record_id", "text"), Column("cpr", "cpr"), Column("sex", "sex"),
           Column("municipality_code", "municipality"), Column("hospital_code", "hospital")]

SOURCES: dict[str, list[Column]] = {
    "stroke": _PERSON + [
        Column("admission_at", "datetime"),
        Column("diagnosis", "code", codes=("DI61", "DI63", "DI64")),
        _opt("stroke_unit_at", "datetime"), _opt("imaging_at", "datetime"),
        _answer("thrombolysis"), _opt("thrombolysis_at", "datetime"),
        _opt("dysphagia_screening_at", "datetime"), _opt("physio_assessment_at", "datetime"),
        _opt("sss_score", "int", 0, 58), _opt("prestroke_mrs", "int", 0, 5),
        _opt("discharge_at", "datetime"), _opt("death_date", "date"),
    ],
    "hipfracture": _PERSON + [
        Column("admission_at", "datetime"),
        Column("diagnosis", "code", codes=("DS720", "DS721", "DS722")),
        _opt("surgery_at", "datetime"), _opt("asa_score", "int", 1, 5),
        _opt("new_mobility_score", "int", 0, 9), _opt("mobilised_at", "datetime"),
        _opt("cas_at_discharge", "int", 0, 6), _answer("rehab_plan"),
        _opt("discharge_at", "datetime"), _opt("reoperation_date", "date"),
        _opt("death_date", "date"),
    ],
    "cardiac_rehab_hospital": _PERSON + [
        Column("diagnosis", "code", prefix=True,
               codes=("DI20", "DI21", "DI22", "DI23", "DI24", "DI25", "DI50")),
        Column("index_date", "date"), _answer("referred"), _opt("referral_date", "date"),
    ],
    "cardiac_rehab_municipal": [
        Column("record_id", "text"), _opt("hospital_record_id", "text"), Column("cpr", "cpr"),
        Column("municipality_code", "municipality"), Column("referral_received_date", "date"),
        _opt("rehab_start_date", "date"), _opt("rehab_end_date", "date"),
        _answer("completed"), _answer("smoker"), _answer("smoking_cessation_offered"),
    ],
    "general_practice_diabetes": [
        Column("record_id", "text"), Column("cpr", "cpr"), Column("sex", "sex"),
        Column("municipality_code", "municipality"), Column("clinic_code", "clinic"),
        Column("review_date", "date"), Column("diabetes_type", "code", codes=("DE10", "DE11")),
        _opt("hba1c_date", "date"), _opt("hba1c", "int", 20, 200),
        _opt("eye_exam_date", "date"), _opt("foot_exam_date", "date"), _answer("statin"),
    ],
    "lpr": [
        Column("cpr", "cpr"), Column("hospital_code", "hospital"),
        Column("municipality_code", "municipality"), Column("admission_at", "datetime"),
        Column("action_diagnosis", "icd"),
    ],
}

# Events that must not precede admission_at ("other events before admission are valid data").
NOT_BEFORE_ADMISSION = {
    "stroke": ("discharge_at", "thrombolysis_at"),
    "hipfracture": ("discharge_at", "surgery_at"),
}

ANSWERS = ("ja", "nej", "uoplyst")
DATETIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?$")
DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
INTEGER = re.compile(r"^[+-]?\d+$")
CPR = re.compile(r"^(\d{2})(\d{2})(\d{2})-?(\d)(\d{3})$")
CPR_SHAPED = re.compile(r"^\d{6}-?\d{4}$")
# An ICD-10 code as Danish registries write it (SKS): D, the chapter letter, two digits, more.
ICD10 = re.compile(r"^D[A-Z]\d{2}[0-9A-Z]*$")


def birth_date(cpr: str) -> dt.date | None:
    """Birth date by the contract's century rule; None if the value is not a valid CPR."""
    m = CPR.match(cpr)
    if not m:
        return None
    day, month, yy, seventh = int(m[1]), int(m[2]), int(m[3]), int(m[4])
    if seventh <= 3:
        year = 1900 + yy
    elif seventh in (4, 9):
        year = 2000 + yy if yy <= 36 else 1900 + yy
    else:  # 5-8
        year = 2000 + yy if yy <= 57 else 1800 + yy
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def age_on(born: dt.date, day: dt.date) -> int:
    """Full years: one more on the birthday; 29 February birthdays count from 1 March."""
    years = day.year - born.year
    if (day.month, day.day) < (born.month, born.day):
        years -= 1
    return years


def parse_datetime(text: str) -> dt.datetime | None:
    m = DATETIME.match(text)
    if not m:
        return None
    try:
        return dt.datetime(*(int(x) for x in m.groups(default="0")))
    except ValueError:
        return None


def date_of(m: re.Match | None) -> dt.date | None:
    """The calendar date of a (year, month, day) match, or None (no match, or no such day)."""
    if not m:
        return None
    try:
        return dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


def parse_date(text: str) -> dt.date | None:
    return date_of(DATE.match(text))


@dataclass(frozen=True, repr=False)
class Person:
    """The patient behind a valid CPR number: the normalised number (the patient key, kept
    in memory only) and the birth date. Its repr never shows either."""

    key: str
    born: dt.date

    def __repr__(self) -> str:
        return "Person(<cpr hidden>)"


@dataclass
class Reference:
    regions: dict[str, str]  # code -> name
    municipalities: dict[int, tuple[str, str]]  # code -> (name, region code)
    hospitals: dict[str, tuple[str, str]]  # code (upper) -> (name, region code)
    # code exactly as written (012345 is not 12345) -> (name, municipality code)
    clinics: dict[str, tuple[str, int]] = None  # type: ignore[assignment]

    def __post_init__(self):
        self.clinics = self.clinics or {}

    def clinic_region(self, code: str) -> str:
        """A clinic's region is the region of the clinic's municipality."""
        return self.municipalities[self.clinics[code][1]][1]


def check_row(source: str, values: dict[str, str | None], extract_date: dt.date,
              ref: Reference) -> tuple[dict, list[str]]:
    """The typed record and the list of rules the row breaks (empty when it loads)."""
    broken: list[str] = []
    record: dict = {}
    for col in SOURCES[source]:
        raw = values.get(col.name)
        text = raw.strip() if raw is not None else ""
        if text == "":
            if col.kind == "answer":
                record[col.name] = "uoplyst"
            else:
                record[col.name] = None
                if col.required:
                    broken.append(f"required:{col.name}")
            continue
        value, rule = _typed(col, text, ref)
        if rule:
            broken.append(f"{rule}:{col.name}")
        record[col.name] = value
    if source != "lpr" and record.get("record_id") and CPR_SHAPED.match(record["record_id"]):
        broken.append("record_id_is_cpr")
    for name, value in record.items():
        day = value.date() if isinstance(value, dt.datetime) else value
        if isinstance(day, dt.date) and day > extract_date:
            broken.append(f"after_extract_date:{name}")
    admitted = record.get("admission_at")
    for name in NOT_BEFORE_ADMISSION.get(source, ()):
        if admitted is not None and record.get(name) is not None and record[name] < admitted:
            broken.append(f"before_admission:{name}")
    return record, broken


def _typed(col: Column, text: str, ref: Reference):
    kind = col.kind
    if kind == "text":
        return text, None
    if kind == "cpr":
        born = birth_date(text)
        if born is None:
            return None, "valid_cpr"
        return Person(text.replace("-", ""), born), None
    if kind == "sex":
        return (text.upper(), None) if text.upper() in ("M", "F") else (None, "domain")
    if kind == "answer":
        return (text.lower(), None) if text.lower() in ANSWERS else (None, "domain")
    if kind == "code":
        code = text.upper()
        ok = code.startswith(col.codes) if col.prefix else code in col.codes
        return (code, None) if ok else (None, "domain")
    if kind == "icd":
        code = text.upper()
        return (code, None) if ICD10.match(code) else (None, "domain")
    if kind == "municipality":
        if not INTEGER.match(text):
            return None, "type_integer"
        code = int(text)
        return (code, None) if code in ref.municipalities else (None, "known_code")
    if kind == "hospital":
        code = text.upper()
        return (code, None) if code in ref.hospitals else (None, "known_code")
    if kind == "clinic":  # text: leading zeros are part of the code
        return (text, None) if text in ref.clinics else (None, "known_code")
    if kind == "int":
        if not INTEGER.match(text):
            return None, "type_integer"
        number = int(text)
        return (number, None) if col.low <= number <= col.high else (None, "range")
    if kind == "datetime":
        value = parse_datetime(text)
        return (value, None) if value is not None else (None, "type_datetime")
    if kind == "date":
        value = parse_date(text)
        return (value, None) if value is not None else (None, "type_date")
    raise AssertionError(kind)
