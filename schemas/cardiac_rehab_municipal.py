"""Cardiac rehabilitation, municipal part: one row per referral received."""

from schemas.columns import (
    ColumnSpec, ExtractSchema, answer, cpr, municipality_code, optional_date, record_id,
)

schema = ExtractSchema("cardiac_rehab_municipal", (
    record_id(),
    ColumnSpec("hospital_record_id", "string", required=False, is_record_id=True),
    cpr(),
    municipality_code(),  # the municipality delivering rehabilitation
    ColumnSpec("referral_received_date", "date"),
    optional_date("rehab_start_date"),
    optional_date("rehab_end_date"),
    answer("completed"),
    answer("smoker"),
    answer("smoking_cessation_offered"),
))
