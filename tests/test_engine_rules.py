"""Hand-computed records for every time window, exclusion, missing and follow-up rule."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from pipelines import engine, warehouse
from pipelines.definitions import load_definitions
from pipelines.ingest import ingest_directory
from pipelines.settings import INDICATORS_DIR
from tests.builders import (
    TEST_KEY, born_years_before, cardiac_row, cpr_for, hip_row, lpr_row, municipal_row,
    stroke_row, write_extract,
)

DEFINITIONS = load_definitions(INDICATORS_DIR)
ADMITTED = "2024-03-10 10:00"


def results(input_dir, cutoff: str = "2024-12-31", **extracts) -> pl.DataFrame:
    for source, rows in extracts.items():
        write_extract(input_dir, source, "2024-12-31", rows)
    path = input_dir.parent / "w.duckdb"
    summary = ingest_directory(input_dir, path, TEST_KEY)
    assert all(f.rows_quarantined == 0 for f in summary.files), summary.as_dict()
    with warehouse.connect(path) as con:
        return engine.compute(con, DEFINITIONS, dt.date.fromisoformat(cutoff))


def national(frame: pl.DataFrame, indicator: str, period: str = "2024") -> dict:
    rows = frame.filter(pl.col("indicator_id") == indicator, pl.col("level") == "national",
                        pl.col("period") == period)
    assert rows.height <= 1
    return rows.to_dicts()[0] if rows.height else {"numerator": 0, "denominator": 0, "missing": 0}


def counts(frame, indicator, period="2024") -> tuple:
    row = national(frame, indicator, period)
    return row["numerator"], row["denominator"], row["missing"]


def strokes(*changes: dict) -> list[dict]:
    return [stroke_row(record_id=f"S{i}", cpr=cpr_for(dt.date(1950, 1, 1), i), **c)
            for i, c in enumerate(changes)]


def test_stroke_unit_within_24_hours_boundaries(input_dir):
    rows = strokes(
        {"stroke_unit_at": "2024-03-11 10:00"},     # exactly 24 h: in
        {"stroke_unit_at": "2024-03-11 10:00:30"},  # 24 h 30 s: out
        {"stroke_unit_at": "2024-03-11 10:01"},     # 24 h 1 min: out
        {"stroke_unit_at": "2024-03-10 09:00"},     # before admission: out, not missing
        {"stroke_unit_at": None},                   # missing
        {"diagnosis": "DI63", "stroke_unit_at": "2024-03-10 10:00"},  # at admission: in
    )
    assert counts(results(input_dir, stroke=rows), "STROKE_01") == (2, 6, 1)


def test_population_age_and_diagnosis(input_dir):
    day = dt.date(2024, 3, 10)
    rows = [stroke_row(record_id="A", cpr=cpr_for(born_years_before(day, 18, 0), 1)),  # 18 today
            stroke_row(record_id="B", cpr=cpr_for(born_years_before(day, 18, 1), 2)),  # 17
            stroke_row(record_id="C", cpr=cpr_for(dt.date(1950, 1, 1), 3), diagnosis="DI61")]
    frame = results(input_dir, stroke=rows)
    assert counts(frame, "STROKE_05")[1] == 2
    assert counts(frame, "STROKE_02")[1] == 1  # DI63 only


def test_thrombolysis_missing_and_door_to_needle(input_dir):
    rows = strokes(
        {"thrombolysis": "ja", "thrombolysis_at": "2024-03-10 11:00"},   # 60 min: in
        {"thrombolysis": "ja", "thrombolysis_at": "2024-03-10 11:00:01"},  # just over: out
        {"thrombolysis": "ja", "thrombolysis_at": None},                 # missing time
        {"thrombolysis": "uoplyst"},
        {"thrombolysis": None},                                          # empty = uoplyst
        {"thrombolysis": "nej"},
        {"thrombolysis": "ja", "diagnosis": "DI61", "thrombolysis_at": "2024-03-10 10:10"},
    )
    frame = results(input_dir, stroke=rows)
    assert counts(frame, "STROKE_02") == (3, 6, 2)
    assert counts(frame, "STROKE_03") == (1, 3, 1)
    median = national(frame, "STROKE_07")
    assert median["denominator"] == 2 and median["median"] == pytest.approx((60 + 60 + 1 / 60) / 2)
    assert median["numerator"] is None and median["proportion"] is None
    assert median["missing"] == 0 and median["standard_met"] is False


def test_median_of_an_odd_count_and_standard(input_dir):
    rows = strokes(*[{"thrombolysis": "ja", "thrombolysis_at": f"2024-03-10 10:{m:02d}"}
                     for m in (20, 45, 30)])
    row = national(results(input_dir, stroke=rows), "STROKE_07")
    assert (row["median"], row["standard_met"]) == (30.0, True)


def test_physiotherapy_exclusions(input_dir):
    rows = strokes(
        {"discharge_at": "2024-03-12 10:00"},                  # discharged at 48 h: excluded
        {"discharge_at": "2024-03-12 10:01"},                  # 48 h 1 min: stays
        {"death_date": "2024-03-12"},                          # dead by admission date + 2: excluded
        {"death_date": "2024-03-13", "physio_assessment_at": "2024-03-12 10:00"},  # stays, in
        {"physio_assessment_at": "2024-03-12 10:00:01"},       # just over 48 h: out
        {"physio_assessment_at": None},                        # missing
    )
    assert counts(results(input_dir, stroke=rows), "STROKE_04") == (1, 4, 2)


def test_mortality_window_and_follow_up_at_the_cutoff(input_dir):
    rows = strokes(
        {"death_date": "2024-04-09"},                          # day 30: in
        {"death_date": "2024-04-10"},                          # day 31: out
        {"death_date": "2024-03-10"},                          # same day: in
        {"admission_at": "2024-12-01 08:00"},                  # 1 Dec + 30 = 31 Dec = cutoff: counted
        {"admission_at": "2024-12-02 08:00"},                  # follow-up ends after cutoff: not
    )
    frame = results(input_dir, stroke=rows)
    assert counts(frame, "STROKE_06") == (2, 4, 0)
    assert counts(frame, "STROKE_06", "2024-12") == (0, 1, 0)


def test_records_after_the_cutoff_are_not_counted(input_dir):
    rows = strokes({"admission_at": "2024-06-01 10:00"}, {"admission_at": "2024-07-01 10:00"})
    frame = results(input_dir, cutoff="2024-06-30", stroke=rows)
    assert counts(frame, "STROKE_05")[1] == 1
    assert frame.filter(pl.col("period") == "2024-07").is_empty()


def hips(*changes: dict) -> list[dict]:
    return [hip_row(**{"record_id": f"H{i}", "cpr": cpr_for(dt.date(1940, 1, 1), i),
                       "surgery_at": "2024-03-10 20:00", **c})
            for i, c in enumerate(changes)]


def test_hip_surgery_and_mobilisation(input_dir):
    rows = hips(
        {"surgery_at": "2024-03-11 10:00", "mobilised_at": "2024-03-12 10:00"},  # 24 h, 24 h
        {"surgery_at": "2024-03-11 10:01", "mobilised_at": "2024-03-12 10:02"},  # both late
        {"surgery_at": None},                                                    # not in either
        {"death_date": "2024-03-11"},                 # dead by surgery date + 1: out of HIP_02
        {"death_date": "2024-03-12", "mobilised_at": None},  # stays in HIP_02, missing
    )
    frame = results(input_dir, hipfracture=rows)
    assert counts(frame, "HIP_01") == (3, 4, 0)
    assert counts(frame, "HIP_02") == (1, 3, 1)


def test_hip_discharged_alive_and_age(input_dir):
    rows = hips(
        {"discharge_at": "2024-03-20 10:00", "cas_at_discharge": "4", "rehab_plan": "ja"},
        {"discharge_at": "2024-03-20 10:00", "death_date": "2024-03-20"},  # died that day: out
        {"discharge_at": "2024-03-20 10:00", "death_date": "2024-03-21", "rehab_plan": None},
        {"discharge_at": None},                                            # not discharged: out
        {"discharge_at": "2024-03-20 10:00", "cpr": cpr_for(dt.date(1960, 1, 1), 9)},  # 64 y
    )
    frame = results(input_dir, hipfracture=rows)
    assert counts(frame, "HIP_03") == (1, 2, 1)
    assert counts(frame, "HIP_04") == (1, 2, 1)


def test_reoperation_needs_two_years_from_the_surgery_date(input_dir):
    rows = hips(
        {"admission_at": "2022-01-01 08:00", "surgery_at": "2022-01-01 20:00",
         "reoperation_date": "2024-01-01"},  # day 730: in; follow-up ends 2024-01-01
        {"admission_at": "2022-01-02 08:00", "surgery_at": "2022-01-02 20:00",
         "reoperation_date": "2024-01-03"},  # day 731: out
        {"admission_at": "2022-01-03 08:00", "surgery_at": "2022-01-03 20:00"},
    )
    frame = results(input_dir, cutoff="2024-01-02", hipfracture=rows)
    assert counts(frame, "HIP_06", "2022") == (1, 2, 0)  # the third lacks follow-up


def test_cross_sector_start_counts_each_course_once(input_dir):
    courses = [cardiac_row(record_id=f"C{i}", cpr=cpr_for(dt.date(1960, 1, 1), i))
               for i in range(4)] + [cardiac_row(record_id="C9", referred="nej")]
    referrals = [
        municipal_row(record_id="M0a", hospital_record_id="C0", rehab_start_date="2024-05-09"),  # day 60
        municipal_row(record_id="M0b", hospital_record_id="C0", rehab_start_date="2024-04-01"),
        municipal_row(record_id="M1", hospital_record_id="C1", rehab_start_date="2024-05-10"),  # 61
        municipal_row(record_id="M2", hospital_record_id="C2", rehab_start_date=None),
        municipal_row(record_id="M3", hospital_record_id=None, rehab_start_date="2024-03-20"),
    ]
    frame = results(input_dir, cardiac_rehab_hospital=courses, cardiac_rehab_municipal=referrals)
    assert counts(frame, "DHRD_05") == (1, 4, 0)
    assert counts(frame, "DHRD_01") == (4, 5, 0)


def test_municipal_start_completion_and_smoking(input_dir):
    rows = [
        municipal_row(record_id="A", referral_received_date="2024-03-01", rehab_start_date="2024-03-31",
                      rehab_end_date="2024-05-01", completed="ja", smoker="ja",
                      smoking_cessation_offered="ja"),
        municipal_row(record_id="B", referral_received_date="2024-03-01", rehab_start_date="2024-04-01",
                      rehab_end_date="2024-05-01", completed="uoplyst", smoker="ja",
                      smoking_cessation_offered=None),
        municipal_row(record_id="C", referral_received_date="2024-03-01", rehab_start_date=None),
        municipal_row(record_id="D", referral_received_date="2024-12-15", rehab_start_date=None),
    ]
    frame = results(input_dir, cardiac_rehab_municipal=rows)
    assert counts(frame, "DHRD_02") == (1, 3, 1)  # D lacks 30 days of follow-up
    assert counts(frame, "DHRD_03") == (1, 2, 1)
    assert counts(frame, "DHRD_04") == (1, 2, 1)
    assert set(frame.filter(pl.col("indicator_id") == "DHRD_02")["level"]) == {
        "national", "region", "municipality"}


def test_completeness_against_lpr(input_dir):
    patient = [cpr_for(dt.date(1950, 1, 1), i) for i in range(6)]
    registry = [stroke_row(record_id=f"S{i}", cpr=patient[i], admission_at="2024-03-10 10:00")
                for i in range(4)]
    contacts = [
        lpr_row(cpr=patient[0], admission_at="2024-03-10 08:00"),
        lpr_row(cpr=patient[0], admission_at="2024-03-10 20:00"),      # same day: one contact
        lpr_row(cpr=patient[1], admission_at="2024-03-11 08:00"),      # +1 day: matched
        lpr_row(cpr=patient[2], admission_at="2024-03-12 08:00"),      # +2 days: not matched
        lpr_row(cpr=patient[3], hospital_code="H402"),                 # other hospital: not
        lpr_row(cpr=patient[4], action_diagnosis="DI639"),             # no record at all
        lpr_row(cpr=patient[5], action_diagnosis="DI20"),              # not a stroke contact
        lpr_row(cpr=cpr_for(dt.date(2010, 1, 1), 7)),                  # a child: not counted
    ]
    frame = results(input_dir, stroke=registry, lpr=contacts)
    assert counts(frame, "COMPL_STROKE") == (2, 5, 0)
    levels = set(frame.filter(pl.col("indicator_id") == "COMPL_STROKE")["level"])
    assert levels == {"national", "region", "hospital"}


def test_completeness_matched_on_the_patient_alone_still_counts_contacts_per_hospital(input_dir):
    """A definition whose match leaves the hospital out: a record at any hospital matches,
    and a contact is still the patient at one hospital on one day (review finding: this
    stopped the run, as the contacts lost the column they are counted by)."""
    lpr = next(d for d in DEFINITIONS if d.id == "COMPL_STROKE")
    anywhere = lpr.model_copy(update={
        "id": "COMPL_ANYWHERE", "completeness": lpr.completeness.model_copy(update={"same": ["pseudonym"]})})
    patient = [cpr_for(dt.date(1950, 1, 1), i) for i in range(3)]
    write_extract(input_dir, "stroke", "2024-12-31",
                  [stroke_row(record_id=f"S{i}", cpr=patient[i]) for i in range(3)])
    write_extract(input_dir, "lpr", "2024-12-31", [
        lpr_row(cpr=patient[0], admission_at="2024-03-10 08:00"),
        lpr_row(cpr=patient[0], hospital_code="H402", admission_at="2024-03-10 09:00"),  # 2nd
        lpr_row(cpr=patient[1], hospital_code="H402"),             # record elsewhere: matched
        lpr_row(cpr=patient[2], admission_at="2024-03-12 08:00"),  # +2 days: not matched
    ])
    path = input_dir.parent / "w.duckdb"
    ingest_directory(input_dir, path, TEST_KEY)
    with warehouse.connect(path) as con:
        frame = engine.compute(con, [lpr, anywhere], dt.date(2024, 12, 31))
    assert counts(frame, "COMPL_ANYWHERE") == (3, 4, 0)
    assert counts(frame, "COMPL_STROKE") == (1, 4, 0)  # the same hospital: only S0's own
    by_hospital = frame.filter(pl.col("indicator_id") == "COMPL_ANYWHERE",
                               pl.col("level") == "hospital", pl.col("period") == "2024")
    assert dict(zip(by_hospital["unit_code"], by_hospital["denominator"])) == {"H401": 2, "H402": 2}


def test_levels_use_the_hospital_region_and_the_residence(input_dir):
    rows = strokes({"hospital_code": "H401", "municipality_code": "751"},   # Copenhagen hosp., Aarhus resident
                   {"hospital_code": "H201", "municipality_code": "751"})
    frame = results(input_dir, stroke=rows).filter(pl.col("indicator_id") == "STROKE_05",
                                                  pl.col("period") == "2024")
    by_level = {lvl: sorted(frame.filter(pl.col("level") == lvl)["unit_code"].to_list())
                for lvl in ("region", "hospital", "municipality")}
    assert by_level == {"region": ["1082", "1084"], "hospital": ["H201", "H401"],
                        "municipality": ["751"]}
    assert frame.filter(pl.col("level") == "national")["unit_name"].to_list() == ["Danmark"]


def test_units_without_records_have_no_row_and_standard_is_compared(input_dir):
    rows = strokes(*([{"dysphagia_screening_at": "2024-03-10 12:00"}] * 9 + [{}]))
    frame = results(input_dir, stroke=rows)
    row = national(frame, "STROKE_05")
    assert (row["proportion"], row["standard"], row["standard_met"]) == (0.9, 0.9, True)
    assert frame.filter(pl.col("level") == "hospital")["unit_code"].unique().to_list() == ["H401"]
