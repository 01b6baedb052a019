"""National Patient Registry contacts with a relevant action diagnosis; every column required."""

from schemas.columns import (
    ColumnSpec, ExtractSchema, admission_at, cpr, hospital_code, municipality_code,
)

schema = ExtractSchema("lpr", (
    cpr(), hospital_code(), municipality_code(), admission_at(),
    # An SKS/ICD-10 diagnosis code: D, a chapter letter, two digits, optional sub-code.
    ColumnSpec("action_diagnosis", "code", pattern=r"^D[A-Z][0-9]{2}[0-9A-Z]*$"),
))
