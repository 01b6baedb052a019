"""Every rule of the data contract: a row that breaks it and a row that passes."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from pipelines.extract_reader import read_extract
from pipelines.reference import load_reference
from pipelines.validation import validate
from schemas import EXTRACT_SCHEMAS
from tests.builders import (
    cardiac_row, hip_row, lpr_row, municipal_row, new_input, stroke_row, write_extract,
)

EXTRACT = "2024-12-31"
ROWS = {"stroke": stroke_row, "hipfracture": hip_row, "cardiac_rehab_hospital": cardiac_row,
        "cardiac_rehab_municipal": municipal_row, "lpr": lpr_row}


def check(tmp_path, source: str, rows: list[dict]):
    folder = new_input(tmp_path / "in")
    path = write_extract(folder, source, EXTRACT, rows)
    schema = EXTRACT_SCHEMAS[source]
    extract = read_extract(path, schema)
    reference = load_reference(folder)
    return validate(extract, schema, reference.context(dt.date.fromisoformat(EXTRACT)))


BREAKS = [  # source, column, value, rule
    ("stroke", "cpr", "3102801234", "valid_cpr"),
    ("stroke", "cpr", "0101-801234", "valid_cpr"),
    ("stroke", "cpr", None, "required"),
    ("stroke", "record_id", None, "required"),
    ("stroke", "sex", "X", "domain"),
    ("stroke", "municipality_code", "999", "known_code"),
    ("stroke", "municipality_code", "1O1", "type_integer"),
    ("stroke", "hospital_code", "H999", "known_code"),
    ("stroke", "admission_at", "2024-03-10", "type_datetime"),  # a date alone
    ("stroke", "admission_at", "2024-02-30 10:00", "type_datetime"),
    ("stroke", "admission_at", "10-03-2024 10:00", "type_datetime"),
    ("stroke", "admission_at", "2024-03-10 24:00", "type_datetime"),  # no hour 24
    ("stroke", "admission_at", "2024-03-10 10:00:60", "type_datetime"),  # no leap second
    ("stroke", "admission_at", "2025-01-01 00:00", "after_extract_date"),
    ("stroke", "diagnosis", "DI62", "domain"),
    ("stroke", "thrombolysis", "yes", "domain"),
    ("stroke", "thrombolysis_at", "2024-03-10 09:59", "before_admission"),
    ("stroke", "discharge_at", "2024-03-09 23:00", "before_admission"),
    ("stroke", "sss_score", "59", "range"),
    ("stroke", "sss_score", "-1", "range"),
    ("stroke", "sss_score", "12.5", "type_integer"),
    ("stroke", "prestroke_mrs", "6", "range"),
    ("stroke", "death_date", "2025-01-02", "after_extract_date"),
    ("stroke", "death_date", "2024-03-10 10:00", "type_date"),
    ("stroke", "imaging_at", "2025-01-01 00:00", "after_extract_date"),
    ("hipfracture", "surgery_at", "2024-03-10 09:00", "before_admission"),
    ("hipfracture", "asa_score", "0", "range"),
    ("hipfracture", "asa_score", "6", "range"),
    ("hipfracture", "new_mobility_score", "10", "range"),
    ("hipfracture", "cas_at_discharge", "7", "range"),
    ("hipfracture", "diagnosis", "DS723", "domain"),
    ("hipfracture", "rehab_plan", "x", "domain"),
    ("hipfracture", "reoperation_date", "2025-02-01", "after_extract_date"),
    ("cardiac_rehab_hospital", "diagnosis", "DI26", "domain"),
    ("cardiac_rehab_hospital", "diagnosis", "DI51", "domain"),
    ("cardiac_rehab_hospital", "index_date", "2025-01-01", "after_extract_date"),
    ("cardiac_rehab_hospital", "index_date", None, "required"),
    ("cardiac_rehab_hospital", "referral_date", "2024-13-01", "type_date"),
    ("cardiac_rehab_hospital", "referred", "maybe", "domain"),
    ("cardiac_rehab_municipal", "referral_received_date", None, "required"),
    ("cardiac_rehab_municipal", "rehab_start_date", "2025-01-01", "after_extract_date"),
    ("cardiac_rehab_municipal", "smoker", "sometimes", "domain"),
    ("cardiac_rehab_municipal", "municipality_code", "9999", "known_code"),
    ("lpr", "action_diagnosis", "stroke", "domain"),
    ("lpr", "hospital_code", None, "required"),
    ("lpr", "admission_at", None, "required"),
    ("lpr", "cpr", "12345", "valid_cpr"),
]

PASSES = [  # source, column, value: allowed, sometimes surprisingly
    ("stroke", "cpr", "170550-0123"),           # hyphen after the 6th digit
    ("stroke", "sex", " m "),                    # trimmed, any case
    ("stroke", "municipality_code", " 101 "),
    ("stroke", "hospital_code", "h401"),
    ("stroke", "admission_at", "2024-03-10 10:00:30"),
    ("stroke", "admission_at", "2024-03-10T10:00"),
    ("stroke", "admission_at", "2024-12-31 23:59"),  # on the extract date
    ("stroke", "diagnosis", "di63"),
    ("stroke", "thrombolysis", "JA"),
    ("stroke", "thrombolysis", None),            # empty = uoplyst
    ("stroke", "thrombolysis_at", "2024-03-10 10:00"),  # at admission
    ("stroke", "stroke_unit_at", "2024-03-09 10:00"),   # before admission: valid, just late
    ("stroke", "sss_score", "0"),
    ("stroke", "sss_score", "58"),
    ("stroke", "death_date", "2024-12-31"),
    ("hipfracture", "asa_score", "5"),
    ("hipfracture", "mobilised_at", "2024-03-09 10:00"),
    ("cardiac_rehab_hospital", "diagnosis", "DI214"),
    ("cardiac_rehab_hospital", "diagnosis", "di50"),
    ("cardiac_rehab_hospital", "diagnosis", "DI20"),
    ("cardiac_rehab_municipal", "hospital_record_id", None),  # optional
    ("cardiac_rehab_municipal", "rehab_end_date", "2024-03-01"),  # no order rule for rehab dates
    ("lpr", "action_diagnosis", "DI639"),
]


@pytest.mark.parametrize("source, column, value, rule", BREAKS)
def test_a_row_breaking_the_rule_is_quarantined(tmp_path, source, column, value, rule):
    good, bad = ROWS[source](), ROWS[source](**{column: value})
    if "record_id" in good:
        bad["record_id"] = bad["record_id"] or None
        good["record_id"] = "GOOD"
    result = check(tmp_path, source, [good, bad])
    assert result.valid.height == 1 and result.rows_quarantined == 1
    broken = result.quarantine.select("row_number", "column_name", "rule").rows()
    assert (2, column, rule) in broken
    shown = result.quarantine.filter(pl.col("column_name") == column)["value"].to_list()
    if column == "cpr":
        assert all(v in (None, "<cpr hidden>") for v in shown)
    elif value is not None:
        assert shown == [value.strip()]


@pytest.mark.parametrize("source, column, value", PASSES)
def test_a_row_keeping_the_rule_loads(tmp_path, source, column, value):
    result = check(tmp_path, source, [ROWS[source](**{column: value})])
    assert result.quarantine.is_empty(), result.quarantine.to_dicts()
    assert result.valid.height == 1


def test_later_rows_with_a_seen_record_id_are_quarantined(tmp_path):
    rows = [stroke_row(record_id="A"), stroke_row(record_id="B"), stroke_row(record_id="A"),
            stroke_row(record_id="A", sex="F")]
    result = check(tmp_path, "stroke", rows)
    assert result.valid["record_id"].to_list() == ["A", "B"]
    dupes = result.quarantine.filter(pl.col("rule") == "duplicate_record_id")
    assert dupes["row_number"].to_list() == [3, 4]


def test_answers_are_normalised_and_empty_means_uoplyst(tmp_path):
    result = check(tmp_path, "stroke", [stroke_row(record_id="A", thrombolysis=" Ja "),
                                        stroke_row(record_id="B", thrombolysis=None)])
    assert result.valid["thrombolysis"].to_list() == ["ja", "uoplyst"]


def test_a_row_breaking_two_rules_counts_once_with_both_rules(tmp_path):
    result = check(tmp_path, "stroke", [stroke_row(sex="X", diagnosis="DI99")])
    assert result.rows_quarantined == 1
    assert sorted(result.quarantine["column_name"].to_list()) == ["diagnosis", "sex"]


def test_cpr_shaped_values_in_other_columns_are_hidden(tmp_path):
    result = check(tmp_path, "stroke", [stroke_row(record_id="1705500123", sex="1705500123")])
    assert "1705500123" not in str(result.quarantine.to_dicts())


def test_datetimes_are_read_to_the_second_in_either_form(tmp_path):
    rows = [stroke_row(record_id="A", admission_at="2024-03-10 10:00:30"),
            stroke_row(record_id="B", admission_at="2024-03-10T09:15"),
            stroke_row(record_id="C", admission_at=" 2024-02-29 23:59:59 ")]
    result = check(tmp_path, "stroke", rows)
    assert result.valid["admission_at"].to_list() == [
        dt.datetime(2024, 3, 10, 10, 0, 30), dt.datetime(2024, 3, 10, 9, 15),
        dt.datetime(2024, 2, 29, 23, 59, 59)]
