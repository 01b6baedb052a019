import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from pipelines.intervals import clopper_pearson, wilson


@pytest.mark.parametrize("x, n, low, high", [
    (65, 100, 0.55254443296887967, 0.73635751756902468),
    (1, 100, 0.0017674320641406511, 0.054486196178705294),
    (0, 3, 0.0, 0.5614970317550454),
])
def test_wilson_published_values(x, n, low, high):
    got = wilson(np.array([x]), np.array([n]))
    assert got[0][0] == pytest.approx(low, abs=1e-12)
    assert got[1][0] == pytest.approx(high, rel=1e-12)


def grid():
    return [(x, n) for n in (1, 2, 3, 5, 17, 100, 1000) for x in sorted({0, 1, n // 3, n - 1, n})]


@pytest.mark.parametrize("x, n", grid())
def test_wilson_equals_statsmodels(x, n):
    low, high = wilson(np.array([x]), np.array([n]))
    ref = proportion_confint(x, n, alpha=0.05, method="wilson")
    assert (low[0], high[0]) == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("x, n", grid())
def test_clopper_pearson_equals_statsmodels(x, n):
    low, high = clopper_pearson(np.array([x]), np.array([n]))
    ref = proportion_confint(x, n, alpha=0.05, method="beta")
    assert (low[0], high[0]) == pytest.approx(ref, abs=1e-12)
