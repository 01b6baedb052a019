"""The small-number rule for published artefacts.

Where a unit's denominator is 1-4 (configurable), published tables show '<5'
instead of its numerator, denominator, proportion and interval; the missing
count, median and risk-adjusted figures are withheld too, as each could reveal
the small count. Charts leave such units out. Deliveries to a unit about its
own patients are not suppressed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import polars as pl

HIDDEN = ["numerator", "denominator", "missing", "proportion", "ci_low", "ci_high", "median",
          "expected", "oe_ratio", "oe_low", "oe_high", "adjusted_proportion", "adjusted_low",
          "adjusted_high", "smoothed_proportion", "standard_met"]


@dataclass(frozen=True)
class SmallNumberRule:
    minimum: int = 1
    maximum: int = 4

    @classmethod
    def from_environment(cls) -> "SmallNumberRule":
        return cls(int(os.environ.get("KVALITET_SMALL_NUMBER_MIN", 1)),
                   int(os.environ.get("KVALITET_SMALL_NUMBER_MAX", 4)))

    @property
    def shown_as(self) -> str:
        return f"<{self.maximum + 1}"

    def applies(self) -> pl.Expr:
        return pl.col("denominator").is_between(self.minimum, self.maximum)

    def suppress(self, results: pl.DataFrame) -> pl.DataFrame:
        """Numbers of small units set to null, with a ``suppressed`` flag."""
        small = self.applies()
        return results.with_columns(
            small.alias("suppressed"),
            *[pl.when(small).then(None).otherwise(pl.col(c)).alias(c)
              for c in HIDDEN if c in results.columns])
