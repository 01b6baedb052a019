"""Funnel limits and Anhøj rules against the catalogue's check values and hand counts."""

import numpy as np
import pytest

from reports.funnel import label, limits, overdispersion
from reports.run_chart import anhoej, crossings_min, longest_run_max

P = 0.80642448


@pytest.mark.parametrize("n, key, value", [
    (1, "lower_95", 0.03204264), (2, "lower_95", 0.25885383), (3, "lower_99.8", 0.10150815),
])
def test_funnel_check_values(n, key, value):
    assert limits(P, np.array([n]))[key][0] == pytest.approx(value, abs=5e-9)


def test_funnel_limits_narrow_with_n_and_stay_in_range():
    bounds = limits(P, np.array([1, 10, 100, 10_000]))
    assert np.all(np.diff(bounds["upper_95"]) <= 0) and np.all(np.diff(bounds["lower_95"]) >= 0)
    assert bounds["upper_95"][0] == 1.0 and bounds["lower_99.8"][0] == 0.0
    assert np.all(bounds["lower_99.8"] <= bounds["lower_95"])


def test_labels():
    assert label(0.5, 100, 0.8) == "low (99.8 %)"
    assert label(0.72, 100, 0.8) == "low (95 %)"
    assert label(0.8, 100, 0.8) == "not significant"
    assert label(0.9, 100, 0.8) == "high (95 %)"


def test_no_overdispersion_when_units_agree():
    n = np.full(20, 200)
    assert overdispersion(0.5, n * 0.5, n) == (0.0, 0.0)


def test_overdispersion_adds_tau2():
    rng = np.random.default_rng(0)
    n = np.full(30, 500)
    x = rng.binomial(n, rng.uniform(0.5, 0.9, 30))
    phi, tau2 = overdispersion(float(x.sum() / n.sum()), x, n)
    assert phi > 1 and tau2 > 0
    wider = limits(0.7, np.array([500]), tau2)["upper_95"][0]
    assert wider > limits(0.7, np.array([500]))["upper_95"][0]


@pytest.mark.parametrize("n, run, crossings", [(10, 6, 2), (24, 8, 8), (50, 9, 19)])
def test_anhoej_check_values(n, run, crossings):
    assert (longest_run_max(n), crossings_min(n)) == (run, crossings)


def test_anhoej_by_hand():
    # sorted: 1 2 3 4 5.5 5.5 6 7 8 9 9 -> median 5.5; both 5.5s lie on it and are ignored.
    # sides: - - + + + + + - -  -> n 9, runs 2, 5, 2, crossings 2
    r = anhoej(np.array([1, 2, 6, 7, 5.5, 8, 9, 9, 3, 4, 5.5]))
    assert (r.centre, r.useful_points, r.longest_run, r.crossings) == (5.5, 9, 5, 2)
    assert (r.longest_run_max, r.crossings_min) == (round(np.log2(9)) + 3, 2)
    assert not r.shift


def test_anhoej_signals():
    shift = anhoej(np.r_[np.zeros(4), np.ones(8), np.zeros(4) + 0.5, np.ones(4) * 0.2])
    assert shift.longest_run >= 8 and shift.shift
    alternating = anhoej(np.tile([0.0, 1.0], 10))
    assert alternating.crossings == 19 and not alternating.signal
