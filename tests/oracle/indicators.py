"""Every catalogue indicator counted record by record in plain Python.

For each record the indicator answers: in the denominator or not; if so, numerator met or
not, numerator field missing or not (and the minutes, for the median). The counts are then
summed per period (month and year of the period date) and reporting unit (every level the
catalogue names). Units with a denominator of 0 have no row because no record creates one.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from pathlib import Path

from tests.oracle.contract import age_on
from tests.oracle.loading import Loaded, load

STROKE = ("DI61", "DI63", "DI64")
HIP = ("DS720", "DS721", "DS722")
HEART = ("DI20", "DI21", "DI22", "DI23", "DI24", "DI25", "DI50")


def within_minutes(earlier: dt.datetime | None, later: dt.datetime | None, minutes: int) -> bool:
    """0 <= later - earlier <= N minutes, exactly (no truncation); missing never meets it."""
    if earlier is None or later is None:
        return False
    return dt.timedelta(0) <= later - earlier <= dt.timedelta(minutes=minutes)


def within_days(earlier, later, days: int) -> bool:
    """0 <= later date - earlier date <= N days, on dates; missing never meets it."""
    if earlier is None or later is None:
        return False
    return 0 <= (_day(later) - _day(earlier)).days <= days


def _day(value):
    return value.date() if isinstance(value, dt.datetime) else value


def followed(anchor, days: int, cutoff: dt.date) -> bool:
    return anchor is not None and _day(anchor) + dt.timedelta(days=days) <= cutoff


def age(record: dict, on) -> int:
    return age_on(record["cpr"].born, _day(on))


# Each indicator: (registry, period column, levels kind, function record -> None or
# (numerator, missing, minutes)). "missing" is the named numerator field being empty/uoplyst.

def _stroke(r):
    return r["diagnosis"] in STROKE and age(r, r["admission_at"]) >= 18


def _hip(r):
    return r["diagnosis"] in HIP and age(r, r["admission_at"]) >= 65


def _heart(r):
    return r["diagnosis"].startswith(HEART) and age(r, r["index_date"]) >= 18


def stroke_01(r, c):
    if _stroke(r):
        return (within_minutes(r["admission_at"], r["stroke_unit_at"], 24 * 60),
                r["stroke_unit_at"] is None, None)


def stroke_02(r, c):
    if _stroke(r) and r["diagnosis"] == "DI63":
        return r["thrombolysis"] == "ja", r["thrombolysis"] == "uoplyst", None


def stroke_03(r, c):
    if _stroke(r) and r["diagnosis"] == "DI63" and r["thrombolysis"] == "ja":
        return (within_minutes(r["admission_at"], r["thrombolysis_at"], 60),
                r["thrombolysis_at"] is None, None)


def stroke_04(r, c):
    if not _stroke(r):
        return None
    if within_minutes(r["admission_at"], r["discharge_at"], 48 * 60):
        return None
    if r["death_date"] is not None and \
            r["death_date"] <= r["admission_at"].date() + dt.timedelta(days=2):
        return None
    return (within_minutes(r["admission_at"], r["physio_assessment_at"], 48 * 60),
            r["physio_assessment_at"] is None, None)


def stroke_05(r, c):
    if _stroke(r):
        return (within_minutes(r["admission_at"], r["dysphagia_screening_at"], 24 * 60),
                r["dysphagia_screening_at"] is None, None)


def stroke_06(r, c):
    if _stroke(r) and followed(r["admission_at"], 30, c):
        return within_days(r["admission_at"], r["death_date"], 30), False, None


def stroke_07(r, c):
    if _stroke(r) and r["diagnosis"] == "DI63" and r["thrombolysis"] == "ja" \
            and r["thrombolysis_at"] is not None:
        gap = r["thrombolysis_at"] - r["admission_at"]
        return None, False, gap.total_seconds() / 60


def hip_01(r, c):
    if _hip(r) and r["surgery_at"] is not None:
        return within_minutes(r["admission_at"], r["surgery_at"], 24 * 60), False, None


def hip_02(r, c):
    if not (_hip(r) and r["surgery_at"] is not None):
        return None
    if r["death_date"] is not None and \
            r["death_date"] <= r["surgery_at"].date() + dt.timedelta(days=1):
        return None
    return (within_minutes(r["surgery_at"], r["mobilised_at"], 24 * 60),
            r["mobilised_at"] is None, None)


def _discharged_alive(r):
    return r["discharge_at"] is not None and not (
        r["death_date"] is not None and r["death_date"] <= r["discharge_at"].date())


def hip_03(r, c):
    if _hip(r) and _discharged_alive(r):
        present = r["cas_at_discharge"] is not None
        return present, not present, None


def hip_04(r, c):
    if _hip(r) and _discharged_alive(r):
        return r["rehab_plan"] == "ja", r["rehab_plan"] == "uoplyst", None


def hip_05(r, c):
    if _hip(r) and followed(r["admission_at"], 30, c):
        return within_days(r["admission_at"], r["death_date"], 30), False, None


def hip_06(r, c):
    if _hip(r) and r["surgery_at"] is not None and followed(r["surgery_at"], 730, c):
        return within_days(r["surgery_at"], r["reoperation_date"], 730), False, None


def dhrd_01(r, c):
    if _heart(r):
        return r["referred"] == "ja", r["referred"] == "uoplyst", None


def dhrd_02(r, c):
    if followed(r["referral_received_date"], 30, c):
        return (within_days(r["referral_received_date"], r["rehab_start_date"], 30),
                r["rehab_start_date"] is None, None)


def dhrd_03(r, c):
    if r["rehab_start_date"] is not None and r["rehab_end_date"] is not None:
        return r["completed"] == "ja", r["completed"] == "uoplyst", None


def dhrd_04(r, c):
    if r["rehab_start_date"] is not None and r["smoker"] == "ja":
        return (r["smoking_cessation_offered"] == "ja",
                r["smoking_cessation_offered"] == "uoplyst", None)


# General practice, diabetes: population DE10 or DE11, aged 18 or more on the review date. A
# measurement counts "within N days" of the review when 0 <= review_date - its date <= N.
def _diabetes(r):
    return r["diabetes_type"] in ("DE10", "DE11") and age(r, r["review_date"]) >= 18


def gp_diab_01(r, c):
    if _diabetes(r):
        return (within_days(r["hba1c_date"], r["review_date"], 365), r["hba1c_date"] is None,
                None)


def gp_diab_02(r, c):
    if _diabetes(r) and r["diabetes_type"] == "DE11" and \
            within_days(r["hba1c_date"], r["review_date"], 365):
        return (r["hba1c"] is not None and r["hba1c"] <= 53), r["hba1c"] is None, None


def gp_diab_03(r, c):
    if _diabetes(r):
        return (within_days(r["eye_exam_date"], r["review_date"], 730),
                r["eye_exam_date"] is None, None)


def gp_diab_04(r, c):
    if _diabetes(r):
        return (within_days(r["foot_exam_date"], r["review_date"], 365),
                r["foot_exam_date"] is None, None)


def gp_diab_05(r, c):
    if _diabetes(r) and age(r, r["review_date"]) >= 40:
        return r["statin"] == "ja", r["statin"] == "uoplyst", None


HOSPITAL_LEVELS = ("national", "region", "hospital", "municipality")
CLINIC_LEVELS = ("national", "region", "clinic", "municipality")
MUNICIPAL_LEVELS = ("national", "region", "municipality")
COMPLETENESS_LEVELS = ("national", "region", "hospital")

RECORD_INDICATORS = {
    "STROKE_01": ("stroke", "admission_at", stroke_01),
    "STROKE_02": ("stroke", "admission_at", stroke_02),
    "STROKE_03": ("stroke", "admission_at", stroke_03),
    "STROKE_04": ("stroke", "admission_at", stroke_04),
    "STROKE_05": ("stroke", "admission_at", stroke_05),
    "STROKE_06": ("stroke", "admission_at", stroke_06),
    "STROKE_07": ("stroke", "admission_at", stroke_07),
    "HIP_01": ("hipfracture", "admission_at", hip_01),
    "HIP_02": ("hipfracture", "admission_at", hip_02),
    "HIP_03": ("hipfracture", "admission_at", hip_03),
    "HIP_04": ("hipfracture", "admission_at", hip_04),
    "HIP_05": ("hipfracture", "admission_at", hip_05),
    "HIP_06": ("hipfracture", "admission_at", hip_06),
    "DHRD_01": ("cardiac_rehab_hospital", "index_date", dhrd_01),
    "DHRD_02": ("cardiac_rehab_municipal", "referral_received_date", dhrd_02),
    "DHRD_03": ("cardiac_rehab_municipal", "referral_received_date", dhrd_03),
    "DHRD_04": ("cardiac_rehab_municipal", "referral_received_date", dhrd_04),
    "GP_DIAB_01": ("general_practice_diabetes", "review_date", gp_diab_01),
    "GP_DIAB_02": ("general_practice_diabetes", "review_date", gp_diab_02),
    "GP_DIAB_03": ("general_practice_diabetes", "review_date", gp_diab_03),
    "GP_DIAB_04": ("general_practice_diabetes", "review_date", gp_diab_04),
    "GP_DIAB_05": ("general_practice_diabetes", "review_date", gp_diab_05),
}


def units(loaded: Loaded, record: dict, levels) -> list[tuple[str, str, str]]:
    """(level, unit_code, unit_name) for every level: the region is the treating hospital's
    when there is a hospital level, the clinic's municipality's when there is a clinic
    level, else the delivering municipality's."""
    ref = loaded.reference
    out = [("national", "DK", "Danmark")]
    hospital = record.get("hospital_code") if "hospital" in levels else None
    if hospital is not None:
        name, region = ref.hospitals[hospital]
    elif "clinic" in levels:
        region = ref.clinic_region(record["clinic_code"])
    else:
        region = ref.municipalities[record["municipality_code"]][1]
    if "region" in levels:
        out.append(("region", region, ref.regions[region]))
    if "hospital" in levels:
        out.append(("hospital", hospital, ref.hospitals[hospital][0]))
    if "clinic" in levels:
        code = record["clinic_code"]
        out.append(("clinic", code, ref.clinics[code][0]))
    if "municipality" in levels:
        code = record["municipality_code"]
        out.append(("municipality", str(code), ref.municipalities[code][0]))
    return out


class Tally:
    """Counts per (indicator, period_type, period, level, unit_code)."""

    def __init__(self):
        self.cells: dict[tuple, dict] = {}

    def add(self, indicator: str, period_day: dt.date, unit_list, outcome) -> None:
        numerator, missing, minutes = outcome
        for period_type, period in (("year", f"{period_day.year:04d}"),
                                    ("month", f"{period_day.year:04d}-{period_day.month:02d}")):
            for level, code, name in unit_list:
                key = (indicator, period_type, period, level, code)
                cell = self.cells.setdefault(key, {"unit_name": name, "numerator": 0,
                                                   "denominator": 0, "missing": 0,
                                                   "minutes": []})
                cell["denominator"] += 1
                cell["numerator"] += bool(numerator)
                cell["missing"] += bool(missing)
                if minutes is not None:
                    cell["minutes"].append(minutes)

    def rows(self, medians: set[str]) -> list[dict]:
        out = []
        for key, cell in sorted(self.cells.items()):
            indicator, period_type, period, level, code = key
            median = indicator in medians
            out.append({
                "indicator_id": indicator, "period_type": period_type, "period": period,
                "level": level, "unit_code": code, "unit_name": cell["unit_name"],
                "numerator": None if median else cell["numerator"],
                "denominator": cell["denominator"],
                "missing": 0 if median else cell["missing"],
                "median": statistics.median(cell["minutes"]) if median else None,
            })
        return out


def compute(input_dir: Path | str, cutoff: dt.date | None = None,
            loaded: Loaded | None = None) -> list[dict]:
    """The indicator rows the catalogue asks for, from the input directory alone."""
    loaded = loaded or load(Path(input_dir))
    cutoff = cutoff or loaded.latest_extract
    tally = Tally()
    for indicator, (registry, period_column, judge) in RECORD_INDICATORS.items():
        levels = (MUNICIPAL_LEVELS if registry == "cardiac_rehab_municipal" else
                  CLINIC_LEVELS if registry == "general_practice_diabetes" else HOSPITAL_LEVELS)
        for record in loaded.current.get(registry, {}).values():
            day = _day(record[period_column])
            if day > cutoff:
                continue
            outcome = judge(record, cutoff)
            if outcome is not None:
                tally.add(indicator, day, units(loaded, record, levels), outcome)
    _dhrd_05(loaded, cutoff, tally)
    _completeness(loaded, cutoff, tally)
    return tally.rows({"STROKE_07"})


def linked_starts(loaded: Loaded) -> dict[str, list]:
    """rehab_start_date of every current municipal record, by the hospital_record_id it
    links to (whatever the municipal record's own period)."""
    starts = defaultdict(list)
    for m in loaded.current.get("cardiac_rehab_municipal", {}).values():
        if m["hospital_record_id"] is not None:
            starts[m["hospital_record_id"]].append(m["rehab_start_date"])
    return starts


def dhrd_05(r, c, starts):
    """Each hospital course once: met when some linked municipal record started
    rehabilitation within 60 days of index_date."""
    if _heart(r) and r["referred"] == "ja" and followed(r["index_date"], 60, c):
        linked = starts.get(r["record_id"], ())
        met = any(within_days(r["index_date"], start, 60) for start in linked)
        return met, False, None


def judge(loaded: Loaded, indicator: str, record: dict, cutoff: dt.date):
    """One record's outcome for one indicator: None outside the denominator, else
    (numerator met, numerator field missing, minutes for the median)."""
    if indicator == "DHRD_05":
        return dhrd_05(record, cutoff, linked_starts(loaded))
    return RECORD_INDICATORS[indicator][2](record, cutoff)


def _dhrd_05(loaded: Loaded, cutoff: dt.date, tally: Tally) -> None:
    starts = linked_starts(loaded)
    for record in loaded.current.get("cardiac_rehab_hospital", {}).values():
        day = record["index_date"]
        if day > cutoff:
            continue
        outcome = dhrd_05(record, cutoff, starts)
        if outcome is not None:
            tally.add("DHRD_05", day, units(loaded, record, HOSPITAL_LEVELS), outcome)


def _completeness(loaded: Loaded, cutoff: dt.date, tally: Tally) -> None:
    """Distinct (patient, hospital, contact date) LPR contacts of the diagnoses and age; met
    when the registry has a current record of the same patient and hospital within ±1 day."""
    for indicator, registry, codes, min_age in (("COMPL_STROKE", "stroke", STROKE, 18),
                                                ("COMPL_HIP", "hipfracture", HIP, 65)):
        registered = defaultdict(set)
        for r in loaded.current.get(registry, {}).values():
            registered[(r["cpr"].key, r["hospital_code"])].add(r["admission_at"].date())
        contacts = {}
        for c in loaded.lpr:
            day = c["admission_at"].date()
            if not c["action_diagnosis"].startswith(codes) or day > cutoff:
                continue
            if age_on(c["cpr"].born, day) < min_age:
                continue
            contacts[(c["cpr"].key, c["hospital_code"], day)] = c
        for (patient, hospital, day), c in contacts.items():
            dates = registered.get((patient, hospital), ())
            met = any(abs((d - day).days) <= 1 for d in dates)
            tally.add(indicator, day, units(loaded, c, COMPLETENESS_LEVELS), (met, False, None))
