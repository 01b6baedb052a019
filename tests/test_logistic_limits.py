"""The case-mix fit where rounding decides (found by review, each a minimal synthetic case):
millions of records per pattern, where the deviance's own rounding noise exceeds the
convergence tolerance (statsmodels' rule alone then stops or not by chance); standard errors,
which statsmodels takes from the iteration before the last; and Hosmer-Lemeshow with risks
that tie in exact arithmetic but differ in their last bit."""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.genmod import families
from statsmodels.genmod.generalized_linear_model import GLM

from pipelines.definitions import Definition
from pipelines.logistic import fit_logistic
from pipelines.risk_adjustment import expected_from_patterns, fit_year, hosmer_lemeshow

TWO_PATTERNS = np.array([[1, 0], [1, 1]], float)  # intercept and one dummy: saturated


def statsmodels_fit(X, events, n):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GLM(np.column_stack([events, n - events]), X,
                   family=families.Binomial()).fit(tol=1e-10, maxiter=100)


def definition(variables: int, categories: int) -> Definition:
    """An outcome indicator whose case mix is ``variables`` variables of ``categories``
    categories each (codes 0, 1, ... in the pattern columns v0, v1, ...)."""
    return Definition.model_validate({
        "id": "REVIEW_01", "version": 1, "registry": "stroke", "type": "outcome",
        "population": "age >= 18", "numerator": "death_date IS NOT NULL",
        "standard": {"value": 0.1, "direction": "lower_is_better"},
        "risk_adjustment": {"case_mix": [
            {"name": f"v{i}", "column": "sex",
             "categories": [{"label": f"c{j}", "values": [f"c{j}"]} for j in range(categories)]}
            for i in range(variables)]},
    })


def patterns(rows: list[tuple], year: int = 2024) -> pl.DataFrame:
    """(codes..., records, events) per covariate pattern, one unit, one year."""
    width = len(rows[0]) - 2
    return pl.DataFrame(
        {"unit": ["U1"] * len(rows), "year": [year] * len(rows),
         **{f"v{i}": [r[i] for r in rows] for i in range(width)},
         "n": [r[-2] for r in rows], "events": [r[-1] for r in rows]},
        schema={"unit": pl.String, "year": pl.Int32, **{f"v{i}": pl.UInt8 for i in range(width)},
                "n": pl.UInt32, "events": pl.UInt32})


def test_a_saturated_model_on_twenty_million_records_is_accepted_as_statsmodels_accepted_it():
    events, n = np.array([2_803_197.0, 4_777_087.0]), np.array([1e7, 1e7])
    assert statsmodels_fit(TWO_PATTERNS, events, n).converged  # the old path accepted it
    cells = patterns([(0, 10_000_000, 2_803_197), (1, 10_000_000, 4_777_087)])
    expected, fits = expected_from_patterns(cells, definition(1, 2), ["unit"])
    # Saturated: the expected events are the observed ones.
    assert expected["expected"].item() == pytest.approx(events.sum(), rel=1e-12)
    assert fits[0].converged


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(1_000_000, 10_000_000), st.floats(0.05, 0.5), st.floats(0.05, 0.5))
def test_a_well_posed_model_on_millions_of_records_per_pattern_converges(records, rate_a, rate_b):
    n = np.array([records, records], float)
    events = np.round(n * [rate_a, rate_b])
    with np.errstate(all="ignore"):
        fit = fit_logistic(TWO_PATTERNS, events, n)
    assert fit.converged
    assert fit.predict(TWO_PATTERNS) == pytest.approx(events / n, rel=1e-9)


def test_standard_errors_are_the_inverse_information_at_the_fit():
    """At 1e5 records per pattern statsmodels' last deviance change is within rounding of its
    tolerance, and its standard errors (from the previous iteration's weights) move by ~4e-8
    with where it stops. Ours are the information's at the fitted probabilities: for an
    intercept and one dummy, 1/(n p (1-p)) of the reference pattern, plus the other's."""
    events, n = np.array([11_417.0, 41_210.0]), np.array([1e5, 1e5])
    ours = fit_logistic(TWO_PATTERNS, events, n)
    p = events / n
    variance = 1 / (n * p * (1 - p))
    np.testing.assert_allclose(ours.std_errors, np.sqrt([variance[0], variance.sum()]),
                               rtol=1e-10)
    reference = statsmodels_fit(TWO_PATTERNS, events, n)
    np.testing.assert_allclose(ours.std_errors, reference.bse, rtol=1e-6)


def test_hosmer_lemeshow_does_not_depend_on_the_last_bit_of_a_tied_risk():
    p = np.array([0.1, 0.2, 0.3, 0.3, 0.45, 0.6])
    n = np.array([100, 80, 50, 50, 90, 100.0])
    events = np.array([12, 15, 18, 12, 40, 58.0])
    nudged = p.copy()
    nudged[3] = np.nextafter(p[3], 1)
    chi2, df, p_value = hosmer_lemeshow(p, events, n)
    chi2_nudged, df_nudged, p_value_nudged = hosmer_lemeshow(nudged, events, n)
    assert df_nudged == df
    assert chi2_nudged == pytest.approx(chi2, rel=1e-9, abs=1e-9)
    assert p_value_nudged == pytest.approx(p_value, rel=1e-9)


def test_hosmer_lemeshow_of_a_model_with_twin_categories_equals_the_statsmodels_fits():
    rows = [(0, 0, 340, 68), (0, 1, 256, 109), (0, 2, 388, 117),
            (1, 0, 293, 19), (1, 1, 223, 94), (1, 2, 18, 5),
            (2, 0, 293, 19), (2, 1, 223, 94), (2, 2, 18, 5)]  # v0 = 1 and v0 = 2 are twins
    cells = patterns(rows)
    _, fit = fit_year(cells, definition(2, 3), "2024")
    codes = np.array([r[:2] for r in rows])
    X = np.column_stack([np.ones(len(rows))] + [(codes[:, v] == c).astype(float)
                                                for v in (0, 1) for c in (1, 2)])
    n, events = np.array([r[2] for r in rows], float), np.array([r[3] for r in rows], float)
    reference = hosmer_lemeshow(statsmodels_fit(X, events, n).predict(X), events, n)
    assert (fit.hosmer_lemeshow_df, fit.hosmer_lemeshow_p) == (
        reference[1], pytest.approx(reference[2], rel=1e-9))
