"""Hip fracture registry extract: one row per admission."""

from schemas.columns import (
    ColumnSpec, ExtractSchema, admission_at, answer, cpr, hospital_code, municipality_code,
    optional_date, optional_datetime, record_id, score, sex,
)

schema = ExtractSchema("hipfracture", (
    record_id(), cpr(), sex(), municipality_code(), hospital_code(), admission_at(),
    ColumnSpec("diagnosis", "code", allowed=("DS720", "DS721", "DS722")),
    optional_datetime("surgery_at", not_before_admission=True),
    score("asa_score", 1, 5),
    score("new_mobility_score", 0, 9),
    optional_datetime("mobilised_at"),
    score("cas_at_discharge", 0, 6),
    answer("rehab_plan"),
    optional_datetime("discharge_at", not_before_admission=True),
    optional_date("reoperation_date"),
    optional_date("death_date"),
))
