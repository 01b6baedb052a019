"""Pseudonymisation at the door: HMAC-SHA256 of the normalised CPR number.

Computed in DuckDB (RFC 2104 over its vectorised sha256) because it is the
hot spot of ingest; tests check it against Python's hmac module.
"""

from __future__ import annotations

import duckdb
import polars as pl

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
    with duckdb.connect() as con:
        result = con.sql(
            "SELECT sha256($outer || unhex(sha256($inner || cpr::BLOB))) AS pseudonym FROM frame",
            params={"inner": inner, "outer": outer},
        ).to_arrow_table()
    return pl.from_arrow(result).to_series().alias("pseudonym")


class Pseudonyms:
    """HMAC once per distinct CPR of a run: a monthly extract repeats the patients of the
    earlier ones, so each new CPR is hashed once and looked up after that. Held in memory
    for one ingest only (never written anywhere), and bounded: past ``limit`` distinct CPRs
    the oldest are forgotten (they are hashed again if they come back)."""

    def __init__(self, key: bytes, limit: int = 5_000_000):
        self.key, self.limit = key, limit
        self.known = pl.DataFrame(schema={"cpr": pl.String, "pseudonym": pl.String})

    def of(self, cprs: pl.Series) -> pl.Series:
        """The pseudonym of each CPR, in order; nulls stay null."""
        frame = cprs.alias("cpr").to_frame()
        found = frame.join(self.known, on="cpr", how="left", maintain_order="left")["pseudonym"]
        new = frame.filter(found.is_null() & pl.col("cpr").is_not_null())["cpr"].unique()
        if new.len() == 0:
            return found
        computed = pl.DataFrame({"cpr": new, "pseudonym": pseudonymise(new, self.key)})
        self.known = pl.concat([self.known, computed]).tail(self.limit)
        if new.len() == frame.height:  # nothing was known: the computed values, in order
            return frame.join(computed, on="cpr", how="left", maintain_order="left")["pseudonym"]
        filled = frame.join(computed, on="cpr", how="left", maintain_order="left")["pseudonym"]
        return found.fill_null(filled)
