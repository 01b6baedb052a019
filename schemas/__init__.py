"""Pandera schemas: one per registry extract, plus the reference tables and the output contract."""

from schemas import (
    cardiac_rehab_hospital, cardiac_rehab_municipal, hipfracture, lpr, stroke,
)
from schemas.columns import ExtractSchema, ValidationContext

EXTRACT_SCHEMAS: dict[str, ExtractSchema] = {
    m.schema.source: m.schema
    for m in (stroke, hipfracture, cardiac_rehab_hospital, cardiac_rehab_municipal, lpr)
}

__all__ = ["EXTRACT_SCHEMAS", "ExtractSchema", "ValidationContext"]
