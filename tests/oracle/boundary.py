"""A contract-shaped input of boundary cases, written by plain Python, with the outcome the
catalogue prescribes for each case written down by hand.

Extracts: E1 2025-12-31, E2 2026-06-30, E3 2026-09-30 (so the cutoff is 2026-09-30), in
several encodings, delimiters, column orders and as Parquet (typed, with zone-aware LPR
timestamps). Hospitals H101 and H102 are kept for the completeness cases.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.oracle.contract import SOURCES

REFERENCE = Path(__file__).resolve().parents[2] / "sample_data" / "reference"

E1, E2, E3 = dt.date(2025, 12, 31), dt.date(2026, 6, 30), dt.date(2026, 9, 30)
CUTOFF = E3
H = dt.timedelta(hours=1)
MIN = dt.timedelta(minutes=1)
SEC = dt.timedelta(seconds=1)
DAY = dt.timedelta(days=1)

OTHER_HOSPITALS = ["H201", "H202", "H203", "H204", "H205", "H301", "H302", "H303", "H304",
                   "H401", "H402", "H403", "H404", "H405", "H406", "H501", "H502", "H503", "H504"]
MUNICIPALITIES = ["101", "147", "751", "461", "851", "253", "630", "157", "330", "561"]


class Patients:
    """Valid CPR numbers for birth dates, the 7th digit chosen by the century rule unless
    given; each call a new serial, so each call a new patient."""

    def __init__(self):
        self.serial = 0

    def cpr(self, born: dt.date, seventh: int | None = None, hyphen: bool = False) -> str:
        self.serial += 1
        if seventh is None:
            if 1900 <= born.year <= 1999:
                seventh = self.serial % 4
            elif 2000 <= born.year <= 2036:
                seventh = 4
            elif 1858 <= born.year <= 1899:
                seventh = 5 + self.serial % 4
            else:
                raise ValueError(born)
        text = f"{born:%d%m}{born.year % 100:02d}{seventh}{self.serial % 1000:03d}"
        return f"{text[:6]}-{text[6:]}" if hyphen else text


def raw_cpr(ddmmyy: str, seventh: int, serial: int) -> str:
    return f"{ddmmyy}{seventh}{serial % 1000:03d}"


def born_aged(years: int, on: dt.date, days_after: int = 0) -> dt.date:
    """Birthday exactly ``years`` before ``on`` (plus ``days_after``)."""
    return dt.date(on.year - years, on.month, on.day) + dt.timedelta(days=days_after)


def fmt(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M" if value.second == 0 else "%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


@dataclass
class FileFormat:
    kind: str = "csv"  # csv or parquet
    delimiter: str = ";"
    encoding: str = "utf-8"
    bom: bool = False
    newline: str = "\n"
    extra: str | None = None  # an extra column, with Danish letters in its values
    reverse: bool = False  # columns in another order
    drop: tuple[str, ...] = ()  # columns left out of the header
    typed: bool = False  # parquet with native types
    zone: str | None = None  # parquet datetimes written zone-aware in this zone


@dataclass(repr=False)
class Builder:
    root: Path
    patients: Patients = field(default_factory=Patients)
    rows: dict = field(default_factory=dict)  # (source, extract) -> list of dict or raw text
    formats: dict = field(default_factory=dict)
    expect: dict = field(default_factory=dict)  # (indicator, record_id) -> outcome
    current: dict = field(default_factory=dict)  # (source, record_id) -> column, value or None
    cells: dict = field(default_factory=dict)  # (indicator, period, level, unit) -> (num, den)
    rules: dict = field(default_factory=dict)  # (source, record_id) -> the rules it breaks
    counter: int = 0

    def __repr__(self) -> str:  # rows hold CPR numbers: never show them
        return f"Builder({self.root}, {sum(len(r) for r in self.rows.values())} rows)"

    def add(self, source: str, extract: dt.date, row: dict | str) -> None:
        self.rows.setdefault((source, extract), []).append(row)

    def unit(self) -> tuple[str, str]:
        self.counter += 1
        return (OTHER_HOSPITALS[self.counter % len(OTHER_HOSPITALS)],
                MUNICIPALITIES[self.counter % len(MUNICIPALITIES)])

    # -- writing ---------------------------------------------------------------------------
    def write(self) -> Path:
        (self.root / "reference").mkdir(parents=True, exist_ok=True)
        for name in ("regions", "municipalities", "hospitals", "clinics"):
            shutil.copy(REFERENCE / f"{name}.csv", self.root / "reference" / f"{name}.csv")
        for (source, extract), rows in self.rows.items():
            form = self.formats.get((source, extract), FileFormat())
            folder = self.root / source
            folder.mkdir(exist_ok=True)
            columns = [c.name for c in SOURCES[source] if c.name not in form.drop]
            if form.reverse:
                columns.reverse()
            path = folder / f"{source}_{extract.isoformat()}.{form.kind}"
            if form.kind == "parquet":
                _write_parquet(path, source, columns, rows, form)
            else:
                _write_csv(path, columns, rows, form)
        return self.root


def _write_csv(path: Path, columns: list[str], rows: list, form: FileFormat) -> None:
    header = columns + ([form.extra] if form.extra else [])
    out = io.StringIO()
    writer = csv.writer(out, delimiter=form.delimiter, lineterminator=form.newline)
    writer.writerow(header)
    for i, row in enumerate(rows):
        if isinstance(row, str):  # a raw line, written as it is
            out.write(row + form.newline)
            continue
        values = [fmt(row.get(c)) or "" for c in columns]
        if form.extra:
            values.append(f"bemærkning {i}, på dansk: æøå")
        writer.writerow(values)
    data = out.getvalue().encode(form.encoding)
    path.write_bytes((b"\xef\xbb\xbf" if form.bom else b"") + data)


def _write_parquet(path: Path, source: str, columns: list[str], rows: list,
                   form: FileFormat) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    kinds = {c.name: c.kind for c in SOURCES[source]}
    arrays = {}
    for name in columns:
        values = [row.get(name) for row in rows]
        kind = kinds[name]
        if form.typed and kind == "datetime":
            if form.zone:
                zone = ZoneInfo(form.zone)
                values = [None if v is None else v.replace(tzinfo=zone) for v in values]
                arrays[name] = pa.array(values, pa.timestamp("us", tz=form.zone))
            else:
                arrays[name] = pa.array(values, pa.timestamp("us"))
        elif form.typed and kind == "date":
            arrays[name] = pa.array(values, pa.date32())
        elif form.typed and kind in ("int", "municipality"):
            arrays[name] = pa.array([None if v is None else int(v) for v in values], pa.int64())
        else:
            arrays[name] = pa.array([fmt(v) for v in values], pa.string())
    pq.write_table(pa.table(arrays), path)


# -- the cases ------------------------------------------------------------------------------

def stroke(b: Builder, rid: str, admitted: dt.datetime, born=dt.date(1950, 5, 17),
           cpr: str | None = None, extract=E2, **changes) -> dict:
    hospital, municipality = b.unit()
    row = {"record_id": rid, "cpr": cpr or b.patients.cpr(born), "sex": "M",
           "municipality_code": municipality, "hospital_code": hospital,
           "admission_at": admitted, "diagnosis": "DI63", "stroke_unit_at": admitted + H,
           "imaging_at": admitted + 30 * MIN, "thrombolysis": "nej",
           "dysphagia_screening_at": admitted + 2 * H, "physio_assessment_at": admitted + 20 * H,
           "sss_score": 40, "prestroke_mrs": 1, "discharge_at": admitted + 5 * DAY}
    row.update(changes)
    b.add("stroke", extract, row)
    return row


def hip(b: Builder, rid: str, admitted: dt.datetime, born=dt.date(1940, 2, 3),
        cpr: str | None = None, extract=E2, **changes) -> dict:
    hospital, municipality = b.unit()
    surgery = admitted + 12 * H
    row = {"record_id": rid, "cpr": cpr or b.patients.cpr(born), "sex": "F",
           "municipality_code": municipality, "hospital_code": hospital,
           "admission_at": admitted, "diagnosis": "DS721", "surgery_at": surgery,
           "asa_score": 2, "new_mobility_score": 7, "mobilised_at": surgery + 10 * H,
           "cas_at_discharge": 4, "rehab_plan": "ja", "discharge_at": admitted + 8 * DAY}
    row.update(changes)
    b.add("hipfracture", extract, row)
    return row


def course(b: Builder, rid: str, index: dt.date, born=dt.date(1960, 1, 1), extract=E2,
           **changes) -> dict:
    hospital, municipality = b.unit()
    row = {"record_id": rid, "cpr": b.patients.cpr(born), "sex": "M",
           "municipality_code": municipality, "hospital_code": hospital, "diagnosis": "DI21",
           "index_date": index, "referred": "ja", "referral_date": index + DAY}
    row.update(changes)
    b.add("cardiac_rehab_hospital", extract, row)
    return row


def referral(b: Builder, rid: str, received: dt.date, extract=E2, **changes) -> dict:
    _, municipality = b.unit()
    row = {"record_id": rid, "hospital_record_id": None,
           "cpr": b.patients.cpr(dt.date(1960, 1, 1)), "municipality_code": municipality,
           "referral_received_date": received, "rehab_start_date": received + 10 * DAY,
           "rehab_end_date": received + 70 * DAY, "completed": "ja", "smoker": "nej",
           "smoking_cessation_offered": "nej"}
    row.update(changes)
    b.add("cardiac_rehab_municipal", extract, row)
    return row


def lpr(b: Builder, extract, cpr: str, hospital: str, at: dt.datetime, code="DI63") -> None:
    b.add("lpr", extract, {"cpr": cpr, "hospital_code": hospital, "municipality_code": "101",
                           "admission_at": at, "action_diagnosis": code})


def stroke_cases(b: Builder) -> None:
    e = b.expect
    t = dt.datetime(2026, 3, 10, 10, 0)
    # Age on the admission date, and the century rule.
    stroke(b, "S_AGE18", t, born=born_aged(18, t.date()))
    e["STROKE_01", "S_AGE18"] = (True, False)
    stroke(b, "S_AGE17", t, born=born_aged(18, t.date(), 1))
    e["STROKE_01", "S_AGE17"] = None
    stroke(b, "S_LEAP17", dt.datetime(2026, 2, 28, 10), born=dt.date(2008, 2, 29))
    e["STROKE_01", "S_LEAP17"] = None
    stroke(b, "S_LEAP18", dt.datetime(2026, 3, 1, 10), born=dt.date(2008, 2, 29))
    e["STROKE_01", "S_LEAP18"] = (True, False)
    stroke(b, "S_1908", t, cpr=raw_cpr("150608", 0, 901))  # 7th digit 0: 1908
    e["STROKE_01", "S_1908"] = (True, False)
    stroke(b, "S_2008", t, cpr=raw_cpr("150608", 4, 902))  # 7th digit 4, yy 08: 2008 (17)
    e["STROKE_01", "S_2008"] = None
    stroke(b, "S_1937", t, cpr=raw_cpr("150637", 9, 903))  # 9, yy 37: 1937
    e["STROKE_01", "S_1937"] = (True, False)
    stroke(b, "S_2036", t, cpr=raw_cpr("150636", 9, 904))  # 9, yy 36: 2036 (not born yet)
    e["STROKE_01", "S_2036"] = None
    stroke(b, "S_2000LEAP", t, cpr=raw_cpr("290200", 4, 905))  # 29 Feb 2000 is a real date
    e["STROKE_01", "S_2000LEAP"] = (True, False)
    stroke(b, "S_HYPHEN", t, cpr=b.patients.cpr(dt.date(1944, 4, 4), hyphen=True))
    e["STROKE_01", "S_HYPHEN"] = (True, False)

    # STROKE_01 / STROKE_05: 24 hours, exactly.
    for rid, su, want in (("S_SU_EQ", t, (True, False)), ("S_SU_24H", t + 24 * H, (True, False)),
                          ("S_SU_24H30S", t + 24 * H + 30 * SEC, (False, False)),
                          ("S_SU_24H1M", t + 24 * H + MIN, (False, False)),
                          ("S_SU_BEFORE", t - MIN, (False, False)),
                          ("S_SU_NONE", None, (False, True))):
        stroke(b, rid, t, stroke_unit_at=su)
        e["STROKE_01", rid] = want
    stroke(b, "S_SU_T", t, stroke_unit_at=(t + 24 * H).strftime("%Y-%m-%dT%H:%M:%S"))
    e["STROKE_01", "S_SU_T"] = (True, False)
    for rid, at, want in (("S_DYS_24", t + 24 * H, (True, False)),
                          ("S_DYS_24_30", t + 24 * H + 30 * SEC, (False, False)),
                          ("S_DYS_NONE", None, (False, True))):
        stroke(b, rid, t, dysphagia_screening_at=at)
        e["STROKE_05", rid] = want

    # STROKE_02 / 03 / 07: thrombolysis, door-to-needle minutes.
    for rid, answer, at, w2, w3, minutes in (
            ("S_TL_60", "ja", t + 60 * MIN, (True, False), (True, False), 60.0),
            ("S_TL_60_1S", "ja", t + 60 * MIN + SEC, (True, False), (False, False), 60 + 1 / 60),
            ("S_TL_59_30", " JA ", t + 59 * MIN + 30 * SEC, (True, False), (True, False), 59.5),
            ("S_TL_0", "Ja", t, (True, False), (True, False), 0.0),
            ("S_TL_NONE", "ja", None, (True, False), (False, True), None),
            ("S_TL_UOPLYST", "", None, (False, True), None, None),
            ("S_TL_UOPLYST2", "UOPLYST", None, (False, True), None, None),
            ("S_TL_NEJ", "nej", None, (False, False), None, None)):
        stroke(b, rid, t, thrombolysis=answer, thrombolysis_at=at)
        e["STROKE_02", rid], e["STROKE_03", rid], e["STROKE_07", rid] = w2, w3, minutes
    stroke(b, "S_DI61_JA", t, diagnosis="DI61", thrombolysis="ja", thrombolysis_at=t + 10 * MIN)
    e["STROKE_02", "S_DI61_JA"] = e["STROKE_03", "S_DI61_JA"] = None
    e["STROKE_01", "S_DI61_JA"] = (True, False)
    stroke(b, "S_DI64_LOWER", t, diagnosis="di64")
    e["STROKE_01", "S_DI64_LOWER"] = (True, False)

    # STROKE_04: exclusions and the 48-hour window.
    for rid, changes, want in (
            ("S_DIS_48", {"discharge_at": t + 48 * H}, None),
            ("S_DIS_48_30", {"discharge_at": t + 48 * H + 30 * SEC,
                             "physio_assessment_at": t + 48 * H}, (True, False)),
            ("S_DEATH_2", {"death_date": t.date() + 2 * DAY}, None),
            ("S_DEATH_3", {"death_date": t.date() + 3 * DAY,
                           "physio_assessment_at": t + 48 * H + 30 * SEC}, (False, False)),
            ("S_DEATH_BEFORE", {"death_date": t.date() - DAY}, None),
            ("S_PHYS_NONE", {"discharge_at": None, "physio_assessment_at": None}, (False, True)),
            ("S_PHYS_BEFORE", {"physio_assessment_at": t - H}, (False, False))):
        stroke(b, rid, t, **changes)
        e["STROKE_04", rid] = want
    e["STROKE_06", "S_DEATH_BEFORE"] = (False, False)  # a death before admission: not within

    # STROKE_06: 30 days on dates; follow-up against the cutoff.
    a = dt.datetime(2026, 8, 1, 23, 50)
    stroke(b, "S_D30", a, extract=E3, death_date=a.date() + 30 * DAY)
    e["STROKE_06", "S_D30"] = (True, False)
    stroke(b, "S_D31", a, extract=E3, death_date=a.date() + 31 * DAY)
    e["STROKE_06", "S_D31"] = (False, False)
    stroke(b, "S_FU_IN", dt.datetime(2026, 8, 31, 23, 59), extract=E3, death_date=CUTOFF,
           discharge_at=None)
    e["STROKE_06", "S_FU_IN"] = (True, False)
    stroke(b, "S_FU_OUT", dt.datetime(2026, 9, 1, 0, 0), extract=E3, discharge_at=None)
    e["STROKE_06", "S_FU_OUT"] = None
    e["STROKE_01", "S_FU_OUT"] = (True, False)

    # Corrections, duplicates and bad rows.
    t1 = dt.datetime(2025, 11, 10, 8, 0)
    first = stroke(b, "S_CORR", t1, extract=E1, stroke_unit_at=t1 + 25 * H)
    b.add("stroke", E2, {**first, "stroke_unit_at": t1 + H})
    e["STROKE_01", "S_CORR"] = (True, False)
    first = stroke(b, "S_CORR_BAD", t1, extract=E1, stroke_unit_at=t1 + H)
    b.add("stroke", E2, {**first, "stroke_unit_at": t1 + 30 * H, "discharge_at": t1 - H})
    e["STROKE_01", "S_CORR_BAD"] = (True, False)
    first = stroke(b, "S_MOVED", t1, extract=E1)
    b.add("stroke", E3, {**first, "admission_at": t1 + 40 * DAY,
                         "stroke_unit_at": t1 + 40 * DAY + 30 * H,
                         "dysphagia_screening_at": None, "imaging_at": None,
                         "physio_assessment_at": None, "discharge_at": None})
    b.current["stroke", "S_MOVED"] = ("admission_at", t1 + 40 * DAY)
    e["STROKE_01", "S_MOVED"] = (False, False)
    dup = stroke(b, "S_DUP", t, stroke_unit_at=t + H)
    b.add("stroke", E2, {**dup, "stroke_unit_at": t + 30 * H})
    e["STROKE_01", "S_DUP"] = (True, False)
    t0 = dt.datetime(2025, 10, 10, 10, 0)
    old = stroke(b, "S_DUP_FIRST_BAD", t0, extract=E1, stroke_unit_at=t0 + 30 * H)
    b.add("stroke", E2, {**old, "sex": "X", "stroke_unit_at": t0 + H})
    b.add("stroke", E2, {**old, "stroke_unit_at": t0 + H})
    e["STROKE_01", "S_DUP_FIRST_BAD"] = (False, False)
    # A value on the extract date loads; the day after does not.
    stroke(b, "S_ON_EXTRACT", dt.datetime(2026, 6, 29, 10), stroke_unit_at=None,
           discharge_at=dt.datetime(2026, 6, 30, 23, 59), death_date=dt.date(2026, 6, 30))
    e["STROKE_01", "S_ON_EXTRACT"] = (False, True)

    bad = {  # id: (changes, the one rule the row breaks)
        "S_BAD_SEX": ({"sex": "X"}, "domain:sex"),
        "S_BAD_SEX_EMPTY": ({"sex": ""}, "required:sex"),
        "S_BAD_MUNI": ({"municipality_code": "9999"}, "known_code:municipality_code"),
        "S_BAD_MUNI_TEXT": ({"municipality_code": "abc"}, "type_integer:municipality_code"),
        "S_BAD_HOSP": ({"hospital_code": "H999"}, "known_code:hospital_code"),
        "S_BAD_ADM_DATE": ({"admission_at": "2026-03-10"}, "type_datetime:admission_at"),
        "S_BAD_ADM_24": ({"admission_at": "2026-03-10 24:00"}, "type_datetime:admission_at"),
        "S_BAD_DIAG": ({"diagnosis": "DI62"}, "domain:diagnosis"),
        "S_BAD_SSS": ({"sss_score": 59}, "range:sss_score"),
        "S_BAD_MRS": ({"prestroke_mrs": 6}, "range:prestroke_mrs"),
        "S_BAD_SSS_TEXT": ({"sss_score": "4.5"}, "type_integer:sss_score"),
        "S_BAD_DEATH_AFTER": ({"death_date": E2 + DAY}, "after_extract_date:death_date"),
        "S_BAD_SU_AFTER": ({"stroke_unit_at": dt.datetime(2026, 7, 1, 0, 0)},
                           "after_extract_date:stroke_unit_at"),
        "S_BAD_CPR_31FEB": ({"cpr": raw_cpr("310250", 1, 906)}, "valid_cpr:cpr"),
        "S_BAD_CPR_1900LEAP": ({"cpr": raw_cpr("290200", 0, 907)}, "valid_cpr:cpr"),
        "S_BAD_CPR_SHORT": ({"cpr": "12345"}, "valid_cpr:cpr"),
        "S_BAD_THROMB": ({"thrombolysis": "måske"}, "domain:thrombolysis"),
        "S_BAD_DISCHARGE": ({"discharge_at": t - MIN}, "before_admission:discharge_at"),
        "S_BAD_NEEDLE": ({"thrombolysis": "ja", "thrombolysis_at": t - MIN},
                         "before_admission:thrombolysis_at"),
        "S_BAD_RID_EMPTY": ({"record_id": ""}, "required:record_id"),
    }
    for rid, (changes, rule) in bad.items():
        stroke(b, rid, t, **changes)
        b.current["stroke", rid] = None
        b.rules["stroke", "" if rid == "S_BAD_RID_EMPTY" else rid] = [[rule]]
    stroke(b, "0101011234", t)  # a record_id shaped like a CPR number
    b.current["stroke", "0101011234"] = None
    b.rules["stroke", "0101011234"] = [["record_id_is_cpr"]]
    stroke(b, "S_NEW_BAD", t, extract=E3, sex="")  # never loaded in a valid version
    b.current["stroke", "S_NEW_BAD"] = None
    # Lines the CSV reader cannot split (E2 is a ',' file).
    b.add("stroke", E2, "S_FIELDS,too,few")
    b.add("stroke", E2, 'S_QUOTE,"' + raw_cpr("010150", 1, 908)
          + ",M,101,H401,2026-03-10 10:00,DI63,,,nej,,,,,,,")
    b.current["stroke", "S_FIELDS"] = b.current["stroke", "S_QUOTE"] = None
    b.rules["stroke", None] = [["unparseable_row"], ["unparseable_row"]]
    b.rules["stroke", "S_DUP"] = [["duplicate_record_id"]]
    b.rules["stroke", "S_DUP_FIRST_BAD"] = [["domain:sex"], ["duplicate_record_id"]]
    b.rules["stroke", "S_CORR_BAD"] = [["before_admission:discharge_at"]]
    b.rules["stroke", "S_NEW_BAD"] = [["required:sex"]]
    stroke(b, "S_AFTER_QUOTE", t)  # the line after a broken one still loads
    e["STROKE_01", "S_AFTER_QUOTE"] = (True, False)


def hip_cases(b: Builder) -> None:
    e = b.expect
    t = dt.datetime(2026, 4, 10, 9, 0)
    s = t + 12 * H  # default surgery
    hip(b, "H_AGE65", t, born=born_aged(65, t.date()))
    e["HIP_01", "H_AGE65"] = (True, False)
    hip(b, "H_AGE64", t, born=born_aged(65, t.date(), 1))
    e["HIP_01", "H_AGE64"] = None
    hip(b, "H_LEAP64", dt.datetime(2025, 2, 28, 9), born=dt.date(1960, 2, 29), extract=E1)
    e["HIP_01", "H_LEAP64"] = None
    hip(b, "H_LEAP65", dt.datetime(2025, 3, 1, 9), born=dt.date(1960, 2, 29), extract=E1)
    e["HIP_01", "H_LEAP65"] = (True, False)
    hip(b, "H_BORN_LEAPDAY", dt.datetime(2024, 2, 29, 9), born=dt.date(1959, 2, 28), extract=E1)
    e["HIP_01", "H_BORN_LEAPDAY"] = (True, False)
    for rid, cpr, want in (("H_1858", raw_cpr("010158", 5, 911), (True, False)),
                           ("H_2057", raw_cpr("010157", 5, 912), None),
                           ("H_1937_4", raw_cpr("010137", 4, 913), (True, False)),
                           ("H_2036_4", raw_cpr("010136", 4, 914), None),
                           ("H_1899_8", raw_cpr("311299", 8, 915), (True, False))):
        hip(b, rid, t, cpr=cpr)
        e["HIP_01", rid] = want

    # HIP_01 / HIP_02: 24 hours.
    for rid, changes, w1, w2 in (
            ("H_SUR_24", {"surgery_at": t + 24 * H, "mobilised_at": t + 48 * H},
             (True, False), (True, False)),
            ("H_SUR_24_30", {"surgery_at": t + 24 * H + 30 * SEC,
                             "mobilised_at": t + 48 * H + 60 * SEC},
             (False, False), (False, False)),
            ("H_SUR_NONE", {"surgery_at": None, "mobilised_at": None}, None, None),
            ("H_MOB_NONE", {"mobilised_at": None}, (True, False), (False, True)),
            ("H_MOB_BEFORE", {"mobilised_at": s - MIN}, (True, False), (False, False)),
            ("H_DEATH_S1", {"death_date": s.date() + DAY, "discharge_at": None},
             (True, False), None),
            ("H_DEATH_S2", {"death_date": s.date() + 2 * DAY, "discharge_at": None},
             (True, False), (True, False))):
        hip(b, rid, t, **changes)
        e["HIP_01", rid], e["HIP_02", rid] = w1, w2

    # HIP_03 / HIP_04: discharged alive.
    d = t + 8 * DAY
    for rid, changes, w3, w4 in (
            ("H_DIS_DEAD_SAME", {"death_date": d.date()}, None, None),
            ("H_DIS_DEAD_NEXT", {"death_date": d.date() + DAY}, (True, False), (True, False)),
            ("H_DIS_DEAD_BEFORE", {"death_date": d.date() - 3 * DAY}, None, None),
            ("H_NO_DIS", {"discharge_at": None}, None, None),
            ("H_CAS_NONE", {"cas_at_discharge": None, "rehab_plan": ""},
             (False, True), (False, True)),
            ("H_CAS_0", {"cas_at_discharge": 0, "rehab_plan": " Nej "},
             (True, False), (False, False)),
            ("H_PLAN_JA", {"rehab_plan": "JA"}, (True, False), (True, False))):
        hip(b, rid, t, **changes)
        e["HIP_03", rid], e["HIP_04", rid] = w3, w4

    # HIP_05: 30 days on dates, follow-up; HIP_06: 730 days from the surgery date.
    a = dt.datetime(2026, 8, 1, 22, 0)
    hip(b, "H_D30", a, extract=E3, death_date=a.date() + 30 * DAY, discharge_at=None)
    e["HIP_05", "H_D30"] = (True, False)
    hip(b, "H_D31", a, extract=E3, death_date=a.date() + 31 * DAY, discharge_at=None)
    e["HIP_05", "H_D31"] = (False, False)
    hip(b, "H_FU_IN", dt.datetime(2026, 8, 31, 23, 0), extract=E3, discharge_at=None,
        mobilised_at=None)
    e["HIP_05", "H_FU_IN"] = (False, False)
    hip(b, "H_FU_OUT", dt.datetime(2026, 9, 1, 1, 0), extract=E3, discharge_at=None,
        mobilised_at=None)
    e["HIP_05", "H_FU_OUT"] = None
    surgery = dt.datetime(2024, 9, 30, 20, 0)  # + 730 days = the cutoff
    hip(b, "H_RE_730", surgery - 10 * H, extract=E3, surgery_at=surgery,
        reoperation_date=surgery.date() + 730 * DAY)
    e["HIP_06", "H_RE_730"] = (True, False)
    hip(b, "H_RE_731", surgery - 34 * H, extract=E3, surgery_at=surgery - DAY,
        reoperation_date=surgery.date() + 730 * DAY)
    e["HIP_06", "H_RE_731"] = (False, False)
    hip(b, "H_RE_NOFU", surgery - 10 * H, extract=E3, surgery_at=surgery + 5 * H,
        reoperation_date=surgery.date() + DAY)  # surgery on 1 Oct: 730 days not yet passed
    e["HIP_06", "H_RE_NOFU"] = None
    e["HIP_01", "H_RE_NOFU"] = (True, False)

    # Corrections and bad rows (E1 is the cp1252 file).
    t1 = dt.datetime(2025, 9, 1, 9, 0)
    first = hip(b, "H_CORR", t1, extract=E1, surgery_at=t1 + 30 * H, mobilised_at=t1 + 40 * H)
    b.add("hipfracture", E3, {**first, "surgery_at": t1 + 20 * H})
    e["HIP_01", "H_CORR"] = (True, False)
    first = hip(b, "H_CORR_BAD", t1, extract=E1)
    b.add("hipfracture", E3, {**first, "surgery_at": t1 - H})
    e["HIP_01", "H_CORR_BAD"] = (True, False)
    dup = hip(b, "H_DUP", t1, extract=E1, surgery_at=t1 + 30 * H, mobilised_at=t1 + 40 * H)
    b.add("hipfracture", E1, {**dup, "surgery_at": t1 + H})
    e["HIP_01", "H_DUP"] = (False, False)
    b.rules["hipfracture", "H_DUP"] = [["duplicate_record_id"]]
    b.rules["hipfracture", "H_CORR_BAD"] = [["before_admission:surgery_at"]]
    for rid, (changes, rule) in {
            "H_BAD_DIAG": ({"diagnosis": "DS723"}, "domain:diagnosis"),
            "H_BAD_ASA": ({"asa_score": 0}, "range:asa_score"),
            "H_BAD_NMS": ({"new_mobility_score": 10}, "range:new_mobility_score"),
            "H_BAD_CAS": ({"cas_at_discharge": 7}, "range:cas_at_discharge"),
            "H_BAD_PLAN": ({"rehab_plan": "nok"}, "domain:rehab_plan"),
            "H_BAD_REOP_DT": ({"reoperation_date": "2025-10-01 10:00"},
                              "type_date:reoperation_date"),
            "H_BAD_SURGERY": ({"surgery_at": t1 - MIN}, "before_admission:surgery_at"),
            "H_BAD_ADM_MISSING": ({"admission_at": None}, "required:admission_at")}.items():
        hip(b, rid, t1, extract=E1, **changes)
        b.current["hipfracture", rid] = None
        b.rules["hipfracture", rid] = [[rule]]


def cardiac_cases(b: Builder) -> None:
    e = b.expect
    i = dt.date(2026, 4, 15)
    for rid, changes, want in (
            ("C_DI214", {"diagnosis": "DI214"}, (True, False)),
            ("C_DI50", {"diagnosis": "DI50"}, (True, False)),
            ("C_LOWER", {"diagnosis": "di25"}, (True, False)),
            ("C_NEJ", {"referred": "nej"}, (False, False)),
            ("C_EMPTY", {"referred": ""}, (False, True)),
            ("C_UOPLYST", {"referred": "Uoplyst"}, (False, True)),
            ("C_AGE18", {"cpr": b.patients.cpr(born_aged(18, i))}, (True, False)),
            ("C_AGE17", {"cpr": b.patients.cpr(born_aged(18, i, 1))}, None)):
        course(b, rid, i, **changes)
        e["DHRD_01", rid] = want
    for rid, (changes, rule) in {
            "C_BAD_DIAG": ({"diagnosis": "DI19"}, "domain:diagnosis"),
            "C_BAD_INDEX": ({"index_date": "2026-04-31", "referral_date": None},
                            "type_date:index_date"),
            "C_BAD_REFDATE": ({"referral_date": E2 + DAY}, "after_extract_date:referral_date"),
            "C_BAD_SEX": ({"sex": "K"}, "domain:sex")}.items():
        course(b, rid, i, **changes)
        b.current["cardiac_rehab_hospital", rid] = None
        b.rules["cardiac_rehab_hospital", rid] = [[rule]]
    # No order rule for rehabilitation dates: a referral before discharge loads.
    course(b, "C_REF_BEFORE", i, referral_date=i - 5 * DAY)
    e["DHRD_01", "C_REF_BEFORE"] = (True, False)

    # DHRD_05: each course once, however many referrals; 60 days on dates; follow-up.
    k = dt.date(2026, 5, 1)
    links = {
        "C_L2": ([60, 10], (True, False)), "C_L1": ([61, None], (False, False)),
        "C_L3": ([61, 60], (True, False)), "C_L0": ([], (False, False)),
        "C_LBEFORE": ([-1], (False, False)), "C_L_TWICE_IN": ([0, 30], (True, False)),
    }
    for rid, (starts, want) in links.items():
        course(b, rid, k)
        e["DHRD_05", rid] = want
        for n, start in enumerate(starts):
            referral(b, f"M_{rid}_{n}", k + 2 * DAY, hospital_record_id=rid, rehab_end_date=None,
                     rehab_start_date=None if start is None else k + start * DAY,
                     extract=E3 if start is not None and start > 50 else E2)
    course(b, "C_L_NEJ", k, referred="nej")
    referral(b, "M_C_L_NEJ", k + DAY, hospital_record_id="C_L_NEJ", rehab_start_date=k + DAY,
             rehab_end_date=None)
    e["DHRD_05", "C_L_NEJ"] = None
    # A linked referral from another year still counts; a quarantined one does not.
    course(b, "C_L_OTHERYEAR", dt.date(2025, 12, 20), extract=E1)
    referral(b, "M_C_L_OTHERYEAR", dt.date(2026, 1, 5), hospital_record_id="C_L_OTHERYEAR",
             rehab_start_date=dt.date(2026, 2, 18))
    e["DHRD_05", "C_L_OTHERYEAR"] = (True, False)
    course(b, "C_L_BADLINK", k)
    referral(b, "M_C_L_BADLINK", k + DAY, hospital_record_id="C_L_BADLINK",
             rehab_start_date=k + 5 * DAY, rehab_end_date=None, municipality_code="9999")
    b.current["cardiac_rehab_municipal", "M_C_L_BADLINK"] = None
    e["DHRD_05", "C_L_BADLINK"] = (False, False)
    f = CUTOFF - 60 * DAY
    course(b, "C_FU_IN", f, extract=E3)
    referral(b, "M_C_FU_IN", f + DAY, hospital_record_id="C_FU_IN", extract=E3,
             rehab_start_date=f + 4 * DAY, rehab_end_date=None)
    e["DHRD_05", "C_FU_IN"] = (True, False)
    course(b, "C_FU_OUT", f + DAY, extract=E3)
    e["DHRD_05", "C_FU_OUT"] = None
    e["DHRD_01", "C_FU_OUT"] = (True, False)


def municipal_cases(b: Builder) -> None:
    e = b.expect
    r = dt.date(2026, 4, 1)
    for rid, changes, w2, w3, w4 in (
            ("M_START_30", {"rehab_start_date": r + 30 * DAY}, (True, False), (True, False),
             None),
            ("M_START_31", {"rehab_start_date": r + 31 * DAY, "smoker": "JA",
                            "smoking_cessation_offered": "ja"}, (False, False), (True, False),
             (True, False)),
            ("M_START_NONE", {"rehab_start_date": None, "smoker": "ja"}, (False, True), None,
             None),
            ("M_START_BEFORE", {"rehab_start_date": r - DAY, "completed": ""},
             (False, False), (False, True), None),
            ("M_END_NONE", {"rehab_end_date": None, "smoker": "ja",
                            "smoking_cessation_offered": ""}, (True, False), None,
             (False, True)),
            ("M_END_BEFORE_START", {"rehab_end_date": r, "rehab_start_date": r + 5 * DAY,
                                    "completed": "nej", "smoker": "ja",
                                    "smoking_cessation_offered": "nej"},
             (True, False), (False, False), (False, False))):
        referral(b, rid, r, **changes)
        e["DHRD_02", rid], e["DHRD_03", rid], e["DHRD_04", rid] = w2, w3, w4
    f = CUTOFF - 30 * DAY
    referral(b, "M_FU_IN", f, extract=E3, rehab_start_date=f + 30 * DAY, rehab_end_date=None)
    e["DHRD_02", "M_FU_IN"] = (True, False)
    referral(b, "M_FU_OUT", f + DAY, extract=E3, rehab_start_date=None, rehab_end_date=None)
    e["DHRD_02", "M_FU_OUT"] = None
    r1 = dt.date(2025, 11, 3)
    first = referral(b, "M_CORR", r1, extract=E1, rehab_start_date=None, rehab_end_date=None)
    b.add("cardiac_rehab_municipal", E2, {**first, "rehab_start_date": r1 + 3 * DAY})
    e["DHRD_02", "M_CORR"] = (True, False)
    for rid, (changes, rule) in {
            "M_BAD_RECEIVED": ({"referral_received_date": None}, "required:referral_received_date"),
            "M_BAD_END_AFTER": ({"rehab_end_date": E2 + DAY}, "after_extract_date:rehab_end_date"),
            "M_BAD_SMOKER": ({"smoker": "sometimes"}, "domain:smoker"),
            "M_BAD_CPR": ({"cpr": "0000000000"}, "valid_cpr:cpr")}.items():
        referral(b, rid, r, **changes)
        b.current["cardiac_rehab_municipal", rid] = None
        b.rules["cardiac_rehab_municipal", rid] = [[rule]]


CLINIC = "009533"  # Lægerne i Silkeborg: municipality 740, Region Midtjylland (1082)


def review(b: Builder, rid: str, reviewed: dt.date, born=dt.date(1955, 8, 20), extract=E2,
           **changes) -> dict:
    """An annual diabetes review at CLINIC of a patient living in Copenhagen (101, Region
    Hovedstaden): the region must follow the clinic, not the residence."""
    row = {"record_id": rid, "cpr": b.patients.cpr(born), "sex": "F",
           "municipality_code": "101", "clinic_code": CLINIC, "review_date": reviewed,
           "diabetes_type": "DE11", "hba1c_date": reviewed - 30 * DAY, "hba1c": 50,
           "eye_exam_date": reviewed - 100 * DAY, "foot_exam_date": reviewed - 30 * DAY,
           "statin": "ja"}
    row.update(changes)
    b.add("general_practice_diabetes", extract, row)
    return row


def general_practice_cases(b: Builder) -> None:
    """GP_DIAB_01-05: windows counted back from the review date (0 <= review - date <= N),
    ages on the review date, corrections, and a bad row for every rule. The expected
    (numerator, denominator) of the clinic's, its region's and the residence's cell in
    March 2026 is the sum of the hand-written outcomes of GP_DIAB_01."""
    e = b.expect
    r = dt.date(2026, 3, 10)
    ok = (True, False)
    cases = {  # record_id: (changes, GP_DIAB_01, 02, 03, 04, 05)
        "G_HBA_365": ({"hba1c_date": r - 365 * DAY, "hba1c": 53}, ok, ok, ok, ok, ok),
        "G_HBA_366": ({"hba1c_date": r - 366 * DAY}, (False, False), None, ok, ok, ok),
        "G_HBA_ON": ({"hba1c_date": r, "hba1c": 54}, ok, (False, False), ok, ok, ok),
        "G_HBA_AFTER": ({"hba1c_date": r + DAY}, (False, False), None, ok, ok, ok),
        "G_HBA_NONE": ({"hba1c_date": None, "hba1c": None}, (False, True), None, ok, ok, ok),
        "G_HBA_NO_VALUE": ({"hba1c": None}, ok, (False, True), ok, ok, ok),
        "G_TYPE1": ({"diabetes_type": "de10", "hba1c": 80}, ok, None, ok, ok, ok),
        "G_EYE_730": ({"eye_exam_date": r - 730 * DAY}, ok, ok, ok, ok, ok),
        "G_EYE_731": ({"eye_exam_date": r - 731 * DAY}, ok, ok, (False, False), ok, ok),
        "G_EYE_ON": ({"eye_exam_date": r}, ok, ok, ok, ok, ok),
        "G_EYE_AFTER": ({"eye_exam_date": r + 2 * DAY}, ok, ok, (False, False), ok, ok),
        "G_EYE_NONE": ({"eye_exam_date": None}, ok, ok, (False, True), ok, ok),
        "G_FOOT_365": ({"foot_exam_date": r - 365 * DAY}, ok, ok, ok, ok, ok),
        "G_FOOT_366": ({"foot_exam_date": r - 366 * DAY}, ok, ok, ok, (False, False), ok),
        "G_FOOT_AFTER": ({"foot_exam_date": r + DAY}, ok, ok, ok, (False, False), ok),
        "G_FOOT_NONE": ({"foot_exam_date": None}, ok, ok, ok, (False, True), ok),
        "G_AGE17": ({"born": born_aged(18, r, 1)}, None, None, None, None, None),
        "G_AGE18": ({"born": born_aged(18, r), "statin": "nej"}, ok, ok, ok, ok, None),
        "G_AGE39": ({"born": born_aged(40, r, 1), "statin": "nej"}, ok, ok, ok, ok, None),
        "G_AGE40": ({"born": born_aged(40, r), "statin": "JA"}, ok, ok, ok, ok, ok),
        "G_STATIN_NEJ": ({"statin": "nej"}, ok, ok, ok, ok, (False, False)),
        "G_STATIN_EMPTY": ({"statin": ""}, ok, ok, ok, ok, (False, True)),
        "G_STATIN_UOPLYST": ({"statin": "uoplyst"}, ok, ok, ok, ok, (False, True)),
    }
    for rid, (changes, *outcomes) in cases.items():
        changes = dict(changes)
        born = changes.pop("born", dt.date(1955, 8, 20))
        review(b, rid, r, born=born, **changes)
        for i, outcome in enumerate(outcomes, start=1):
            e[f"GP_DIAB_0{i}", rid] = outcome
    # Corrections over time: the latest extract wins; a correction breaking a rule does not.
    r1 = dt.date(2025, 11, 3)
    first = review(b, "G_CORR", r1, extract=E1, foot_exam_date=None)
    b.add("general_practice_diabetes", E2, {**first, "foot_exam_date": r1 - 10 * DAY})
    e["GP_DIAB_04", "G_CORR"] = ok
    kept = review(b, "G_CORR_BAD", r1, extract=E1, statin="ja")
    b.add("general_practice_diabetes", E2, {**kept, "statin": "nej", "hba1c": 201})
    b.current["general_practice_diabetes", "G_CORR_BAD"] = ("statin", "ja")
    b.rules["general_practice_diabetes", "G_CORR_BAD"] = [["range:hba1c"]]
    e["GP_DIAB_05", "G_CORR_BAD"] = ok
    for rid, (changes, rule) in {
            "G_BAD_REVIEW": ({"review_date": None}, "required:review_date"),
            "G_BAD_CLINIC_NONE": ({"clinic_code": None}, "required:clinic_code"),
            "G_BAD_ZERO": ({"clinic_code": CLINIC.lstrip("0")}, "known_code:clinic_code"),
            "G_BAD_CLINIC": ({"clinic_code": "999999"}, "known_code:clinic_code"),
            "G_BAD_MUNI": ({"municipality_code": "999"}, "known_code:municipality_code"),
            "G_BAD_MUNI_TYPE": ({"municipality_code": "1O1"}, "type_integer:municipality_code"),
            "G_BAD_SEX": ({"sex": "X"}, "domain:sex"),
            "G_BAD_TYPE": ({"diabetes_type": "DE12"}, "domain:diabetes_type"),
            "G_BAD_STATIN": ({"statin": "maybe"}, "domain:statin"),
            "G_BAD_HBA_LOW": ({"hba1c": 19}, "range:hba1c"),
            "G_BAD_HBA_TEXT": ({"hba1c": "5x"}, "type_integer:hba1c"),
            "G_BAD_DATE": ({"hba1c_date": "2026-02-30"}, "type_date:hba1c_date"),
            "G_BAD_DATETIME": ({"review_date": "2026-03-10 10:00"}, "type_date:review_date"),
            "G_BAD_EYE_LATE": ({"eye_exam_date": E2 + DAY}, "after_extract_date:eye_exam_date"),
            "G_BAD_REVIEW_LATE": ({"review_date": E2 + DAY},
                                  "after_extract_date:review_date"),
            "G_BAD_CPR": ({"cpr": "3102801234"}, "valid_cpr:cpr"),
            "G_BAD_CPR_NONE": ({"cpr": None}, "required:cpr")}.items():
        review(b, rid, r, **changes)
        b.current["general_practice_diabetes", rid] = None
        b.rules["general_practice_diabetes", rid] = [[rule]]
    twice = review(b, "G_TWICE", r, statin="ja")
    b.add("general_practice_diabetes", E2, {**twice, "statin": "nej"})  # same file: quarantined
    b.current["general_practice_diabetes", "G_TWICE"] = ("statin", "ja")
    b.rules["general_practice_diabetes", "G_TWICE"] = [["duplicate_record_id"]]
    e["GP_DIAB_01", "G_TWICE"] = e["GP_DIAB_05", "G_TWICE"] = ok
    met = sum(1 for (i, _), o in e.items() if i == "GP_DIAB_01" and o and o[0])
    counted = sum(1 for (i, _), o in e.items() if i == "GP_DIAB_01" and o is not None)
    for level, unit in (("clinic", CLINIC), ("region", "1082"), ("municipality", "101")):
        b.cells["GP_DIAB_01", "2026-03", level, unit] = (met, counted)
    b.cells["GP_DIAB_01", "2026-03", "region", "1084"] = (0, 0)  # the residence's region
    shaped = raw_cpr("010101", 1, 555)
    review(b, shaped, r)
    b.current["general_practice_diabetes", shaped] = None
    b.rules["general_practice_diabetes", shaped] = [["record_id_is_cpr"]]


def completeness_cases(b: Builder) -> None:
    """Stroke records at H101, hip records at H102; LPR contacts around them. The expected
    (numerator, denominator) of the hospital cell in March/April 2026 is written by hand."""
    t = dt.datetime(2026, 3, 10, 10, 0)
    p = b.patients.cpr(dt.date(1950, 3, 3))
    b.add("stroke", E2, {"record_id": "S_COMPL_1", "cpr": p, "sex": "F",
                         "municipality_code": "101", "hospital_code": "H101",
                         "admission_at": t, "diagnosis": "DI61", "thrombolysis": "nej"})
    hyphenated = p[:6] + "-" + p[6:]
    contacts = [  # (cpr, hospital, at, code, counted, met)
        (p, "H101", t - 11 * H, "DI63", 1, 1),        # 9 March 23:00: -1 day
        (hyphenated, "H101", t + 15 * H, "DI639", 1, 1),  # 11 March 01:00: +1 day
        (p, "H101", t + 2 * DAY, "DI61", 1, 0),       # +2 days
        (p, "H101", t - 2 * DAY, "di64", 1, 0),       # -2 days
        (p, "H101", t + 2 * DAY + 3 * H, "DI63", 0, 0),  # same contact date again
        (p, "H201", t, "DI63", 0, 0),                 # other hospital (its own cell)
        (p, "H101", t + 5 * H, "DI62", 0, 0),         # not a stroke code
    ]
    young = dt.date(2008, 3, 11)  # 18 on 11 March 2026, 17 on 10 March
    q = b.patients.cpr(young)
    b.add("stroke", E2, {"record_id": "S_COMPL_YOUNG", "cpr": q, "sex": "M",
                         "municipality_code": "147", "hospital_code": "H101",
                         "admission_at": t, "diagnosis": "DI63", "thrombolysis": "nej"})
    contacts += [(q, "H101", t, "DI63", 0, 0),          # 17 at the contact: not counted
                 (q, "H101", t + DAY, "DI63", 1, 1)]    # 18: counted, registry record 17
    lone = b.patients.cpr(dt.date(1945, 1, 1))
    contacts += [(lone, "H101", t, "DI63", 1, 0)]       # no registry record
    quarantined = b.patients.cpr(dt.date(1946, 1, 1))
    b.add("stroke", E2, {"record_id": "S_COMPL_BAD", "cpr": quarantined, "sex": "M",
                         "municipality_code": "101", "hospital_code": "H101",
                         "admission_at": t, "diagnosis": "DI63", "thrombolysis": "maybe"})
    b.current["stroke", "S_COMPL_BAD"] = None
    contacts += [(quarantined, "H101", t, "DI63", 1, 0)]
    moved = b.patients.cpr(dt.date(1947, 1, 1))
    first = {"record_id": "S_COMPL_MOVED", "cpr": moved, "sex": "M", "municipality_code": "101",
             "hospital_code": "H101", "admission_at": t, "diagnosis": "DI63",
             "thrombolysis": "nej"}
    b.add("stroke", E2, first)
    b.add("stroke", E3, {**first, "hospital_code": "H203"})  # corrected: another hospital
    contacts += [(moved, "H101", t, "DI63", 1, 0)]
    for n, (cpr, hospital, at, code, _, _) in enumerate(contacts):
        lpr(b, E1 if at < dt.datetime(2026, 1, 1) else E2, cpr, hospital, at, code)
    lpr(b, E3, p, "H101", t - 11 * H + 30 * MIN, "DI63")  # the first contact again, E3
    counted = sum(c[4] for c in contacts)
    met = sum(c[5] for c in contacts)
    b.cells["COMPL_STROKE", "2026-03", "hospital", "H101"] = (met, counted)

    # Hip: the LPR Parquet (E2) is zone-aware UTC: 23:30Z on 10 March is 00:30 on the 11th
    # in Denmark, and 22:30Z on 1 June (summer time) is 00:30 on the 2nd.
    h = b.patients.cpr(dt.date(1950, 6, 6))
    for rid, at in (("H_COMPL_1", dt.datetime(2026, 3, 12, 9, 0)),
                    ("H_COMPL_2", dt.datetime(2026, 6, 3, 9, 0))):
        b.add("hipfracture", E2, {"record_id": rid, "cpr": h, "sex": "F",
                                  "municipality_code": "101", "hospital_code": "H102",
                                  "admission_at": at, "diagnosis": "DS720", "rehab_plan": "ja"})
    utc = dt.timezone.utc
    zoned = [(h, dt.datetime(2026, 3, 10, 23, 30, tzinfo=utc)),
             (h, dt.datetime(2026, 6, 1, 22, 30, tzinfo=utc))]
    for cpr, at in zoned:
        local = at.astimezone(ZoneInfo("Europe/Copenhagen"))
        b.add("lpr", E2, {"cpr": cpr, "hospital_code": "H102", "municipality_code": "101",
                          "admission_at": local.replace(tzinfo=None), "action_diagnosis": "DS721",
                          "_utc": at})
    b.cells["COMPL_HIP", "2026-03", "hospital", "H102"] = (1, 1)
    b.cells["COMPL_HIP", "2026-06", "hospital", "H102"] = (1, 1)
    old = b.patients.cpr(born_aged(65, dt.date(2026, 4, 20)))
    older = b.patients.cpr(born_aged(65, dt.date(2026, 4, 20), 1))
    for cpr in (old, older):  # 65 on the contact date: counted; 64: not
        b.add("lpr", E2, {"cpr": cpr, "hospital_code": "H102", "municipality_code": "101",
                          "admission_at": dt.datetime(2026, 4, 20, 12),
                          "action_diagnosis": "DS722"})
    b.cells["COMPL_HIP", "2026-04", "hospital", "H102"] = (0, 1)
    for bad in ({"municipality_code": "9999"}, {"hospital_code": "H000"},
                {"action_diagnosis": "hofte"}, {"admission_at": "2026-03-10"}):
        row = {"cpr": p, "hospital_code": "H101", "municipality_code": "101",
               "admission_at": t + 3 * H, "action_diagnosis": "DI63"}
        row.update(bad)
        b.add("lpr", E3, row)


def filler(b: Builder, seed: int = 20260930) -> None:
    """Ordinary records in every month of 2025-2026, so every level has several units."""
    rnd = random.Random(seed)

    def moment(last: dt.date) -> dt.datetime:
        start = dt.datetime(2025, 1, 1)
        span = (dt.datetime.combine(last, dt.time()) - start).total_seconds() - 4 * 86400
        return start + dt.timedelta(seconds=rnd.randrange(int(span) // 60) * 60)

    def maybe(value, p=0.8):
        return value if rnd.random() < p else None

    for n in range(120):
        extract = rnd.choice([E1, E2, E3])
        t = moment(extract - 20 * DAY)
        su = maybe(t + dt.timedelta(minutes=rnd.randrange(0, 40 * 60)))
        ja = rnd.random() < 0.4
        stroke(b, f"SF{n}", t, extract=extract, born=dt.date(rnd.randrange(1920, 1990), 1, 1)
               + dt.timedelta(days=rnd.randrange(365)),
               diagnosis=rnd.choice(["DI61", "DI63", "DI63", "DI64"]), stroke_unit_at=su,
               thrombolysis=rnd.choice(["ja", "nej", ""]) if not ja else "ja",
               thrombolysis_at=maybe(t + dt.timedelta(minutes=rnd.randrange(5, 120))) if ja
               else None,
               dysphagia_screening_at=maybe(t + dt.timedelta(minutes=rnd.randrange(0, 40 * 60))),
               physio_assessment_at=maybe(t + dt.timedelta(minutes=rnd.randrange(0, 80 * 60))),
               discharge_at=maybe(t + dt.timedelta(hours=rnd.randrange(20, 300))),
               death_date=maybe(t.date() + dt.timedelta(days=rnd.randrange(0, 60)), 0.2)
               if t.date() + 60 * DAY <= extract else None,
               sss_score=maybe(rnd.randrange(0, 59)), prestroke_mrs=maybe(rnd.randrange(0, 6)))
    for n in range(90):
        extract = rnd.choice([E1, E2, E3])
        t = moment(extract - 20 * DAY)
        s = maybe(t + dt.timedelta(minutes=rnd.randrange(60, 40 * 60)))
        hip(b, f"HF{n}", t, extract=extract, born=dt.date(rnd.randrange(1920, 1962), 3, 3),
            surgery_at=s, mobilised_at=maybe(s + dt.timedelta(minutes=rnd.randrange(60, 40 * 60)))
            if s else None, cas_at_discharge=maybe(rnd.randrange(0, 7)),
            rehab_plan=rnd.choice(["ja", "ja", "nej", ""]),
            discharge_at=maybe(t + dt.timedelta(days=rnd.randrange(2, 15))),
            death_date=maybe(t.date() + dt.timedelta(days=rnd.randrange(1, 19)), 0.2),
            asa_score=maybe(rnd.randrange(1, 6)), new_mobility_score=maybe(rnd.randrange(0, 10)))
    for n in range(70):
        extract = rnd.choice([E1, E2, E3])
        i = moment(extract - 100 * DAY).date()
        course(b, f"CF{n}", i, extract=extract, diagnosis=rnd.choice(["DI21", "DI20", "DI50",
                                                                      "DI251"]),
               referred=rnd.choice(["ja", "ja", "nej", ""]))
        for m in range(rnd.choice([0, 1, 1, 2])):
            referral(b, f"MF{n}_{m}", i + dt.timedelta(days=rnd.randrange(1, 10)),
                     extract=extract, hospital_record_id=f"CF{n}",
                     rehab_start_date=maybe(i + dt.timedelta(days=rnd.randrange(10, 80))),
                     smoker=rnd.choice(["ja", "nej", ""]),
                     smoking_cessation_offered=rnd.choice(["ja", "nej", ""]),
                     completed=rnd.choice(["ja", "nej", ""]))
    for n in range(80):
        extract = rnd.choice([E1, E2, E3])
        t = moment(extract - DAY)
        hospital = OTHER_HOSPITALS[n % len(OTHER_HOSPITALS)]
        lpr(b, extract, b.patients.cpr(dt.date(rnd.randrange(1920, 1990), 2, 2)), hospital, t,
            rnd.choice(["DI63", "DI61", "DS720", "DI21"]))
    # LPR contacts that match filler stroke and hip records.
    for (source, extract), rows in list(b.rows.items()):
        if source in ("stroke", "hipfracture"):
            for row in rows[:: 4]:
                if isinstance(row, dict) and str(row["record_id"]).startswith(("SF", "HF")):
                    at = row["admission_at"] + dt.timedelta(hours=rnd.randrange(-30, 30))
                    if at.date() <= extract:
                        lpr(b, extract, row["cpr"], row["hospital_code"], at,
                            "DI63" if source == "stroke" else "DS721")


CASE_MIX = {  # a value in each category, reference category first
    "stroke": {"age": (40, 70, 80, 90), "sex": ("M", "F"), "sss_score": (50, 35, 20, 5, None),
               "prestroke_mrs": (0, 2, 4, None)},
    "hipfracture": {"age": (70, 80, 90), "sex": ("M", "F"), "asa_score": (1, 3, 4, None),
                    "new_mobility_score": (7, 3, 0, None)},
}


def case_mix_patterns(registry: str) -> list[dict]:
    """The reference pattern and one pattern per other category: as many independent
    patterns as the model has terms."""
    values = CASE_MIX[registry]
    base = {name: options[0] for name, options in values.items()}
    return [base] + [{**base, name: option} for name, options in values.items()
                     for option in options[1:]]


def cover_case_mix(b: Builder) -> None:
    """The catalogue stops the run when a case-mix category has records but no events in a
    year. Every pattern of ``case_mix_patterns`` gets a death and a survivor in 2025 and 2026
    (admitted in February, so an earlier cutoff still follows them up): every category has
    events, and the twins keep the logistic model estimable whatever else the data hold."""
    for year, extract in ((2025, E1), (2026, E2)):
        t = dt.datetime(year, 2, 5, 12, 0)
        for registry, add, died in (("stroke", stroke, 3), ("hipfracture", hip, 20)):
            for j, pattern in enumerate(case_mix_patterns(registry)):
                values = {k: v for k, v in pattern.items() if k != "age"}
                for dies in (True, False):
                    add(b, f"{registry[0].upper()}_MIX{year}_{j}_{int(dies)}", t + j * H,
                        extract=extract, born=born_aged(pattern["age"], t.date(), 1 + j),
                        death_date=t.date() + died * DAY if dies else None, **values)


def build(root: Path) -> Builder:
    b = Builder(root)
    stroke_cases(b)
    hip_cases(b)
    cardiac_cases(b)
    municipal_cases(b)
    completeness_cases(b)
    general_practice_cases(b)
    filler(b)
    cover_case_mix(b)
    b.formats.update({
        ("stroke", E1): FileFormat(delimiter=";", bom=True),
        ("stroke", E2): FileFormat(delimiter=",", encoding="cp1252", extra="bemærkning",
                                   newline="\r\n"),
        ("stroke", E3): FileFormat(delimiter=",", reverse=True),
        ("hipfracture", E1): FileFormat(delimiter=";", encoding="cp1252", newline="\r\n"),
        ("hipfracture", E2): FileFormat(kind="parquet", typed=True),
        ("hipfracture", E3): FileFormat(kind="parquet"),
        ("cardiac_rehab_hospital", E1): FileFormat(delimiter=","),
        ("cardiac_rehab_hospital", E2): FileFormat(delimiter=";", encoding="cp1252",
                                                   extra="kommentar"),
        ("cardiac_rehab_municipal", E3): FileFormat(delimiter=",", drop=("smoker",)),
        ("lpr", E1): FileFormat(delimiter=","),
        ("general_practice_diabetes", E1): FileFormat(delimiter=";", encoding="cp1252"),
        ("general_practice_diabetes", E2): FileFormat(delimiter=",", reverse=True, bom=True),
        ("lpr", E2): FileFormat(kind="parquet", typed=True, zone="UTC"),
    })
    # E3's municipal file has no smoker column: every row's smoker there is uoplyst.
    _lpr_zoned(b)
    b.write()
    # A file that cannot be read: a required column is missing. It fails alone.
    bad = root / "stroke" / "stroke_2026-05-31.csv"
    bad.write_text("record_id;sex;admission_at\nS_X;M;2026-03-10 10:00\n", encoding="utf-8")
    return b


def _lpr_zoned(b: Builder) -> None:
    """The zone-aware LPR Parquet carries its instants in UTC."""
    rows = b.rows.get(("lpr", E2), [])
    for row in rows:
        utc = row.pop("_utc", None)
        local = row["admission_at"]
        if isinstance(local, dt.datetime):
            row["admission_at"] = (utc or local.replace(tzinfo=ZoneInfo("Europe/Copenhagen"))
                                   ).astimezone(dt.timezone.utc).replace(tzinfo=None)
