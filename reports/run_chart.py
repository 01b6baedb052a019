"""Run charts with the Anhøj rules, as qicharts2 implements them.

Centre line = median; points on it are ignored; n = the remaining points. A
shift signal when the longest run on one side exceeds round(log2 n) + 3; a
crossings signal when the centre line is crossed fewer times than the 5 %
quantile of Binomial(n - 1, 0.5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Anhoej:
    centre: float
    useful_points: int
    longest_run: int
    longest_run_max: int
    crossings: int
    crossings_min: int

    @property
    def shift(self) -> bool:
        return self.longest_run > self.longest_run_max

    @property
    def too_few_crossings(self) -> bool:
        return self.crossings < self.crossings_min

    @property
    def signal(self) -> bool:
        return self.shift or self.too_few_crossings


def longest_run_max(n: int) -> int:
    return round(math.log2(n)) + 3 if n > 0 else 0


def crossings_min(n: int) -> int:
    return int(stats.binom.ppf(0.05, n - 1, 0.5)) if n > 1 else 0


def anhoej(values: np.ndarray) -> Anhoej:
    values = np.asarray(values, float)
    values = values[~np.isnan(values)]
    centre = float(np.median(values)) if len(values) else float("nan")
    sides = np.sign(values - centre)
    sides = sides[sides != 0]
    n = len(sides)
    longest, run = (1, 1) if n else (0, 0)
    for previous, current in zip(sides, sides[1:]):
        run = run + 1 if current == previous else 1
        longest = max(longest, run)
    crossings = int(np.sum(sides[1:] != sides[:-1])) if n else 0
    return Anhoej(centre, n, longest, longest_run_max(n), crossings, crossings_min(n))


def long_runs(values) -> np.ndarray:
    """Which points belong to a run on one side of the median longer than the Anhøj
    limit (what a chart marks as the shift signal); nan points and points on the
    median belong to none and do not break a run, as in ``anhoej``."""
    values = np.asarray(values, float)
    result = anhoej(values)
    marked = np.zeros(len(values), bool)
    if not result.shift:
        return marked
    useful = [i for i, v in enumerate(values) if not np.isnan(v) and v != result.centre]
    sides = [np.sign(values[i] - result.centre) for i in useful]
    start = 0
    for k in range(1, len(useful) + 1):
        if k == len(useful) or sides[k] != sides[start]:
            if k - start > result.longest_run_max:
                marked[useful[start:k]] = True
            start = k
    return marked
