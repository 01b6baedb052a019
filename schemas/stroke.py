"""Stroke registry extract: one row per admission."""

from schemas.columns import (
    ColumnSpec, ExtractSchema, admission_at, answer, cpr, hospital_code, municipality_code,
    optional_date, optional_datetime, record_id, score, sex,
)

schema = ExtractSchema("stroke", (
    record_id(), cpr(), sex(), municipality_code(), hospital_code(), admission_at(),
    ColumnSpec("diagnosis", "code", allowed=("DI61", "DI63", "DI64")),
    optional_datetime("stroke_unit_at"),
    optional_datetime("imaging_at"),
    answer("thrombolysis"),
    optional_datetime("thrombolysis_at", not_before_admission=True),
    optional_datetime("dysphagia_screening_at"),
    optional_datetime("physio_assessment_at"),
    score("sss_score", 0, 58),
    score("prestroke_mrs", 0, 5),
    optional_datetime("discharge_at", not_before_admission=True),
    optional_date("death_date"),
))
