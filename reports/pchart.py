"""Laney's P′ (P prime) control chart of monthly proportions, as qicharts2 computes it.

qicharts2 (``qic(chart = 'pp')``, R/helper.functions.R ``qic.pp``): the centre line
is the pooled proportion p̄ = Σy / Σn over the months with data; the binomial
sigma of a month is sqrt(p̄ (1 − p̄) / nᵢ); the z-scores zᵢ = (pᵢ − p̄) / sigmaᵢ
carry the between-month variation, measured as sigma_z = mean |zᵢ − zᵢ₋₁| / 1.128
(the average moving range; moving ranges are not screened, qicharts2's default);
the limits are p̄ ± 3 · sigmaᵢ · sigma_z (and ± 2 for the 95 % limits), cut to
[0, 1]. A month outside its 3-sigma limits is a signal. Months without data
(n = 0 or suppressed) are gaps: left out of every sum, and a moving range that
touches a gap is missing and left out of the mean, as qicharts2's
``mean(abs(diff(z_i)), na.rm = TRUE)`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

D2 = 1.128  # the bias constant of a moving range of two


@dataclass(frozen=True)
class PPrime:
    centre: float
    sigma_z: float
    proportion: np.ndarray  # nan where a month has no data
    lower: np.ndarray
    upper: np.ndarray
    lower_95: np.ndarray
    upper_95: np.ndarray

    @property
    def outside(self) -> np.ndarray:
        """Months beyond their 3-sigma limits (the signal of a control chart)."""
        p = self.proportion
        with np.errstate(invalid="ignore"):
            return ~np.isnan(p) & ((p > self.upper) | (p < self.lower))


def p_prime(events, n) -> PPrime:
    """``events`` and ``n`` per month, in order; a month with n 0 or nan is a gap."""
    y = np.asarray(events, float)
    n = np.asarray(n, float)
    has = ~np.isnan(y) & ~np.isnan(n) & (n > 0)
    nan = np.full(len(n), np.nan)
    if not has.any():
        return PPrime(float("nan"), float("nan"), nan, nan, nan, nan, nan)
    centre = float(y[has].sum() / n[has].sum())
    proportion = np.where(has, y / np.where(has, n, 1), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma = np.where(has, np.sqrt(centre * (1 - centre) / np.where(has, n, 1)), np.nan)
        z = (proportion - centre) / sigma
    ranges = np.abs(np.diff(z))
    ranges = ranges[~np.isnan(ranges)]
    sigma_z = float(ranges.mean() / D2) if len(ranges) else float("nan")
    spread = sigma * sigma_z
    return PPrime(centre, sigma_z, proportion,
                  np.clip(centre - 3 * spread, 0, 1), np.clip(centre + 3 * spread, 0, 1),
                  np.clip(centre - 2 * spread, 0, 1), np.clip(centre + 2 * spread, 0, 1))
