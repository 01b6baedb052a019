"""An independent oracle for the indicator catalogue: plain Python, written from the
specification alone, sharing no code with the engine (no import of pipelines, schemas,
reports, sample_data or tests.builders). It reads an input directory itself, applies the
data contract's row rules itself and counts every indicator itself, so a bug in the engine's
ingest or arithmetic shows up as a disagreement instead of being copied into the expectation.
"""

from tests.oracle.indicators import compute
from tests.oracle.loading import load

__all__ = ["compute", "load"]
