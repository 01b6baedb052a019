"""Cardiac rehabilitation, hospital part: one row per patient course."""

from schemas.columns import (
    ColumnSpec, ExtractSchema, answer, cpr, hospital_code, municipality_code, optional_date,
    record_id, sex,
)

schema = ExtractSchema("cardiac_rehab_hospital", (
    record_id(), cpr(), sex(), municipality_code(), hospital_code(),
    # Ischaemic heart disease DI20-DI25 or heart failure DI50, sub-codes allowed (DI214).
    ColumnSpec("diagnosis", "code", pattern=r"^DI(2[0-5]|50)[0-9A-Z]*$"),
    ColumnSpec("index_date", "date"),
    answer("referred"),
    optional_date("referral_date"),
))
