"""Registry extracts as declared in ``registries/*.yaml`` (their Pandera schemas are derived
from the declarations), the reporting levels of ``levels.yaml``, and the column kinds."""

from schemas.columns import ExtractSchema, ValidationContext
from schemas.declarations import DECLARED, LEVELS, REGISTRIES

EXTRACT_SCHEMAS: dict[str, ExtractSchema] = DECLARED.schemas

__all__ = ["DECLARED", "EXTRACT_SCHEMAS", "ExtractSchema", "LEVELS", "REGISTRIES",
           "ValidationContext"]
