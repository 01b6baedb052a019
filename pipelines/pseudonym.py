"""Pseudonymisation at the door: HMAC-SHA256 of the normalised CPR number.

Computed in DuckDB (RFC 2104 over its vectorised sha256) because it is the
hot spot of ingest; tests check it against Python's hmac module.
"""

from __future__ import annotations

import polars as pl

from pipelines import scratch

_BLOCK = 64  # SHA-256 block size in bytes


def _pads(key: bytes) -> tuple[bytes, bytes]:
    import hashlib

    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def pseudonymise(cprs: pl.Series, key: bytes) -> pl.Series:
    """Hex HMAC-SHA256 of each (already normalised) CPR; nulls stay null."""
    inner, outer = _pads(key)
    # Arrow string views: DuckDB reads Polars' strings without a copy.
    frame = cprs.alias("cpr").to_frame().to_arrow(compat_level=pl.CompatLevel.newest())  # noqa: F841
    with scratch.cursor() as con:
        result = con.sql(
            "SELECT sha256($outer || unhex(sha256($inner || cpr::BLOB))) AS pseudonym FROM frame",
            params={"inner": inner, "outer": outer},
        ).to_arrow_table()
    return pl.from_arrow(result).to_series().alias("pseudonym")

