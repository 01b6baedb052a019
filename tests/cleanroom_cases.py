"""Clean-room cases: a contract-shaped input folder with hand-designed boundary cases.

Written from the indicator catalogue and the data contract only (no import of
pipelines/, schemas/, indicators/ or tests.oracle), so that a misreading shared
by the engine and the team's own oracle shows up here.

Every record carries its expected contribution to each indicator of its
registry, decided by hand from the spec and written next to it:
``N`` numerator (and denominator), ``D`` denominator only, ``M`` denominator
and missing, ``-`` not in the denominator. STROKE_07 carries the minutes or
``-``. The only code below that touches expectations is summing those flags
per unit and period (plain arithmetic), with reporting units looked up in the
reference tables.

CPR numbers are generated (valid by the contract's century rule, no modulus
check) and never printed: a failing comparison shows counts, never records.
"""
from __future__ import annotations

import csv
import shutil
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "sample_data" / "input" / "reference"
CPH = ZoneInfo("Europe/Copenhagen")

EARLY = "2025-06-30"          # first extract of every registry
LATE = "2025-12-31"           # latest extract (the default cutoff)
MUNI_LATE = "2025-11-30"      # the municipal registry's latest extract is earlier (ambiguity A2)

INDICATORS = {
    "stroke": {"S1": "STROKE_01", "S2": "STROKE_02", "S3": "STROKE_03", "S4": "STROKE_04",
               "S5": "STROKE_05", "S6": "STROKE_06", "S7": "STROKE_07"},
    "hipfracture": {"H1": "HIP_01", "H2": "HIP_02", "H3": "HIP_03", "H4": "HIP_04",
                    "H5": "HIP_05", "H6": "HIP_06"},
    "cardiac_rehab_hospital": {"D1": "DHRD_01", "D5": "DHRD_05"},
    "cardiac_rehab_municipal": {"D2": "DHRD_02", "D3": "DHRD_03", "D4": "DHRD_04"},
    "general_practice_diabetes": {"G1": "GP_DIAB_01", "G2": "GP_DIAB_02", "G3": "GP_DIAB_03",
                                  "G4": "GP_DIAB_04", "G5": "GP_DIAB_05"},
    "lpr": {"CS": "COMPL_STROKE", "CH": "COMPL_HIP"},
}


# --------------------------------------------------------------------------- CPR

def century(yy: int, d7: int) -> int:
    """The contract's century rule, from the 7th digit and YY."""
    if d7 <= 3:
        return 1900
    if d7 in (4, 9):
        return 2000 if yy <= 36 else 1900
    return 2000 if yy <= 57 else 1800


class Patients:
    """Synthetic CPR numbers per patient key: DDMMYY + century digit + a running number."""

    def __init__(self):
        self._cpr: dict[str, str] = {}
        self._next = 100

    def numbers(self) -> list[str]:
        """Every generated number (ten digits), for leak checks only."""
        return list(self._cpr.values())

    def cpr(self, key: str, birth: str, d7: int, hyphen: bool | str = False) -> str:
        if key not in self._cpr:
            y, m, d = (int(p) for p in birth.split("-"))
            assert century(y % 100, d7) + y % 100 == y, (key, "century digit is not the year's")
            body = f"{d:02d}{m:02d}{y % 100:02d}"
            tail = f"{d7}{self._next:03d}"
            self._next += 1
            self._cpr[key] = body + tail
        value = self._cpr[key]
        sep = hyphen if isinstance(hyphen, str) else ("-" if hyphen else "")
        return value[:6] + sep + value[6:]


# --------------------------------------------------------------------------- cases

@dataclass
class Case:
    registry: str
    rid: str
    fields: dict            # the version that must be current (values as local naive text)
    flags: str              # hand-written: "S1:N S2:D ..."
    why: str
    patient: str | None = None
    birth: str = "1970-01-01"
    d7: int = 1
    hyphen: bool | str = False
    early: dict | None = None     # overrides for the version in the first extract
    late: dict | None = None      # overrides in the latest extract only (a broken correction)
    in_early: bool | None = None  # None: in the first extract when its dates allow
    in_late: bool = True
    dup_late: dict | None = None  # a second row with the same record_id later in the latest file
    period: str | None = None     # hand-given local month when the text is UTC ('...Z')

    def flag_map(self) -> dict[str, str]:
        out = dict(p.split(":") for p in self.flags.split())
        assert set(out) == set(INDICATORS[self.registry]), (self.rid, "a flag per indicator")
        return out


def _dt(text: str) -> datetime:
    fmt = "%Y-%m-%d %H:%M:%S" if text.count(":") == 2 else "%Y-%m-%d %H:%M"
    return datetime.strptime(text.rstrip("Z"), fmt)


def _fmt(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S" if value.second else "%Y-%m-%d %H:%M")


def rel(base: str, offset: str) -> str:
    """base + '+HH:MM:SS' (or '-HH:MM:SS', or '+Nd'), as text."""
    sign = -1 if offset[0] == "-" else 1
    body = offset[1:]
    if body.endswith("d"):
        delta = timedelta(days=int(body[:-1]))
    else:
        h, m, s = (int(p) for p in body.split(":"))
        delta = timedelta(hours=h, minutes=m, seconds=s)
    out = _dt(base) + sign * delta
    return _fmt(out) + ("Z" if base.endswith("Z") else "")


# Stroke: a base admission where every window is met; cases override fields.
def stroke(rid, adm, sex, flags, why, hosp, muni, **kw):
    over = kw.pop("over", {})
    f = {
        "record_id": rid, "sex": sex, "municipality_code": muni, "hospital_code": hosp,
        "admission_at": adm, "diagnosis": "DI63",
        "stroke_unit_at": rel(adm, "+02:00:00"), "imaging_at": rel(adm, "+00:30:00"),
        "thrombolysis": "nej", "thrombolysis_at": "",
        "dysphagia_screening_at": rel(adm, "+04:00:00"),
        "physio_assessment_at": rel(adm, "+25:00:00"),
        "sss_score": "50", "prestroke_mrs": "0",
        "discharge_at": rel(adm, "+10d"), "death_date": "",
    }
    for k, v in over.items():
        f[k] = rel(adm, v) if isinstance(v, str) and v and v[0] in "+-" else v
    return Case("stroke", rid, f, flags, why, **kw)


def hip(rid, adm, sex, flags, why, hosp, muni, **kw):
    over = kw.pop("over", {})
    kw.setdefault("birth", "1955-01-01")
    kw.setdefault("d7", 2)
    surgery = over.get("surgery_at", rel(adm, "+12:00:00"))
    if surgery and surgery[0] in "+-":
        surgery = rel(adm, surgery)
    f = {
        "record_id": rid, "sex": sex, "municipality_code": muni, "hospital_code": hosp,
        "admission_at": adm, "diagnosis": "DS720", "surgery_at": surgery,
        "asa_score": "2", "new_mobility_score": "8",
        "mobilised_at": rel(surgery, "+12:00:00") if surgery else "",
        "cas_at_discharge": "4", "rehab_plan": "ja",
        "discharge_at": rel(adm, "+10d"), "reoperation_date": "", "death_date": "",
    }
    for k, v in over.items():
        if k == "surgery_at":
            continue
        if isinstance(v, str) and v.startswith(("s+", "s-")):      # relative to surgery
            f[k] = rel(surgery, v[1:])
        elif isinstance(v, str) and v and v[0] in "+-":
            f[k] = rel(adm, v)
        else:
            f[k] = v
    return Case("hipfracture", rid, f, flags, why, **kw)


def cardiac(rid, index, sex, flags, why, hosp, muni, diagnosis="DI21", referred="ja", **kw):
    kw.setdefault("birth", "1960-01-01")
    f = {"record_id": rid, "sex": sex, "municipality_code": muni, "hospital_code": hosp,
         "diagnosis": diagnosis, "index_date": index, "referred": referred,
         "referral_date": index if referred.strip().lower() == "ja" else ""}
    return Case("cardiac_rehab_hospital", rid, f, flags, why, **kw)


def municipal(rid, received, flags, why, muni, start="", end="", completed="", smoker="nej",
              offered="", hospital_record_id="", **kw):
    f = {"record_id": rid, "hospital_record_id": hospital_record_id, "municipality_code": muni,
         "referral_received_date": received, "rehab_start_date": start, "rehab_end_date": end,
         "completed": completed, "smoker": smoker, "smoking_cessation_offered": offered}
    return Case("cardiac_rehab_municipal", rid, f, flags, why, **kw)


def gp(rid, review, sex, flags, why, clinic, muni, **over):
    kw = {k: over.pop(k) for k in ("birth", "d7", "in_early", "period") if k in over}
    f = {"record_id": rid, "sex": sex, "municipality_code": muni, "clinic_code": clinic,
         "review_date": review, "diabetes_type": "DE11", "hba1c_date": "2025-03-01",
         "hba1c": "48", "eye_exam_date": "2024-09-01", "foot_exam_date": "2025-01-10",
         "statin": "ja"}
    f.update(over)
    return Case("general_practice_diabetes", rid, f, flags, why, **kw)


# stroke base: DI63, thrombolysis nej, all windows met, alive
B = "S1:N S2:D S3:- S4:N S5:N S6:D S7:-"
# hip base: surgery in 2025 (no 730-day follow-up), alive
HB = "H1:N H2:N H3:N H4:N H5:D H6:-"
OUT_S = "S1:- S2:- S3:- S4:- S5:- S6:- S7:-"
OUT_H = "H1:- H2:- H3:- H4:- H5:- H6:-"


def _sflags(**kv):
    """The stroke base flags with some indicators changed (by hand, per case)."""
    d = dict(p.split(":") for p in B.split())
    d.update(kv)
    return " ".join(f"{k}:{v}" for k, v in d.items())


def _hflags(**kv):
    d = dict(p.split(":") for p in HB.split())
    d.update(kv)
    return " ".join(f"{k}:{v}" for k, v in d.items())


S, H = _sflags, _hflags
A = "2025-03-10 08:00"

STROKE = [
    # --- SW: time windows, H101 (region 1081), March 2025 -----------------------------------
    stroke("S-SW01", A, "F", S(S1="N", S5="D"),
           "stroke unit at exactly 24 h is in; dysphagia 24 h 1 s is out",
           "H101", 851, over={"stroke_unit_at": "+24:00:00",
                              "dysphagia_screening_at": "+24:00:01"}),
    stroke("S-SW02", A, "M", S(S1="D", S5="N"),
           "stroke unit 24 h 1 s out; dysphagia exactly 24 h in",
           "H101", 851, over={"stroke_unit_at": "+24:00:01",
                              "dysphagia_screening_at": "+24:00:00"}),
    stroke("S-SW03", A, "F", S(S1="D", S5="N"),
           "24 h 30 s is outside (catalogue's example); dysphagia at 0 s in",
           "H101", 851, over={"stroke_unit_at": "+24:00:30",
                              "dysphagia_screening_at": "+00:00:00"}),
    stroke("S-SW04", A, "M", S(S1="D", S5="D"),
           "events before admission are valid data but miss the window; not missing",
           "H101", 851, over={"stroke_unit_at": "-00:01:00",
                              "dysphagia_screening_at": "-00:00:01"}),
    stroke("S-SW05", A, "F", S(S1="M", S5="M"),
           "empty numerator fields: in the denominator and counted missing",
           "H101", 851, over={"stroke_unit_at": "", "dysphagia_screening_at": ""}),
    stroke("S-SW06", A, "M", S(S1="N", S5="N"),
           "stroke unit at admission (0 s) in; 23:59:59 in; lives in 101 (region 1084): region row "
           "is the hospital's 1081",
           "H101", 101, over={"stroke_unit_at": "+00:00:00",
                              "dysphagia_screening_at": "+23:59:59"}),
    stroke("S-SW07", "2025-03-10 08:00:30", "F", S(S1="D", S5="N"),
           "no truncation to minutes: 24 h 15 s is out (truncated it would be exactly 24 h); 24 h "
           "to the second is in",
           "H101", 851, over={"stroke_unit_at": "2025-03-11 08:00:45",
                              "dysphagia_screening_at": "2025-03-11 08:00:30"}),
    # thrombolysis: STROKE_02/03/07
    stroke("S-ST01", A, "F", S(S2="N", S3="N", S7="60"), "needle at exactly 60 min is in",
           "H101", 851, over={"thrombolysis": "ja", "thrombolysis_at": "+01:00:00"}),
    stroke("S-ST02", A, "M", S(S2="N", S3="D", S7="60.0166667"), "60 min 1 s is out of STROKE_03",
           "H101", 851, over={"thrombolysis": "ja", "thrombolysis_at": "+01:00:01"}),
    stroke("S-ST03", A, "F", S(S2="N", S3="N", S7="25"), "25 min",
           "H101", 851, over={"thrombolysis": "ja", "thrombolysis_at": "+00:25:00"}),
    stroke("S-ST04", A, "M", S(S2="N", S3="M", S7="-"),
           "ja without a time: STROKE_03 missing, not in the median",
           "H101", 851, over={"thrombolysis": "ja"}),
    stroke("S-ST05", A, "F", S(S2="N", S3="N", S7="30"), "' Ja ' is ja (trimmed, case ignored)",
           "H101", 851, over={"thrombolysis": " Ja ", "thrombolysis_at": "+00:30:00"}),
    stroke("S-ST06", A, "M", S(S2="M"), "uoplyst: STROKE_02 missing; not in STROKE_03",
           "H101", 851, over={"thrombolysis": "uoplyst"}),
    stroke("S-ST07", A, "F", S(S2="M"), "empty ja/nej = uoplyst: missing", "H101", 851,
           over={"thrombolysis": ""}),
    stroke("S-ST08", A, "M", S(S2="-", S3="-", S7="-"),
           "DI61 is in the stroke population but not in STROKE_02/03/07",
           "H101", 851, over={"diagnosis": "DI61", "thrombolysis": "ja",
                              "thrombolysis_at": "+00:20:00"}),
    stroke("S-ST09", A, "F", S(S2="-"), "DI64 not in STROKE_02", "H101", 851,
           over={"diagnosis": "DI64"}),
    stroke("S-ST10", A, "M", OUT_S,
           "thrombolysis_at before admission_at breaks a rule: quarantined, counted nowhere",
           "H101", 851, over={"thrombolysis": "ja", "thrombolysis_at": "-00:01:00"}),
    stroke("S-ST11", A, "F", S(S2="D"), "a time with thrombolysis = nej: not in STROKE_03/07",
           "H101", 851, over={"thrombolysis": "nej", "thrombolysis_at": "+00:40:00"}),
    stroke("S-ST12", A, "M", S(S2="N", S3="D", S7="61"), "'JA' is ja; 61 min out",
           "H101", 851, over={"thrombolysis": "JA", "thrombolysis_at": "+01:01:00"}),
    stroke("S-ST13", A, "F", S(S2="N", S3="N", S7="10"),
           "10 min; six values, median = mean of 30 and 60 = 45",
           "H101", 851, over={"thrombolysis": "ja", "thrombolysis_at": "+00:10:00"}),
    # --- SE: STROKE_04 exclusions, H102 (1081), March 2025 ------------------------------------
    stroke("S-SE01", A, "F", S(S4="-"), "discharge at exactly 48 h: excluded", "H102", 851,
           over={"discharge_at": "+48:00:00"}),
    stroke("S-SE02", A, "M", S(S4="N"), "discharge at 48 h 1 s: not excluded", "H102", 851,
           over={"discharge_at": "+48:00:01"}),
    stroke("S-SE03", A, "F", S(S4="-", S6="N"),
           "death on admission date + 2 d excludes (discharge 50 h does not)",
           "H102", 851, over={"discharge_at": "+50:00:00", "death_date": "2025-03-12"}),
    stroke("S-SE04", A, "M", S(S4="M", S6="N"),
           "death on admission date + 3 d does not exclude; physio empty: missing",
           "H102", 851, over={"discharge_at": "+49:00:00", "death_date": "2025-03-13",
                              "physio_assessment_at": ""}),
    stroke("S-SE05", A, "F", S(S4="-", S6="N"), "both exclusions at once: excluded once",
           "H102", 851, over={"discharge_at": "+24:00:00", "death_date": "2025-03-11"}),
    stroke("S-SE06", "2025-03-10 23:30", "M", S(S4="N"),
           "physio at exactly 48 h in; discharge 48 h 30 min not excluded",
           "H102", 851, over={"discharge_at": "+48:30:00", "physio_assessment_at": "+48:00:00"}),
    stroke("S-SE07", A, "F", S(S4="D"), "physio 48 h 1 s: out", "H102", 851,
           over={"physio_assessment_at": "+48:00:01"}),
    stroke("S-SE08", A, "M", S(S4="D"), "physio before admission: valid, misses the window", "H102",
           851,
           over={"physio_assessment_at": "-01:00:00"}),
    stroke("S-SE09", A, "F", S(S4="N"), "no discharge yet: not excluded", "H102", 851,
           over={"discharge_at": ""}),
    stroke("S-SE10", "2025-03-10 23:30", "M", S(S4="-", S6="N"),
           "death on admission DATE + 2 (only ~25 h after a late admission) excludes: the rule is "
           "on dates",
           "H102", 851, over={"discharge_at": "", "death_date": "2025-03-12"}),
    # --- SM: STROKE_06 follow-up and 30-day window, H201 (1082) --------------------------------
    stroke("S-SM01", "2025-12-01 23:59", "F", S(S6="D"),
           "admission date + 30 = cutoff 2025-12-31: has follow-up",
           "H201", 751),
    stroke("S-SM02", "2025-12-02 00:00", "M", S(S6="-"),
           "admission date + 30 = 2026-01-01 > cutoff: no follow-up",
           "H201", 751),
    stroke("S-SM03", "2025-11-01 10:00", "F", S(S6="N"), "death on day 30: within 30 days", "H201",
           751,
           over={"death_date": "2025-12-01"}),
    stroke("S-SM04", "2025-11-01 10:00", "M", S(S6="D"), "death on day 31: outside", "H201", 751,
           over={"death_date": "2025-12-02"}),
    stroke("S-SM05", "2025-11-01 10:00", "M", S(S4="-", S6="N"),
           "death on day 0: within; STROKE_04 excluded",
           "H201", 751, over={"death_date": "2025-11-01", "discharge_at": "",
                              "physio_assessment_at": ""}),
    stroke("S-SM06", "2025-12-31 20:00", "F", S(S4="M", S6="-"),
           "event at 23:59:59 on the extract date is allowed (date part compared); no follow-up",
           "H201", 751,
           over={"dysphagia_screening_at": "2025-12-31 23:59:59", "physio_assessment_at": "",
                 "discharge_at": ""}),
    # --- SG: age from CPR and the century rule, H202 (1082), admitted 2025-06-15 --------------
    stroke("S-SG01", "2025-06-15 12:00", "F", B,
           "born 2007-06-15 (digit 9, YY 07 <= 36 -> 20YY): 18 on the day",
           "H202", 751, birth="2007-06-15", d7=9),
    stroke("S-SG02", "2025-06-15 12:00", "M", OUT_S,
           "born 2007-06-16 (digit 9): 17, not in the population",
           "H202", 751, birth="2007-06-16", d7=9),
    stroke("S-SG03", "2025-06-15 12:00", "F", B, "same DDMMYY with digit 3 -> 1907: 118, in",
           "H202", 751,
           birth="1907-06-16", d7=3),
    stroke("S-SG04", "2025-06-15 12:00", "M", OUT_S, "digit 5, YY 07 <= 57 -> 2007: 17, out",
           "H202", 751,
           birth="2007-06-16", d7=5),
    stroke("S-SG05", "2025-06-15 12:00", "M", B,
           "digit 4 with a hyphen, 2007-06-15: 18, in (hyphen ignored)",
           "H202", 751, birth="2007-06-15", d7=4, hyphen=True),
    stroke("S-SG06", "2025-06-15 12:00", "M", S(S6="N"),
           "digit 5, YY 58 > 57 -> 1858: 167, in; dies day 5",
           "H202", 751, birth="1858-06-16", d7=5,
           over={"death_date": "2025-06-20", "discharge_at": "2025-06-19 10:00"}),
    stroke("S-SG07", "2025-06-15 12:00", "F", B, "digit 4, YY 37 > 36 -> 1937: 88, in", "H202", 751,
           birth="1937-06-16", d7=4),
    stroke("S-SG08", "2025-06-15 12:00", "M", B, "digit 9, YY 37 > 36 -> 1937: 88, in", "H202", 751,
           birth="1937-06-16", d7=9),
    stroke("S-SG09", "2025-06-15 12:00", "F", OUT_S,
           "digit 4, YY 36 -> 2036: born after admission, counted nowhere",
           "H202", 751, birth="2036-06-16", d7=4),
    stroke("S-SG10", "2025-06-15 12:00", "M", OUT_S,
           "290200 with digit 2 is 1900-02-29, not a real date: quarantined",
           "H202", 751, birth="1900-02-29", d7=2),
    stroke("S-SG11", "2025-06-15 12:00", "F", B,
           "290200 with digit 4 is 2000-02-29, a real date: 25, in",
           "H202", 751, birth="2000-02-29", d7=4),
    stroke("S-SG12", "2025-06-15 12:00", "M", OUT_S,
           "digit 7, YY 57 -> 2057: not born yet, counted nowhere",
           "H202", 751, birth="2057-06-16", d7=7),
    # --- SC: records that change or vanish between extracts, H301/H302 (1083) ------------------
    stroke("S-SC01", "2025-05-10 08:00", "F", S(S1="N"),
           "06-30 had no stroke unit time; the 12-31 correction wins",
           "H301", 461, early={"stroke_unit_at": ""}, over={"stroke_unit_at": "+01:00:00"}),
    stroke("S-SC02", "2025-04-10 08:00", "M", B,
           "admission corrected from 2025-05-10 to 2025-04-10: counted in April only",
           "H301", 461, early={"admission_at": "2025-05-10 08:00",
                               "stroke_unit_at": "2025-05-10 10:00",
                               "imaging_at": "2025-05-10 08:30",
                               "dysphagia_screening_at": "2025-05-10 12:00",
                               "physio_assessment_at": "2025-05-11 09:00",
                               "discharge_at": "2025-05-20 08:00"}),
    stroke("S-SC03", "2025-05-12 08:00", "F", B,
           "only in the 06-30 extract (absent from 12-31): stays current if extracts are deltas "
           "(ambiguity A1)",
           "H302", 461, in_late=False),
    stroke("S-SC04", "2025-05-14 08:00", "M", S(S1="N"),
           "12-31 correction breaks a rule (discharge before admission): quarantined, the 06-30 "
           "version stays",
           "H301", 461, late={"discharge_at": "2025-05-14 07:00", "stroke_unit_at": ""}),
    stroke("S-SC05", "2025-05-16 08:00", "F", S(S1="N"),
           "twice in the 12-31 file: the first row loads, the second (no stroke unit) is "
           "quarantined",
           "H301", 461, in_early=False, dup_late={"stroke_unit_at": ""}),
    stroke("S-SC06", "2025-12-20 10:00", "M", OUT_S,
           "discharge 2026-01-01 lies after the extract date: quarantined",
           "H301", 461, over={"discharge_at": "2026-01-01 09:00"}),
    stroke("S-SC07", "2025-05-18 08:00", "M", S(S2="N", S3="N", S7="30"),
           "06-30 said nej; the 12-31 correction says ja at 30 min", "H301", 461,
           early={"thrombolysis": "nej", "thrombolysis_at": ""},
           over={"thrombolysis": "ja", "thrombolysis_at": "+00:30:00"}),
    # --- SP: period boundaries and naive local time, H401 (1084) -------------------------------
    stroke("S-SP01", "2025-01-31 23:59:59", "F", B, "last second of January: month 2025-01", "H401",
           101),
    stroke("S-SP02", "2025-02-01 00:00:00", "M", B, "first second of February: month 2025-02",
           "H401", 101),
    stroke("S-SP03", "2025-10-25 03:00", "F", B,
           "naive local clock: 03:00 to 03:00 across the October DST change is 24 h on the clock "
           "(25 h elapsed)",
           "H401", 101, over={"stroke_unit_at": "2025-10-26 03:00"}),
    stroke("S-SP04", "2025-03-29 03:00", "M", S(S5="D"),
           "naive local clock: 24 h 30 min on the clock across the March change (23 h 30 min "
           "elapsed): out",
           "H401", 101, over={"dysphagia_screening_at": "2025-03-30 03:30"}),
    # --- SX: the --cutoff run, H403 (1084) --------------------------------------------------
    stroke("S-SX01", "2025-05-31 12:00", "F", B,
           "cutoff 06-30 run: 05-31 + 30 = 06-30, has follow-up", "H403", 101),
    stroke("S-SX02", "2025-06-01 00:00", "M", B, "cutoff 06-30 run: no follow-up", "H403", 101),
    stroke("S-SX03", "2025-06-30 23:59", "F", S(S4="M"),
           "cutoff 06-30 run: counted (period date = cutoff)", "H403", 101,
           over={"stroke_unit_at": "2025-06-30 23:59:59",
                 "dysphagia_screening_at": "2025-06-30 23:59:59",
                 "imaging_at": "", "physio_assessment_at": "", "discharge_at": ""}),
    stroke("S-SX04", "2025-07-01 00:00", "M", B,
           "cutoff 06-30 run: period date after the cutoff, not counted",
           "H403", 101),
    # --- SL: stroke records for LPR completeness, H203 (1082) ---------------------------------
    stroke("S-SL01", "2025-08-11 08:00", "F", B, "LPR 08-10: +1 day", "H203", 751, patient="pL01"),
    stroke("S-SL02", "2025-08-12 08:00", "M", B, "LPR 08-10: +2 days", "H203", 751, patient="pL02"),
    stroke("S-SL03", "2025-08-09 23:59", "F", B, "LPR 08-10 00:30: -1 day", "H203", 751,
           patient="pL03"),
    stroke("S-SL04", "2025-08-10 10:00", "M", B, "same patient and day but hospital H204", "H204",
           751, patient="pL04"),
    stroke("S-SL05", "2025-08-10 12:00", "F", B, "two LPR rows that day", "H203", 751,
           patient="pL05"),
    stroke("S-SL07", "2025-05-20 10:00", "M", B, "LPR contact repeated in both LPR extracts",
           "H203", 751,
           patient="pL07"),
    stroke("S-SL10", "2025-08-10 09:00", "F", S(S2="-"),
           "registry diagnosis DI61 matches LPR DI63 (any diagnosis)",
           "H203", 751, patient="pL10", over={"diagnosis": "DI61"}),
    stroke("S-SL11", "2025-08-10 09:00", "M", OUT_S,
           "quarantined (discharge before admission): matches nothing",
           "H203", 751, patient="pL11", over={"discharge_at": "2025-08-10 08:00"}),
    stroke("S-SL12", "2025-09-01 01:00", "F", B, "LPR 08-31 23:00: +1 day across the month end",
           "H203", 751,
           patient="pL12"),
    stroke("S-SL13", "2025-08-21 09:00", "M", B, "LPR on 08-20 and 08-21: both contacts match",
           "H203", 751,
           patient="pL13"),
    stroke("S-SL14", "2025-08-15 09:00", "F", B,
           "registry CPR has a hyphen, LPR's has not: same patient",
           "H203", 751, patient="pL14", hyphen=True),
    stroke("S-SL15", "2025-06-20 09:00", "M", B,
           "was 2025-06-10 in 06-30; corrected to 06-20: LPR 06-10 no longer matches",
           "H203", 751, patient="pL15",
           early={"admission_at": "2025-06-10 09:00", "stroke_unit_at": "2025-06-10 11:00",
                  "imaging_at": "2025-06-10 09:30", "dysphagia_screening_at": "2025-06-10 13:00",
                  "physio_assessment_at": "2025-06-11 10:00", "discharge_at": "2025-06-20 08:00"}),
    # --- AM: ambiguity probes, H205 (1082), residence 230 (1084), September 2025 --------------
    # Flags follow the reading the pipeline documents (see tests/test_cleanroom_indicators.py).
    stroke("S-AM01", "2025-09-10 08:00", "F", OUT_S,
           "A3: 'uoplyst' in a datetime numerator field is not a datetime: quarantined (not "
           "'missing')",
           "H205", 230, over={"stroke_unit_at": "uoplyst"}),
    stroke("S-AM02", "2025-09-10 08:00", "M", S(S4="-", S6="D"),
           "A4: death the day before admission is valid data: excluded from STROKE_04 (<= adm + "
           "2), "
           "not a death within 0..30 days", "H205", 230, over={"death_date": "2025-09-09",
                                                               "discharge_at": ""}),
    stroke("S-AM03", "2025-09-10 08:00", "F", OUT_S,
           "A12: a space after the 6th CPR digit is not the contract's hyphen: quarantined",
           "H205", 230, hyphen=" "),
    stroke("S-AM04", "2025-09-10 08:00", "M", OUT_S,
           "a date alone in a datetime column breaks a rule: quarantined",
           "H205", 230, over={"stroke_unit_at": "2025-09-10"}),
    stroke("S-AM05", "2025-09-10 08:00", "F", S(S2="N", S3="N", S7="30.5"),
           "A5: 30 min 30 s counts as 30.5 minutes (exact, like the windows)", "H205", 230,
           over={"thrombolysis": "ja", "thrombolysis_at": "+00:30:30"}),
    stroke("S-AM06", "2025-09-10 08:00", "M", S(S2="N", S3="N", S7="40"),
           "40 min: median (30.5 + 40) / 2 = 35.25",
           "H205", 230, over={"thrombolysis": "ja", "thrombolysis_at": "+00:40:00"}),
    stroke("S-AM07", "2025-09-11 08:00", "F", B, "ISO 8601 'T' separator in admission_at", "H205",
           230,
           in_early=False, late={"admission_at": "2025-09-11T08:00"}),
    stroke("S-AM08", "2025-08-09 10:00", "M", OUT_S,
           "17 on admission (born 2007-08-10): outside the stroke population, but see the LPR "
           "probe pL20",
           "H205", 230, patient="pL20", birth="2007-08-10", d7=4),
]

HA = "2025-05-05 08:00"
HIP = [
    # --- HA: age >= 65 and 29 February, H502 (1085) -----------------------------------------
    hip("H-HA01", "2025-02-28 10:00", "F", OUT_H, "born 1960-02-29: still 64 on 2025-02-28", "H502",
        265,
        birth="1960-02-29", d7=0),
    hip("H-HA02", "2025-03-01 10:00", "M", HB, "born 1960-02-29: 65 on 1 March in a non-leap year",
        "H502", 265,
        birth="1960-02-29", d7=1),
    hip("H-HA03", "2025-06-15 10:00", "F", HB, "digit 4, YY 60 > 36 -> 1960-06-15: 65 on the day",
        "H502", 265,
        birth="1960-06-15", d7=4),
    hip("H-HA04", "2025-06-15 10:00", "M", OUT_H, "digit 9, YY 60 -> 1960-06-16: 64", "H502", 265,
        birth="1960-06-16", d7=9),
    hip("H-HA05", "2025-06-15 10:00", "F", H(H5="N"),
        "digit 5, YY 60 > 57 -> 1860: 165, in; dies day 10 after discharge",
        "H502", 265, birth="1860-06-16", d7=5,
        over={"discharge_at": "2025-06-20 10:00", "death_date": "2025-06-25"}),
    hip("H-HA06", "2025-06-15 10:00", "M", OUT_H, "digit 2 -> 1960-06-16: 64", "H502", 265,
        birth="1960-06-16", d7=2),
    hip("H-HA07", "2025-06-15 10:00", "M", HB, "born 1930: 94 (85+ without an event)", "H502", 265,
        birth="1930-06-16", d7=1),
    # --- HW: windows, exclusions, discharged alive, H501 (1085), admitted 2025-05-05 ----------
    hip("H-HW01", HA, "F", HB, "surgery at exactly 24 h", "H501", 265,
        over={"surgery_at": "+24:00:00"}),
    hip("H-HW02", HA, "M", H(H1="D"), "surgery at 24 h 1 s", "H501", 265,
        over={"surgery_at": "+24:00:01"}),
    hip("H-HW03", HA, "F", H(H1="-", H2="-"),
        "no surgery: out of HIP_01/02 (no missing there); HIP_03/04 in",
        "H501", 265, over={"surgery_at": "", "mobilised_at": ""}),
    hip("H-HW04", HA, "M", HB, "mobilised at exactly surgery + 24 h", "H501", 265,
        over={"mobilised_at": "s+24:00:00"}),
    hip("H-HW05", HA, "F", H(H2="D"), "mobilised at surgery + 24 h 1 s", "H501", 265,
        over={"mobilised_at": "s+24:00:01"}),
    hip("H-HW06", HA, "M", H(H2="M"), "mobilised empty: missing", "H501", 265,
        over={"mobilised_at": ""}),
    hip("H-HW07", HA, "F", H(H2="D"), "mobilised before surgery: valid, misses the window", "H501",
        265,
        over={"mobilised_at": "s-01:00:00"}),
    hip("H-HW08", HA, "M", H(H2="-", H3="-", H4="-", H5="N"),
        "death on surgery date + 1: HIP_02 excluded; not discharged: out of HIP_03/04", "H501", 265,
        over={"death_date": "2025-05-06", "mobilised_at": "", "discharge_at": ""}),
    hip("H-HW09", HA, "F", H(H3="-", H4="-", H5="N"), "death on surgery date + 2: stays in HIP_02",
        "H501", 265,
        over={"death_date": "2025-05-07", "discharge_at": ""}),
    hip("H-HW10", "2025-05-05 22:00", "M", H(H2="-", H3="-", H4="-", H5="N"),
        "surgery next day: death on surgery date + 1 (= admission date + 2) excludes (anchor is "
        "the surgery date)",
        "H501", 265, over={"surgery_at": "2025-05-06 01:00", "death_date": "2025-05-07",
                           "mobilised_at": "",
                           "discharge_at": ""}),
    hip("H-HW11", HA, "F", H(H3="-", H4="-", H5="N"),
        "death on the discharge date: not discharged alive",
        "H501", 265, over={"discharge_at": "2025-05-15 10:00", "death_date": "2025-05-15"}),
    hip("H-HW12", HA, "M", H(H5="N"), "death the day after discharge: discharged alive", "H501",
        265,
        over={"discharge_at": "2025-05-15 10:00", "death_date": "2025-05-16"}),
    hip("H-HW13", HA, "F", H(H3="-", H4="-"), "not discharged, alive: out of HIP_03/04", "H501",
        265,
        over={"discharge_at": ""}),
    hip("H-HW14", HA, "M", H(H3="M", H4="M"), "CAS empty and rehab plan uoplyst: missing", "H501",
        265,
        over={"cas_at_discharge": "", "rehab_plan": "uoplyst"}),
    hip("H-HW15", HA, "F", H(H4="M"), "CAS 0 is present (not missing); rehab plan empty = uoplyst",
        "H501", 265,
        over={"cas_at_discharge": "0", "rehab_plan": ""}),
    hip("H-HW16", HA, "M", H(H4="D"), "'NEJ' is nej", "H501", 265, over={"rehab_plan": "NEJ",
                                                                         "cas_at_discharge": "6"}),
    hip("H-HW17", HA, "F", HB, "' Ja' is ja", "H501", 265, over={"rehab_plan": " Ja"}),
    hip("H-HW18", HA, "M", HB, "surgery at admission (0 s) is within 24 h", "H501", 265,
        over={"surgery_at": "+00:00:00"}),
    # --- HM: HIP_05 follow-up and window, H503 (1085) -----------------------------------------
    hip("H-HM01", "2025-12-01 23:00", "F", HB, "admission date + 30 = cutoff", "H503", 265,
        over={"surgery_at": "2025-12-02 01:00"}),
    hip("H-HM02", "2025-12-02 00:00", "M", H(H5="-"), "admission date + 30 > cutoff", "H503", 265),
    hip("H-HM03", "2025-11-01 10:00", "F", H(H5="N"), "death on day 30 (after discharge)", "H503",
        265,
        over={"discharge_at": "2025-11-20 10:00", "death_date": "2025-12-01"}),
    hip("H-HM04", "2025-11-01 10:00", "M", HB, "death on day 31", "H503", 265,
        over={"discharge_at": "2025-11-20 10:00", "death_date": "2025-12-02"}),
    hip("H-HM05", "2025-12-31 20:00", "F", H(H2="M", H3="-", H4="-", H5="-"),
        "admitted on the extract date: not discharged, mobilisation not yet recorded", "H503", 265,
        over={"surgery_at": "2025-12-31 22:00", "mobilised_at": "", "discharge_at": ""}),
    # --- HR: HIP_06 (730-day follow-up from the surgery date), H504 (1085), 2024 --------------
    hip("H-HR01", "2024-01-01 00:30", "F", H(H6="N"),
        "surgery 2024-01-01 + 730 = cutoff; reoperation on day 730",
        "H504", 265, birth="1954-01-01", d7=3,
        over={"surgery_at": "2024-01-01 02:00", "reoperation_date": "2025-12-31"}),
    hip("H-HR02", "2024-01-01 01:00", "M", HB, "surgery 2024-01-02 + 730 > cutoff: out of HIP_06",
        "H504", 265,
        birth="1954-01-01", d7=3, over={"surgery_at": "2024-01-02 00:30"}),
    hip("H-HR03", "2024-01-01 08:00", "F", H(H6="N"), "reoperation on the surgery date (day 0)",
        "H504", 265,
        birth="1954-01-01", d7=3, over={"reoperation_date": "2024-01-01"}),
    hip("H-HR04", "2024-01-01 08:00", "M", H(H6="D"),
        "reoperation date before surgery: valid, misses the window",
        "H504", 265, birth="1954-01-01", d7=3, over={"reoperation_date": "2023-12-30"}),
    hip("H-HR05", "2024-01-01 08:00", "F", H(H6="D"), "no reoperation", "H504", 265,
        birth="1954-01-01", d7=3),
    hip("H-HR06", "2024-01-01 08:00", "F", H(H5="N", H6="D"), "dies day 9, after discharge", "H504",
        265,
        birth="1954-01-01", d7=3, over={"discharge_at": "2024-01-08 10:00",
                                        "death_date": "2024-01-10"}),
    hip("H-HR07", "2024-01-01 08:00", "M", H(H5="N", H6="D"), "dies day 14, after discharge",
        "H504", 265,
        birth="1954-01-01", d7=3, over={"discharge_at": "2024-01-12 10:00",
                                        "death_date": "2024-01-15"}),
    # --- HT: time-zone-aware Parquet (the latest hip extract), H302 (1083); text in UTC -------
    hip("H-HT01", "2025-03-30 00:30Z", "F", H(H1="D"),
        "01:30 CET -> 02:30 CEST next day: 25 h on the local clock (24 h elapsed): out", "H302",
        461,
        period="2025-03", over={"surgery_at": "2025-03-31 00:30Z"}),
    hip("H-HT02", "2025-10-25 01:00Z", "M", HB,
        "03:00 CEST -> 02:30 CET next day: 23 h 30 min on the local clock (24 h 30 min "
        "elapsed): in", "H302", 461,
        period="2025-10", over={"surgery_at": "2025-10-26 01:30Z"}),
    hip("H-HT03", "2025-04-30 22:30Z", "F", HB,
        "UTC 04-30 22:30 is local 2025-05-01 00:30: month 2025-05",
        "H302", 461, period="2025-05"),
    hip("H-HT04", "2025-12-31 23:30Z", "M", OUT_H,
        "local 2026-01-01 00:30: after the extract date (and the cutoff): counted nowhere", "H302",
        461,
        period="2026-01", over={"surgery_at": "", "discharge_at": ""}),
    # --- HC: latest wins across formats, H304 (1083) -----------------------------------------
    hip("H-HC01", "2025-04-10 08:00", "F", HB,
        "06-30 CSV said rehab plan nej; the 12-31 Parquet says ja",
        "H304", 461, early={"rehab_plan": "nej"}),
    # --- hip records used by LPR completeness -------------------------------------------------
    hip("H-HL01", "2025-05-05 12:00", "F", HB, "matches LPR DS721 of 05-05", "H303", 461,
        patient="pH01"),
    hip("H-HL05", "2025-02-02 10:00", "M", HB, "LPR at UTC 01-31 23:30 = local 02-01: +1 day",
        "H303", 461,
        patient="pH05"),
    hip("H-HL17", "2025-08-10 10:00", "F", HB, "a hip record does not complete a stroke contact",
        "H203", 751,
        patient="pL17"),
    # --- AM: probes, H205 (1082), residence 230 ------------------------------------------------
    hip("H-AM01", "2025-06-10 08:00", "F", OUT_H,
        "A3: 'uoplyst' in an int numerator field (cas_at_discharge): quarantined (06-30 CSV only: "
        "the Parquet "
        "extract cannot hold the text)", "H205", 230, over={"cas_at_discharge": "uoplyst"},
        in_late=False),
    hip("S-SW01", "2025-09-10 08:00", "M", HB,
        "a record_id used in another registry: registries are independent",
        "H205", 230, patient="pH-AM02"),
]

K = "2025-04-10"
CARDIAC = [
    # --- KD: diagnosis prefix and referred values, H401 (1084), residence 101 ----------------
    cardiac("C-KD01", K, "F", "D1:N D5:D", "DI20 in; referred ja, no municipal record", "H401", 101,
            diagnosis="DI20"),
    cardiac("C-KD02", K, "M", "D1:N D5:D", "sub-code DI214 in", "H401", 101, diagnosis="DI214"),
    cardiac("C-KD03", K, "F", "D1:D D5:-", "DI25 in; nej", "H401", 101, diagnosis="DI25",
            referred="nej"),
    cardiac("C-KD04", K, "M", "D1:- D5:-", "DI26 is not DI20-DI25", "H401", 101, diagnosis="DI26"),
    cardiac("C-KD05", K, "F", "D1:- D5:-", "DI19 out", "H401", 101, diagnosis="DI19"),
    cardiac("C-KD06", K, "M", "D1:M D5:-", "DI50 in; uoplyst: missing", "H401", 101,
            diagnosis="DI50",
            referred="uoplyst"),
    cardiac("C-KD07", K, "F", "D1:M D5:-", "DI501 in; empty = uoplyst", "H401", 101,
            diagnosis="DI501", referred=""),
    cardiac("C-KD08", K, "M", "D1:- D5:-", "DI51 out", "H401", 101, diagnosis="DI51"),
    cardiac("C-KD10", K, "F", "D1:N D5:D", "'JA' is ja", "H401", 101, diagnosis="DI24",
            referred="JA"),
    cardiac("C-KD11", K, "M", "D1:D D5:-", "'Nej ' is nej", "H401", 101, diagnosis="DI22",
            referred="Nej "),
    cardiac("C-KD09", K, "F", "D1:N D5:D",
            "diagnosis ' di21 ' (case/space; ambiguity A9): in if normalised",
            "H402", 101, diagnosis=" di21 "),
    # --- K: DHRD_05, H201 (1082), residence 751; municipal records delivered by 461 -----------
    cardiac("C-K01", K, "F", "D1:N D5:N", "municipal start on day 60", "H201", 751),
    cardiac("C-K02", K, "M", "D1:N D5:D", "municipal start on day 61", "H201", 751),
    cardiac("C-K03", K, "F", "D1:N D5:N", "two municipal referrals in the window: counts once",
            "H201", 751),
    cardiac("C-K04", K, "M", "D1:N D5:D", "no municipal record", "H201", 751),
    cardiac("C-K05", K, "F", "D1:N D5:D",
            "municipal record of the same patient without hospital_record_id: no link",
            "H201", 751, patient="pK05"),
    cardiac("C-K06", "2025-11-01", "M", "D1:N D5:N", "index + 60 = cutoff; start day 9", "H201",
            751),
    cardiac("C-K07", "2025-11-02", "F", "D1:N D5:-", "index + 60 > cutoff", "H201", 751),
    cardiac("C-K08", K, "M", "D1:D D5:-",
            "referred nej: out of DHRD_05 although a municipal record links", "H201", 751,
            referred="nej"),
    cardiac("C-K09", K, "F", "D1:N D5:D", "municipal start the day before the index date", "H201",
            751),
    cardiac("C-K10", K, "M", "D1:N D5:N", "municipal start on the index date (day 0)", "H201", 751),
    cardiac("C-K11", K, "F", "D1:N D5:D", "linked municipal record without a start date", "H201",
            751),
    cardiac("C-K12", K, "M", "D1:N D5:D",
            "municipal start corrected from day 30 to day 70 in the later extract",
            "H201", 751),
    # --- KF: 29 February at 18 and the 1900 leap trap, H202 (1082), 2022 ----------------------
    cardiac("C-KF01", "2022-02-28", "F", "D1:- D5:-", "born 2004-02-29: 17 on 2022-02-28", "H202",
            751,
            birth="2004-02-29", d7=4),
    cardiac("C-KF02", "2022-03-01", "M", "D1:N D5:D", "born 2004-02-29: 18 on 2022-03-01", "H202",
            751,
            birth="2004-02-29", d7=4),
    cardiac("C-KF03", "2022-03-01", "F", "D1:- D5:-",
            "290200 with digit 2 = 1900-02-29: not a date, quarantined",
            "H202", 751, birth="1900-02-29", d7=2),
    cardiac("C-KF04", "2022-03-01", "M", "D1:D D5:-", "290200 with digit 4 = 2000-02-29: 22, in",
            "H202", 751,
            birth="2000-02-29", d7=4, referred="nej"),
    cardiac("C-KF05", "2022-03-02", "F", "D1:N D5:D", "290200 with digit 9 = 2000-02-29: in",
            "H202", 751,
            birth="2000-02-29", d7=9),
    cardiac("C-KF06", "2022-03-01", "M", "D1:D D5:-",
            "290200 with digit 6 (YY <= 57) = 2000-02-29: in", "H202", 751,
            birth="2000-02-29", d7=6, referred="nej"),
]

R = "2025-03-01"
MK = "2025-04-05"
MUNICIPAL = [
    # --- U: DHRD_02-04, delivered by 101 (1084), received 2025-03-01 -------------------------
    municipal("M-U01", R, "D2:N D3:N D4:N", "start day 30; completed; smoker offered", 101,
              start="2025-03-31", end="2025-05-31", completed="ja", smoker="ja", offered="ja"),
    municipal("M-U02", R, "D2:D D3:D D4:D", "start day 31; nej; not offered", 101,
              start="2025-04-01", end="2025-06-01", completed="nej", smoker="ja", offered="nej"),
    municipal("M-U03", R, "D2:M D3:- D4:-", "no start: DHRD_02 missing; DHRD_03/04 need a start",
              101,
              completed="uoplyst", smoker="ja"),
    municipal("M-U04", R, "D2:D D3:M D4:-",
              "start the day before referral (no order rule): misses the window", 101,
              start="2025-02-28", end="2025-04-30", completed="", smoker="nej"),
    municipal("M-U05", R, "D2:N D3:- D4:-",
              "no end date: out of DHRD_03; smoker uoplyst: out of DHRD_04", 101,
              start="2025-03-10", completed="ja", smoker="uoplyst"),
    municipal("M-U06", R, "D2:N D3:N D4:M", "' JA' / 'Ja'; offered uoplyst: missing", 101,
              start="2025-03-10", end="2025-05-10", completed=" JA", smoker="Ja",
              offered="uoplyst"),
    municipal("M-U07", R, "D2:N D3:M D4:-", "start on the referral date (day 0); completed uoplyst",
              101,
              start="2025-03-01", end="2025-04-01", completed="uoplyst", smoker=""),
    municipal("M-U08", R, "D2:N D3:N D4:-",
              "a child's referral counts (no age rule for the municipal part)", 101,
              start="2025-03-05", end="2025-04-05", completed="ja", birth="2015-03-01", d7=4),
    municipal("M-U09", R, "D2:M D3:- D4:-", "end without start: start missing", 101,
              end="2025-04-01", completed="ja", smoker="ja"),
    municipal("M-U10", "2025-11-15", "D2:N D3:- D4:-",
              "+30 = 12-15: within the input's cutoff 12-31, after this registry's own last "
              "extract 11-30 (A2)", 101,
              start="2025-11-20", smoker="nej"),
    municipal("M-U11", "2025-11-01", "D2:N D3:- D4:-", "+30 = 12-01: the same ambiguity A2", 101,
              start="2025-11-05"),
    municipal("M-U12", "2025-10-31", "D2:N D3:- D4:-",
              "+30 = 11-30: follow-up under either reading", 101,
              start="2025-11-02"),
    # --- MK: municipal records linked to the K hospital courses, delivered by 461 (1083) ------
    municipal("M-K01", MK, "D2:D D3:- D4:-", "day 60 after index, 65 after receipt", 461,
              start="2025-06-09",
              hospital_record_id="C-K01"),
    municipal("M-K02", MK, "D2:D D3:- D4:-", "", 461, start="2025-06-10",
              hospital_record_id="C-K02"),
    municipal("M-K03a", MK, "D2:N D3:- D4:-", "", 461, start="2025-04-20",
              hospital_record_id="C-K03"),
    municipal("M-K03b", MK, "D2:N D3:- D4:-", "", 461, start="2025-05-01",
              hospital_record_id="C-K03"),
    municipal("M-K05", MK, "D2:N D3:- D4:-", "no hospital_record_id", 461, start="2025-04-20",
              patient="pK05"),
    municipal("M-K06", "2025-10-20", "D2:N D3:- D4:-", "", 461, start="2025-11-10",
              hospital_record_id="C-K06"),
    municipal("M-K07", "2025-10-20", "D2:N D3:- D4:-", "", 461, start="2025-11-10",
              hospital_record_id="C-K07"),
    municipal("M-K08", MK, "D2:N D3:- D4:-", "", 461, start="2025-04-20",
              hospital_record_id="C-K08"),
    municipal("M-K09", MK, "D2:N D3:- D4:-", "", 461, start="2025-04-09",
              hospital_record_id="C-K09"),
    municipal("M-K10", MK, "D2:N D3:- D4:-", "", 461, start="2025-04-10",
              hospital_record_id="C-K10"),
    municipal("M-K11", MK, "D2:M D3:- D4:-", "", 461, hospital_record_id="C-K11"),
    municipal("M-K12", MK, "D2:D D3:- D4:-",
              "06-30 said start 05-10 (day 30 after index); 11-30 says 06-19", 461,
              start="2025-06-19", hospital_record_id="C-K12",
              early={"rehab_start_date": "2025-05-10"}),
]

Q = "2025-05-15"
GP_ALL_N = "G1:N G2:N G3:N G4:N G5:N"
GP = [
    # --- Q: windows and ages, clinic 009533 (municipality 740 -> region 1082), residence 101 --
    gp("G-Q01", Q, "F", GP_ALL_N, "HbA1c 365 days before; 53 is at target", "009533", 101,
       hba1c_date="2024-05-15", hba1c="53"),
    gp("G-Q02", Q, "M", "G1:D G2:- G3:N G4:N G5:N",
       "HbA1c 366 days before: out, and out of GP_DIAB_02", "009533", 101,
       hba1c_date="2024-05-14"),
    gp("G-Q03", Q, "F", "G1:D G2:- G3:N G4:N G5:N",
       "HbA1c the day after the review: misses the window", "009533", 101,
       hba1c_date="2025-05-16"),
    gp("G-Q04", Q, "M", "G1:M G2:- G3:N G4:N G5:N", "no HbA1c", "009533", 101, hba1c_date="",
       hba1c=""),
    gp("G-Q05", Q, "F", "G1:N G2:D G3:N G4:N G5:N", "HbA1c 54: above target", "009533", 101,
       hba1c="54"),
    gp("G-Q06", Q, "M", "G1:N G2:M G3:N G4:N G5:N",
       "HbA1c date without a value: GP_DIAB_02 missing", "009533", 101,
       hba1c=""),
    gp("G-Q07", Q, "F", "G1:N G2:- G3:N G4:N G5:N", "type 1: not in GP_DIAB_02", "009533", 101,
       diabetes_type="DE10", hba1c="40"),
    gp("G-Q08", Q, "M", GP_ALL_N, "eye exam 730 days before (2024 is a leap year)", "009533", 101,
       eye_exam_date="2023-05-16"),
    gp("G-Q09", Q, "F", "G1:N G2:N G3:D G4:N G5:N", "eye exam 731 days before", "009533", 101,
       eye_exam_date="2023-05-15"),
    gp("G-Q10", Q, "M", "G1:N G2:N G3:M G4:N G5:N", "no eye exam", "009533", 101, eye_exam_date=""),
    gp("G-Q11", Q, "F", GP_ALL_N, "foot exam 365 days before", "009533", 101,
       foot_exam_date="2024-05-15"),
    gp("G-Q12", Q, "M", "G1:N G2:N G3:N G4:D G5:N", "foot exam 366 days before", "009533", 101,
       foot_exam_date="2024-05-14"),
    gp("G-Q13", Q, "F", "G1:N G2:N G3:N G4:M G5:N", "no foot exam", "009533", 101,
       foot_exam_date=""),
    gp("G-Q14", Q, "M", GP_ALL_N, "40 on the review date", "009533", 101, birth="1985-05-15", d7=3),
    gp("G-Q15", Q, "F", "G1:N G2:N G3:N G4:N G5:-", "39: out of GP_DIAB_05", "009533", 101,
       birth="1985-05-16", d7=3),
    gp("G-Q16", Q, "M", "G1:N G2:N G3:N G4:N G5:D", "statin nej", "009533", 101, statin="nej"),
    gp("G-Q17", Q, "F", "G1:N G2:N G3:N G4:N G5:M", "statin uoplyst", "009533", 101,
       statin="uoplyst"),
    gp("G-Q18", Q, "M", "G1:N G2:N G3:N G4:N G5:M", "statin empty", "009533", 101, statin=""),
    gp("G-Q19", Q, "F", "G1:N G2:N G3:N G4:N G5:-", "18 on the review date (digit 4, 2007)",
       "009533", 101,
       birth="2007-05-15", d7=4),
    gp("G-Q20", Q, "M", "G1:- G2:- G3:- G4:- G5:-", "17: not in the population", "009533", 101,
       birth="2007-05-16", d7=4),
    gp("G-Q21", Q, "F", "G1:- G2:- G3:- G4:- G5:-",
       "clinic '9533' is not clinic '009533' (not in clinics.csv)",
       "9533", 101),
    gp("G-Q23", Q, "M", GP_ALL_N, "HbA1c on the review date (day 0)", "009533", 101, hba1c_date=Q),
    # --- QY: year boundary, clinic 012036 (461 -> 1083), residence 461 -----------------------
    gp("G-QY1", "2024-12-31", "F", GP_ALL_N, "31 December: year 2024", "012036", 461,
       hba1c_date="2024-12-01", eye_exam_date="2024-06-01", foot_exam_date="2024-12-01"),
    gp("G-QY2", "2025-01-01", "M", GP_ALL_N, "1 January: year 2025", "012036", 461,
       hba1c_date="2024-12-01", eye_exam_date="2024-06-01", foot_exam_date="2024-12-01"),
    gp("G-QY3", "2025-01-31", "F", GP_ALL_N, "31 January: month 2025-01", "012036", 461,
       hba1c_date="2024-12-01", eye_exam_date="2024-06-01", foot_exam_date="2024-12-01"),
    # --- AM: probe, clinic 022813 (101 -> 1084), residence 230 --------------------------------
    gp("G-AM01", Q, "F", "G1:- G2:- G3:- G4:- G5:-",
       "A3: hba1c 'uoplyst' in an int column: quarantined",
       "022813", 230, hba1c="uoplyst"),
]


@dataclass
class Lpr:
    """One LPR row; `contact` names the (patient, hospital, date) it belongs to."""
    patient: str
    hospital: str
    muni: int
    at: str                 # local naive text, or UTC text ending in 'Z' (Parquet only)
    diagnosis: str
    extract: str            # EARLY (Parquet, UTC) or LATE (CSV, local)
    birth: str = "1970-01-01"
    d7: int = 1
    hyphen: bool = False


LPR_ROWS = [
    Lpr("pL01", "H203", 751, "2025-08-10 09:00", "DI63", LATE),
    Lpr("pL02", "H203", 751, "2025-08-10 09:00", "DI61", LATE),
    Lpr("pL03", "H203", 751, "2025-08-10 00:30", "DI64", LATE),
    Lpr("pL04", "H203", 751, "2025-08-10 11:00", "DI630", LATE),
    Lpr("pL05", "H203", 751, "2025-08-10 02:00", "DI63", LATE),
    Lpr("pL05", "H203", 751, "2025-08-10 20:00", "DI61", LATE),
    Lpr("pL06", "H203", 751, "2025-08-10 09:00", "DI62", LATE),
    Lpr("pL07", "H203", 751, "2025-05-20 08:00Z", "DI63", EARLY),     # 10:00 local (CEST)
    Lpr("pL07", "H203", 751, "2025-05-20 10:00", "DI63", LATE),
    Lpr("pL08", "H203", 751, "2025-08-10 09:00", "DI63", LATE, birth="2007-08-11", d7=4),
    Lpr("pL08b", "H203", 751, "2025-08-10 09:00", "DI63", LATE, birth="2007-08-10", d7=4),
    Lpr("pL10", "H203", 751, "2025-08-10 09:00", "DI63", LATE),
    Lpr("pL11", "H203", 751, "2025-08-10 09:00", "DI63", LATE),
    Lpr("pL12", "H203", 751, "2025-08-31 23:00", "DI63", LATE),
    Lpr("pL13", "H203", 751, "2025-08-20 09:00", "DI63", LATE),
    Lpr("pL13", "H203", 751, "2025-08-21 08:00", "DI63", LATE),
    Lpr("pL14", "H203", 751, "2025-08-15 08:00", "DI63", LATE),
    Lpr("pL15", "H203", 751, "2025-06-10 08:00", "DI63", LATE),
    Lpr("pL17", "H203", 751, "2025-08-10 09:00", "DI63", LATE, birth="1950-01-01"),
    Lpr("pL20", "H205", 230, "2025-08-10 09:00", "DI63", LATE),
    Lpr("pH01", "H303", 461, "2025-05-05 10:00", "DS721", LATE, birth="1955-01-01", d7=2),
    Lpr("pH02", "H303", 461, "2025-05-06 10:00", "DS7201", LATE, birth="1955-01-01", d7=2),
    Lpr("pH03", "H303", 461, "2025-05-06 10:00", "DS723", LATE, birth="1955-01-01", d7=2),
    Lpr("pH04", "H303", 461, "2025-05-06 10:00", "DS721", LATE, birth="1960-05-07", d7=2),
    Lpr("pH04b", "H303", 461, "2025-05-06 10:00", "DS721", LATE, birth="1960-05-06", d7=2),
    Lpr("pH05", "H303", 461, "2025-01-31 23:30Z", "DS720", EARLY, birth="1955-01-01", d7=2),
]

# Hand-decided completeness contacts: (indicator, hospital, local month, flag, why).
LPR_CONTACTS = [
    ("CS", "H203", "2025-08", "N", "pL01: registry 08-11 is +1 day"),
    ("CS", "H203", "2025-08", "D", "pL02: registry +2 days"),
    ("CS", "H203", "2025-08", "N", "pL03: registry 08-09 23:59 is -1 day (dates, not hours)"),
    ("CS", "H203", "2025-08", "D", "pL04: DI630 counts by prefix; registry record is at H204"),
    ("CS", "H203", "2025-08", "N", "pL05: two rows the same day are one contact"),
    ("CS", "H203", "2025-05", "N", "pL07: the same contact in both LPR extracts is one"),
    ("CS", "H203", "2025-08", "D", "pL08b: 18 on the LPR date, no registry record"),
    ("CS", "H203", "2025-08", "N", "pL10: registry diagnosis DI61 (any diagnosis)"),
    ("CS", "H203", "2025-08", "D", "pL11: the registry record was quarantined"),
    ("CS", "H203", "2025-08", "N", "pL12: 08-31 vs registry 09-01, counted in August"),
    ("CS", "H203", "2025-08", "N", "pL13: 08-20 contact, registry 08-21"),
    ("CS", "H203", "2025-08", "N", "pL13: 08-21 contact, registry 08-21"),
    ("CS", "H203", "2025-08", "N", "pL14: hyphen in one CPR only"),
    ("CS", "H203", "2025-06", "D", "pL15: the current registry record is 06-20"),
    ("CS", "H203", "2025-08", "D", "pL17: only a hip record matches"),
    # not counted: pL06 (DI62), pL08 (17 on the LPR date)
    ("CS", "H205", "2025-08", "N",
     "A7 probe pL20: 18 on the LPR date; the registry record of the day before (aged 17, outside "
     "the stroke "
     "population) is 'a current stroke record (any diagnosis)'"),
    ("CH", "H303", "2025-05", "N", "pH01: hip record the same day"),
    ("CH", "H303", "2025-05", "D", "pH02: DS7201 by prefix, no record"),
    ("CH", "H303", "2025-05", "D", "pH04b: 65 on the LPR date, no record"),
    ("CH", "H303", "2025-02", "N",
     "pH05: UTC 01-31 23:30 = local 02-01 00:30; hip record 02-02 is +1 day"),
    # not counted: pH03 (DS723), pH04 (64 on the LPR date)
]

ALL_CASES = STROKE + HIP + CARDIAC + MUNICIPAL + GP


# --------------------------------------------------------------------------- writing

def _utc(text: str) -> datetime:
    """A case's text as an aware UTC instant: 'Z' text is UTC, other text is Danish local time."""
    if text.endswith("Z"):
        return _dt(text).replace(tzinfo=timezone.utc)
    return _dt(text).replace(tzinfo=CPH).astimezone(timezone.utc)


def _local_text(text: str) -> str:
    return _fmt(_utc(text).astimezone(CPH).replace(tzinfo=None)) if text.endswith("Z") else text


COLUMNS = {
    "stroke": ["record_id", "cpr", "sex", "municipality_code", "hospital_code", "admission_at",
               "diagnosis",
               "stroke_unit_at", "imaging_at", "thrombolysis", "thrombolysis_at",
               "dysphagia_screening_at",
               "physio_assessment_at", "sss_score", "prestroke_mrs", "discharge_at", "death_date"],
    "hipfracture": ["record_id", "cpr", "sex", "municipality_code", "hospital_code", "admission_at",
                    "diagnosis",
                    "surgery_at", "asa_score", "new_mobility_score", "mobilised_at",
                    "cas_at_discharge",
                    "rehab_plan", "discharge_at", "reoperation_date", "death_date"],
    "cardiac_rehab_hospital": ["record_id", "cpr", "sex", "municipality_code", "hospital_code",
                               "diagnosis",
                               "index_date", "referred", "referral_date"],
    "cardiac_rehab_municipal": ["record_id", "hospital_record_id", "cpr", "municipality_code",
                                "referral_received_date", "rehab_start_date", "rehab_end_date",
                                "completed",
                                "smoker", "smoking_cessation_offered"],
    "general_practice_diabetes": ["record_id", "cpr", "sex", "municipality_code", "clinic_code",
                                  "review_date",
                                  "diabetes_type", "hba1c_date", "hba1c", "eye_exam_date",
                                  "foot_exam_date",
                                  "statin"],
}
DATETIME_COLS = {"admission_at", "stroke_unit_at", "imaging_at", "thrombolysis_at",
                 "dysphagia_screening_at",
                 "physio_assessment_at", "discharge_at", "surgery_at", "mobilised_at"}
DATE_COLS = {"death_date", "reoperation_date", "index_date", "referral_date",
             "referral_received_date",
             "rehab_start_date", "rehab_end_date", "review_date", "hba1c_date", "eye_exam_date",
             "foot_exam_date"}
INT_COLS = {"municipality_code", "sss_score", "prestroke_mrs", "asa_score", "new_mobility_score",
            "cas_at_discharge", "hba1c"}


def _latest_date(row: dict) -> str:
    dates = [_local_text(v)[:10] for k,
             v in row.items() if (k in DATETIME_COLS or k in DATE_COLS) and v]
    return max(dates) if dates else "0000-00-00"


def _rows(cases, patients, registry, extract):
    """The rows of one extract, in case order (duplicates right after their first row)."""
    last = MUNI_LATE if registry == "cardiac_rehab_municipal" else LATE
    out = []
    for c in cases:
        if c.registry != registry:
            continue
        base = dict(c.fields)
        if extract == EARLY:
            row = {**base, **(c.early or {})}
            wanted = c.in_early if c.in_early is not None else _latest_date(row) <= EARLY
            if not wanted:
                continue
            assert _latest_date(row) <= EARLY or c.rid in ("S-SC06",), (c.rid, "early version "
                                                                               "after 06-30")
        else:
            assert extract == last
            if not c.in_late:
                continue
            row = {**base, **(c.late or {})}
        row["cpr"] = patients.cpr(c.patient or c.rid, c.birth, c.d7, c.hyphen)
        out.append(row)
        if extract == last and c.dup_late:
            out.append({**row, **c.dup_late})
    return out


def _write_csv(path: Path, columns, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})


def _write_parquet(path: Path, columns, rows):
    """Typed Parquet with time-zone-aware (UTC) timestamps."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays, fields = [], []
    for col in columns:
        vals = [r.get(col, "") for r in rows]
        if col in DATETIME_COLS:
            typ = pa.timestamp("us", tz="UTC")
            data = [_utc(v) if v else None for v in vals]
        elif col in DATE_COLS:
            typ = pa.date32()
            data = [date.fromisoformat(v) if v else None for v in vals]
        elif col in INT_COLS:
            typ = pa.int64()
            data = [int(v) if v != "" else None for v in vals]
        else:
            typ = pa.string()
            data = [v if v != "" else None for v in vals]
        arrays.append(pa.array(data, type=typ))
        fields.append(pa.field(col, typ))
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_arrays(arrays, schema=pa.schema(fields)), path)


def build_input(root: Path, cases=None, lpr_rows=None, patients: Patients | None = None) -> Path:
    """Write the clean-room input folder under `root` and return it.

    `cases` / `lpr_rows` default to every case; a registry without cases gets no folder.
    Pass `patients` to keep the generated CPR numbers (for a leak check; never print them).
    """
    root = Path(root)
    cases = ALL_CASES if cases is None else cases
    lpr_rows = LPR_ROWS if lpr_rows is None else lpr_rows
    shutil.copytree(REFERENCE, root / "reference")
    patients = Patients() if patients is None else patients
    for registry in ("stroke", "hipfracture", "cardiac_rehab_hospital", "cardiac_rehab_municipal",
                     "general_practice_diabetes"):
        if not any(c.registry == registry for c in cases):
            continue
        cols = COLUMNS[registry]
        last = MUNI_LATE if registry == "cardiac_rehab_municipal" else LATE
        early = _rows(cases, patients, registry, EARLY)
        late = _rows(cases, patients, registry, last)
        early = [{**r, **{k: _local_text(v) for k,
                          v in r.items() if k in DATETIME_COLS and v}} for r in early]
        if early:
            _write_csv(root / registry / f"{registry}_{EARLY}.csv", cols, early)
        if registry == "hipfracture":
            _write_parquet(root / registry / f"{registry}_{last}.parquet", cols, late)
        else:
            _write_csv(root / registry / f"{registry}_{last}.csv", cols, late)
    # LPR: the first extract is time-zone-aware Parquet, the second a CSV in local time.
    lpr_cols = ["cpr", "hospital_code", "municipality_code", "admission_at", "action_diagnosis"]
    for extract in (EARLY, LATE):
        rows = [{"cpr": patients.cpr(r.patient, r.birth, r.d7, r.hyphen),
                 "hospital_code": r.hospital,
                 "municipality_code": str(r.muni), "admission_at": r.at,
                 "action_diagnosis": r.diagnosis}
                for r in lpr_rows if r.extract == extract]
        if not rows:
            continue
        if extract == EARLY:
            _write_parquet(root / "lpr" / f"lpr_{extract}.parquet", lpr_cols, rows)
        else:
            _write_csv(root / "lpr" / f"lpr_{extract}.csv", lpr_cols, rows)
    return root


# --------------------------------------------------------------------------- expectations

def _reference():
    def read(name):
        with (REFERENCE / name).open(encoding="cp1252") as fh:
            text = fh.read()
        delim = ";" if text.splitlines()[0].count(";") else ","
        return list(csv.DictReader(text.splitlines(), delimiter=delim))
    hosp = {r["hospital_code"]: r["region_code"] for r in read("hospitals.csv")}
    muni = {r["municipality_code"]: r["region_code"] for r in read("municipalities.csv")}
    clinic = {r["clinic_code"]: r["municipality_code"] for r in read("clinics.csv")}
    return hosp, muni, clinic


def _units(c: Case, hosp, muni, clinic):
    f = c.fields
    if c.registry == "cardiac_rehab_municipal":
        m = str(f["municipality_code"])
        return [("national", "DK"), ("region", muni[m]), ("municipality", m)]
    if c.registry == "general_practice_diabetes":
        k = f["clinic_code"]
        return [("national", "DK"), ("region", muni[clinic[k]]), ("clinic", k),
                ("municipality", str(f["municipality_code"]))]
    h = f["hospital_code"]
    return [("national", "DK"), ("region", hosp[h]), ("hospital", h), ("municipality",
                                                                       str(f["municipality_code"]))]


PERIOD_FIELD = {"stroke": "admission_at", "hipfracture": "admission_at",
                "cardiac_rehab_hospital": "index_date",
                "cardiac_rehab_municipal": "referral_received_date",
                "general_practice_diabetes": "review_date"}


def expected_rows(cutoff_filter=None):
    """Sum the hand flags: {(indicator, period_type, period, level, unit): [num, den, missing]}.

    STROKE_07 collects the minute values instead: [values].
    `cutoff_filter(case) -> flags or None` lets a run with another cutoff re-decide flags by hand.
    """
    hosp, muni, clinic = _reference()
    out: dict = defaultdict(lambda: [0, 0, 0])
    med: dict = defaultdict(list)
    for c in ALL_CASES:
        flags = c.flag_map()
        if cutoff_filter is not None:
            flags = cutoff_filter(c, flags)
            if flags is None:
                continue
        if set(flags.values()) == {"-"}:
            continue
        month = c.period or c.fields[PERIOD_FIELD[c.registry]][:7]
        for code, flag in flags.items():
            ind = INDICATORS[c.registry][code]
            for level, unit in _units(c, hosp, muni, clinic):
                for ptype, period in (("year", month[:4]), ("month", month)):
                    key = (ind, ptype, period, level, unit)
                    if code == "S7":
                        if flag != "-":
                            med[key].append(float(flag))
                        continue
                    if flag == "-":
                        continue
                    cell = out[key]
                    cell[1] += 1
                    cell[0] += flag == "N"
                    cell[2] += flag == "M"
    for ind_code, h, month, flag, _why in LPR_CONTACTS:
        ind = INDICATORS["lpr"][ind_code]
        for level, unit in (("national", "DK"), ("region", hosp[h]), ("hospital", h)):
            for ptype, period in (("year", month[:4]), ("month", month)):
                cell = out[(ind, ptype, period, level, unit)]
                cell[1] += 1
                cell[0] += flag == "N"
    return dict(out), dict(med)
