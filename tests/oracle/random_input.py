"""Small random inputs within and around the contract's rules, for pipeline-vs-oracle runs.

Values cluster where rules and windows change their answer: ages 17/18 and 64/65, 29 February
births, gaps of exactly 24 h, 24 h 30 s, 60 min, 48 h, dates N and N+1 days apart, answers in
any case, codes just outside their domain, repeated record_ids within and across extracts.
Every example also carries a death and a survivor in each case-mix category (the catalogue
stops a run whose category has records but no events). Three inputs with their own tests are
left out: zone-aware Parquet times, CPR-shaped record_ids and unbalanced quotes.

The drawn example prints as a summary only: it holds CPR numbers.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random

from hypothesis import strategies as st

from tests.oracle.boundary import Patients, born_aged, case_mix_patterns, raw_cpr

E1, E2 = dt.date(2026, 6, 30), dt.date(2026, 9, 30)
DAY0 = dt.date(2026, 3, 10)
HOSPITALS = ["H401", "H402", "h201", "H301"]
MUNICIPALITIES = ["101", "147", " 751 ", "0101"]
ANSWERS = ["ja", "nej", "uoplyst", "", "JA", " Nej "]
GAPS = [None, 0, 30, 3599, 3600, 3601, 86400, 86430, 86460, 172800, 172830, 18000]
RARELY = 0.04  # the chance of a value that breaks its rule
DAY_GAPS = [None, -1, 0, 1, 2, 3, 29, 30, 31, 59, 60, 61]
COLUMNS = {
    "stroke": ["record_id", "cpr", "sex", "municipality_code", "hospital_code", "admission_at",
               "diagnosis", "stroke_unit_at", "imaging_at", "thrombolysis", "thrombolysis_at",
               "dysphagia_screening_at", "physio_assessment_at", "sss_score", "prestroke_mrs",
               "discharge_at", "death_date"],
    "hipfracture": ["record_id", "cpr", "sex", "municipality_code", "hospital_code",
                    "admission_at", "diagnosis", "surgery_at", "asa_score", "new_mobility_score",
                    "mobilised_at", "cas_at_discharge", "rehab_plan", "discharge_at",
                    "reoperation_date", "death_date"],
    "cardiac_rehab_hospital": ["record_id", "cpr", "sex", "municipality_code", "hospital_code",
                               "diagnosis", "index_date", "referred", "referral_date"],
    "cardiac_rehab_municipal": ["record_id", "hospital_record_id", "cpr", "municipality_code",
                                "referral_received_date", "rehab_start_date", "rehab_end_date",
                                "completed", "smoker", "smoking_cessation_offered"],
    "lpr": ["cpr", "hospital_code", "municipality_code", "admission_at", "action_diagnosis"],
}


class RandomInput:
    """Extract files by relative path; its repr never shows a value."""

    def __init__(self, files: dict[str, bytes], rows: int):
        self.files, self.rows = files, rows

    def __repr__(self) -> str:
        return f"RandomInput({len(self.files)} files, {self.rows} rows)"


def _birth_dates() -> list[tuple[dt.date, int | None]]:
    """(birth date, 7th digit or None for the usual one) near the population ages."""
    return [(born_aged(18, DAY0), None), (born_aged(18, DAY0, 1), None),
            (dt.date(2008, 2, 29), None), (dt.date(1960, 2, 29), None),
            (born_aged(65, DAY0), None), (born_aged(65, DAY0, 1), None),
            (dt.date(1950, 5, 17), None), (dt.date(1930, 1, 1), None),
            (dt.date(1858, 6, 1), 5), (dt.date(1937, 6, 1), 9), (dt.date(1937, 6, 2), 4)]


def _text(value: dt.datetime, style: int) -> str:
    if style == 1:
        return value.strftime("%Y-%m-%dT%H:%M:%S")
    if style == 2:
        return value.strftime("%Y-%m-%d")  # a date alone: a broken datetime
    return value.strftime("%Y-%m-%d %H:%M" if value.second == 0 else "%Y-%m-%d %H:%M:%S")


@st.composite
def random_inputs(draw) -> RandomInput:
    """Hypothesis draws only the seed: choices are then uniform, so rare values stay rare."""
    rnd = random.Random(draw(st.integers(0, 2**32 - 1)))
    patients = Patients()
    people = []
    for born, seventh in _birth_dates():
        cpr = patients.cpr(born, seventh=seventh)
        people += [cpr, cpr[:6] + "-" + cpr[6:]]
    invalid = raw_cpr("290200", 0, 999)  # 29 Feb 1900 did not exist

    def pick(options):
        return options[rnd.randrange(len(options))]

    def usually(options, bad):
        """One of the valid options, or now and then one that breaks the rule."""
        return pick(bad) if rnd.random() < RARELY else pick(options)

    def moment(extract: dt.date) -> dt.datetime:
        """Mostly early enough that later events fit before the extract date."""
        days = [DAY0, DAY0 + dt.timedelta(days=1), dt.date(2026, 2, 28), dt.date(2026, 3, 1)]
        if extract == E2:
            days += [dt.date(2026, 8, 31), dt.date(2026, 9, 1)]
        span = (extract - dt.date(2026, 1, 1)).days - 65
        days += [dt.date(2026, 1, 1) + dt.timedelta(days=rnd.randint(0, span))] * 4
        day = pick(days)
        return dt.datetime.combine(day, dt.time(rnd.randint(0, 23),
                                                pick([0, 0, 59, 30])))

    def after(start: dt.datetime, bad_before=False) -> str:
        gap = usually(GAPS, [-60]) if bad_before else pick(GAPS)
        if gap is None:
            return ""
        return _text(start + dt.timedelta(seconds=gap), pick([0, 0, 0, 1]))

    def day_after(start) -> str:
        gap = pick(DAY_GAPS)
        if gap is None:
            return ""
        day = (start.date() if isinstance(start, dt.datetime) else start) + dt.timedelta(days=gap)
        return day.isoformat()

    def number(low: int, high: int) -> str:
        return usually(["", str(low), str(high), str(rnd.randint(low, high))],
                       [str(high + 1), str(low - 1), "x"])

    rows: dict[tuple[str, dt.date], list[dict]] = {}
    admissions = []
    for source in ("stroke", "hipfracture"):
        for _ in range(rnd.randint(0, 20)):
            extract = pick([E1, E2, E2])
            start = moment(extract)
            admissions.append((source, start))
            row = {"record_id": f"{source[0].upper()}{rnd.randint(0, 49)}",
                   "cpr": usually(people, [invalid]), "sex": usually(["M", "F", "f"], ["X", ""]),
                   "municipality_code": usually(MUNICIPALITIES, ["9999", "x"]),
                   "hospital_code": usually(HOSPITALS, ["H999"]),
                   "admission_at": _text(start, usually([0, 0, 0, 1], [2])),
                   "discharge_at": after(start, True), "death_date": day_after(start)}
            if source == "stroke":
                row.update(diagnosis=usually(["DI61", "DI63", "DI63", "di64"], ["DI62"]),
                           stroke_unit_at=after(start), imaging_at=after(start),
                           thrombolysis=usually(ANSWERS, ["måske"]),
                           thrombolysis_at=after(start, True),
                           dysphagia_screening_at=after(start), physio_assessment_at=after(start),
                           sss_score=number(0, 58), prestroke_mrs=number(0, 5))
            else:
                surgery = start + dt.timedelta(seconds=pick([0, 3600, 86400, 86430, 90000]))
                row.update(diagnosis=usually(["DS720", "DS721", "ds722"], ["DS723"]),
                           surgery_at=usually(["", _text(surgery, 0)],
                                              [_text(start - dt.timedelta(minutes=1), 0)]),
                           asa_score=number(1, 5),
                           new_mobility_score=number(0, 9), mobilised_at=after(surgery),
                           cas_at_discharge=number(0, 6), rehab_plan=usually(ANSWERS, ["nok"]),
                           reoperation_date=day_after(surgery))
            rows.setdefault((source, extract), []).append(row)
    for _ in range(rnd.randint(0, 10)):
        extract = pick([E1, E2, E2])
        index = moment(extract).date()
        row = {"record_id": f"C{rnd.randint(0, 11)}", "cpr": usually(people, [invalid]),
               "sex": pick(["M", "F"]), "municipality_code": usually(MUNICIPALITIES, ["9999"]),
               "hospital_code": usually(HOSPITALS, ["H999"]),
               "diagnosis": usually(["DI21", "DI214", "DI50", "di25"], ["DI19"]),
               "index_date": index.isoformat(), "referred": usually(ANSWERS, ["måske"]),
               "referral_date": day_after(index)}
        rows.setdefault(("cardiac_rehab_hospital", extract), []).append(row)
    for _ in range(rnd.randint(0, 10)):
        extract = pick([E1, E2, E2])
        received = moment(extract).date()
        row = {"record_id": f"M{rnd.randint(0, 19)}",
               "hospital_record_id": pick(["", *(f"C{i}" for i in range(12))]),
               "cpr": usually(people, [invalid]),
               "municipality_code": usually(MUNICIPALITIES, ["9999"]),
               "referral_received_date": received.isoformat(),
               "rehab_start_date": day_after(received), "rehab_end_date": day_after(received),
               "completed": usually(ANSWERS, ["måske"]), "smoker": pick(ANSWERS),
               "smoking_cessation_offered": pick(ANSWERS)}
        rows.setdefault(("cardiac_rehab_municipal", extract), []).append(row)
    for _ in range(rnd.randint(0, 20)):
        extract = pick([E1, E2, E2])
        if admissions and rnd.random() < 0.7:
            source, start = pick(admissions)
            start += dt.timedelta(days=pick([-2, -1, 0, 1, 2]), hours=pick([-3, 0, 3]))
        else:
            start = moment(extract)
        row = {"cpr": usually(people, [invalid]), "hospital_code": usually(HOSPITALS, ["H999"]),
               "municipality_code": usually(MUNICIPALITIES, ["9999"]),
               "admission_at": _text(start, 0),
               "action_diagnosis": usually(["DI63", "DI639", "di61", "DS721", "DS7201", "DI62"],
                                           ["hofte"])}
        rows.setdefault(("lpr", extract), []).append(row)
    _cover_case_mix(rows, patients)

    files = {}
    count = 0
    for (source, extract), data in rows.items():
        delimiter = pick([";", ","])
        encoding = pick(["utf-8", "utf-8-sig", "cp1252"])
        out = io.StringIO()
        writer = csv.writer(out, delimiter=delimiter, lineterminator=pick(["\n", "\r\n"]))
        writer.writerow(COLUMNS[source])
        for row in data:
            writer.writerow([row.get(c, "") for c in COLUMNS[source]])
            count += 1
        files[f"{source}/{source}_{extract.isoformat()}.csv"] = out.getvalue().encode(encoding)
    return RandomInput(files, count)


def _cover_case_mix(rows: dict, patients: Patients) -> None:
    """A death and a survivor for every pattern of ``case_mix_patterns`` (see boundary.py)."""
    t = dt.datetime(2026, 2, 5, 12, 0)
    fixed = {"stroke": {"diagnosis": "DI63", "thrombolysis": "nej", "hospital_code": "H401",
                        "municipality_code": "101"},
             "hipfracture": {"diagnosis": "DS720", "rehab_plan": "ja", "hospital_code": "H201",
                             "municipality_code": "751"}}
    for registry, died in (("stroke", 3), ("hipfracture", 20)):
        for j, pattern in enumerate(case_mix_patterns(registry)):
            for dies in (True, False):
                row = {k: "" if v is None else str(v) for k, v in pattern.items() if k != "age"}
                row.update(fixed[registry], record_id=f"{registry[0].upper()}MIX{j}{int(dies)}",
                           cpr=patients.cpr(born_aged(pattern["age"], t.date(), 1 + j)),
                           admission_at=_text(t, 0),
                           death_date=(t.date() + dt.timedelta(days=died)).isoformat()
                           if dies else "")
                rows.setdefault((registry, E1), []).append(row)
