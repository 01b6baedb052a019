"""The case-mix fit (pipelines/logistic.py) against statsmodels' binomial GLM, which a run
no longer imports: coefficients, standard errors, intervals and predictions on random
grouped data, a separated category, and SciPy's chi-square to the bit. (Millions of records
per pattern and tied risks: tests/test_logistic_limits.py.)"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.genmod import families
from statsmodels.genmod.generalized_linear_model import GLM

from pipelines.logistic import fit_logistic
from pipelines.risk_adjustment import hosmer_lemeshow, poisson_interval


@st.composite
def grouped_data(draw):
    """Covariate patterns of 1-3 categorical variables (dummy-coded with an intercept), with
    records and events per pattern drawn from a logistic model."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    levels = [draw(st.integers(2, 4)) for _ in range(draw(st.integers(1, 3)))]
    patterns = np.array(np.meshgrid(*[np.arange(k) for k in levels])).reshape(len(levels), -1).T
    columns = [np.ones(len(patterns))]
    for i, k in enumerate(levels):
        columns += [(patterns[:, i] == level).astype(float) for level in range(1, k)]
    X = np.column_stack(columns)
    beta = rng.normal(0, 1, X.shape[1]) + np.r_[draw(st.floats(-3, 1)), np.zeros(X.shape[1] - 1)]
    n = rng.integers(draw(st.integers(1, 40)), 400, len(patterns)).astype(float)
    events = rng.binomial(n.astype(int), 1 / (1 + np.exp(-X @ beta))).astype(float)
    # Every dummy needs records with and without events (as the risk adjustment requires).
    for column in range(1, X.shape[1]):
        rows = X[:, column] == 1
        events[np.flatnonzero(rows)[0]] = max(1.0, events[np.flatnonzero(rows)[0]])
        events[np.flatnonzero(rows)[-1]] = min(n[np.flatnonzero(rows)[-1]] - 1,
                                               events[np.flatnonzero(rows)[-1]])
    events = np.clip(events, 0, n)
    return X, events, n


def statsmodels_fit(X, events, n):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GLM(np.column_stack([events, n - events]), X,
                   family=families.Binomial()).fit(tol=1e-10, maxiter=100)


@settings(max_examples=150, deadline=None)
@given(grouped_data())
def test_the_fit_equals_statsmodels_glm(data):
    X, events, n = data
    reference = statsmodels_fit(X, events, n)
    ours = fit_logistic(X, events, n, tol=1e-10)
    assert ours.converged == bool(reference.converged)
    if not reference.converged or np.any(np.abs(reference.params) > 30):
        return  # refused by the risk adjustment either way (see the test below)
    risk = reference.predict(X)
    if np.any((risk < 1e-7) | (risk > 1 - 1e-7)):
        # A category (or the reference) without events or non-events: no maximum, so the
        # coefficients and standard errors are where each fit stopped; the risks are not.
        np.testing.assert_allclose(ours.predict(X), reference.predict(X), atol=1e-9)
        return
    np.testing.assert_allclose(ours.params, reference.params, rtol=1e-9, atol=1e-9)
    # Ours: the information at the fit; statsmodels': at the iteration before its last, which
    # is off by up to ~2e-6 with a few events (3 of 36: 0.6154873 against the exact 0.6154882).
    np.testing.assert_allclose(ours.std_errors, reference.bse, rtol=1e-5)
    information = -reference.model.hessian(ours.params, observed=False)
    np.testing.assert_allclose(ours.std_errors, np.sqrt(np.diag(np.linalg.inv(information))),
                               rtol=1e-9)
    np.testing.assert_allclose(ours.conf_int(), reference.conf_int(), rtol=1e-5, atol=2e-5)
    np.testing.assert_allclose(ours.predict(X), reference.predict(X), rtol=1e-10)
    # With an intercept, the maximum-likelihood expected events equal the observed ones.
    assert (ours.predict(X) * n).sum() == pytest.approx(events.sum(), rel=1e-9)


def test_a_separated_category_is_fitted_as_statsmodels_fits_it():
    """Every record of one category has the event: the likelihood has no maximum, and both
    fits stop where the deviance no longer moves, with that category's risk at 1 (R's glm
    does the same, with a warning). The expected events still equal the observed ones."""
    X = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 1], [1, 1, 1]], float)
    n, events = np.array([50, 40, 60, 30.0]), np.array([10, 40, 12, 30.0])
    reference = statsmodels_fit(X, events, n)
    ours = fit_logistic(X, events, n)
    assert ours.converged and reference.converged
    np.testing.assert_allclose(ours.predict(X), reference.predict(X), rtol=1e-12)
    np.testing.assert_allclose(ours.params[:2], reference.params[:2], rtol=1e-9)
    assert ours.predict(X)[[1, 3]] == pytest.approx([1, 1], abs=1e-12)


@pytest.mark.parametrize("observed", [0, 1, 2, 7, 40, 250, 10_000])
def test_the_poisson_interval_is_scipys_chi_square_to_the_bit(observed):
    low, high = poisson_interval(np.array([observed]))
    assert low[0] == (0.0 if observed == 0 else stats.chi2.ppf(0.025, 2 * observed) / 2)
    assert high[0] == stats.chi2.ppf(0.975, 2 * observed + 2) / 2


def test_hosmer_lemeshow_p_is_scipys_chi_square_to_the_bit():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.6, 200)
    n = rng.integers(1, 30, 200).astype(float)
    events = rng.binomial(n.astype(int), np.clip(p * 1.2, 0, 1)).astype(float)
    chi2, df, p_value = hosmer_lemeshow(p, events, n)
    assert chi2 > 0 and p_value == float(stats.chi2.sf(chi2, df))
