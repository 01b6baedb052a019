"""Funnel plot limits for proportions, as PHEindicatormethods computes them.

Inverting the Wilson score test at the national proportion p gives, for a unit
of size n, control limits p +- z * sqrt(p (1 - p) / n), cut to [0, 1]. A unit is
labelled high or low at the 95 % (two-sided 0.025 each side) and 99.8 % (0.001)
limits. The overdispersed variant adds a between-unit variance tau^2 estimated
from 10 %-winsorised z-scores (Spiegelhalter 2005, as FunnelPlotR does).
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import stats

Z = {"95": float(stats.norm.ppf(0.975)), "99.8": float(stats.norm.ppf(0.999))}


def limits(p: float, n: np.ndarray, tau2: float = 0.0) -> dict[str, np.ndarray]:
    n = np.asarray(n, float)
    spread = np.sqrt(p * (1 - p) / n + tau2)
    out = {}
    for level, z in Z.items():
        out[f"lower_{level}"] = np.clip(p - z * spread, 0, 1)
        out[f"upper_{level}"] = np.clip(p + z * spread, 0, 1)
    return out


def overdispersion(p: float, x: np.ndarray, n: np.ndarray) -> tuple[float, float]:
    """phi (mean squared winsorised z-score) and the additive tau^2 (0 when phi <= 1)."""
    x, n = np.asarray(x, float), np.asarray(n, float)
    if len(n) < 3 or not 0 < p < 1:
        return 1.0, 0.0
    variance = p * (1 - p) / n
    z = (x / n - p) / np.sqrt(variance)
    low, high = np.quantile(z, [0.1, 0.9])
    z = np.clip(z, low, high)
    units = len(z)
    phi = float(np.sum(z ** 2) / units)
    if phi <= 1:
        return phi, 0.0
    w = 1 / variance
    tau2 = (units * phi - (units - 1)) / (w.sum() - (w ** 2).sum() / w.sum())
    return phi, float(max(tau2, 0.0))


def label(value: float, n: float, p: float, tau2: float = 0.0) -> str:
    bounds = limits(p, np.array([n]), tau2)
    for level in ("99.8", "95"):
        if value > bounds[f"upper_{level}"][0]:
            return f"high ({level} %)"
        if value < bounds[f"lower_{level}"][0]:
            return f"low ({level} %)"
    return "not significant"


def funnel_table(units: pl.DataFrame, p: float) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """Units with their label, the limit curves over n, and the dispersion summary.

    ``units`` has unit_code, unit_name, numerator, denominator."""
    x, n = units["numerator"].to_numpy(), units["denominator"].to_numpy()
    phi, tau2 = overdispersion(p, x, n)
    labelled = units.with_columns(
        (pl.col("numerator") / pl.col("denominator")).alias("proportion"),
        pl.Series("label", [label(a / b, b, p) for a, b in zip(x, n)], dtype=pl.String),
        pl.Series("label_overdispersed",
                  [label(a / b, b, p, tau2) for a, b in zip(x, n)], dtype=pl.String),
    )
    top = max(int(n.max()) if len(n) else 10, 10)
    grid = np.unique(np.round(np.geomspace(1, top * 1.1, 200)).astype(int))
    curves = pl.DataFrame({"n": grid, "national_proportion": p,
                           **limits(p, grid),
                           **{f"{k}_overdispersed": v for k, v in limits(p, grid, tau2).items()}})
    return labelled, curves, {"phi": phi, "tau2": tau2, "overdispersed": phi > 1}
