"""95 % intervals for proportions: Wilson score (default) and Clopper-Pearson (exact)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl

# scipy.stats.norm.ppf(0.975) as a literal: importing scipy.stats costs ~0.5 s, and only the
# exact interval needs it (tests/test_fixed_cost.py checks the two agree to the last bit).
Z95 = 1.959963984540054
Method = Literal["wilson", "clopper-pearson"]


def wilson(x: np.ndarray, n: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    x, n = np.asarray(x, float), np.asarray(n, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = x / n
        denominator = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denominator
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denominator
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def clopper_pearson(x: np.ndarray, n: np.ndarray, alpha: float = 0.05
                    ) -> tuple[np.ndarray, np.ndarray]:
    from scipy import stats

    x, n = np.asarray(x, float), np.asarray(n, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        low = np.where(x > 0, stats.beta.ppf(alpha / 2, x, n - x + 1), 0.0)
        high = np.where(x < n, stats.beta.ppf(1 - alpha / 2, x + 1, n - x), 1.0)
    return low, high


def with_intervals(results: pl.DataFrame, method: Method) -> pl.DataFrame:
    """ci_low/ci_high for rows with a numerator and a positive denominator; else null."""
    has = results["numerator"].is_not_null() & (results["denominator"] > 0)
    x = results["numerator"].fill_null(0).to_numpy()
    n = results["denominator"].to_numpy()
    low, high = (wilson if method == "wilson" else clopper_pearson)(x, np.maximum(n, 1))
    return results.with_columns(
        pl.when(has).then(pl.Series(low)).otherwise(None).alias("ci_low"),
        pl.when(has).then(pl.Series(high)).otherwise(None).alias("ci_high"),
    )
