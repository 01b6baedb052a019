"""The risk adjustment's decisions where the likelihood is awkward (found by review of the
NumPy fit, each a minimal set of covariate patterns, statsmodels fitted as the reference):
millions of records per pattern, a category where every record has the event, aliased
case-mix terms, and patterns of equal risk in the c-statistic and Hosmer-Lemeshow."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import polars as pl
import pytest
from statsmodels.genmod import families
from statsmodels.genmod.generalized_linear_model import GLM

from pipelines.definitions import Definition, load_definitions
from pipelines.risk_adjustment import design, fit_year
from pipelines.settings import INDICATORS_DIR

STROKE_06 = {d.id: d for d in load_definitions(INDICATORS_DIR)}["STROKE_06"]
SEX = {"name": "sex", "column": "sex",
       "categories": [{"label": "M", "values": ["M"]}, {"label": "F", "values": ["F"]}]}
SEX_REVERSED = {"name": "sex_b", "column": "sex",
                "categories": [{"label": "F", "values": ["F"]}, {"label": "M", "values": ["M"]}]}
OLD = {"name": "old", "column": "age",
       "categories": [{"label": "<70", "max": 69}, {"label": "70+", "min": 70}]}
AGE4 = {"name": "age4", "column": "age",
        "categories": [{"label": "<50", "max": 49}, {"label": "50-69", "min": 50, "max": 69},
                       {"label": "70-84", "min": 70, "max": 84}, {"label": "85+", "min": 85}]}
YEAR = "2024"


def definition(*case_mix: dict) -> Definition:
    """STROKE_06 with another case mix."""
    fields = STROKE_06.model_dump()
    fields["risk_adjustment"] = {"case_mix": list(case_mix)}
    return Definition.model_validate(fields)


def patterns(d: Definition, rows: list[tuple]) -> pl.DataFrame:
    """One row per covariate pattern: each variable's category index, records, events."""
    names = [v.name for v in d.risk_adjustment.case_mix]
    schema = {**{n: pl.UInt8 for n in names}, "n": pl.UInt32, "events": pl.UInt32}
    return pl.DataFrame(rows, schema=schema, orient="row").select(
        pl.lit(YEAR).alias("year"), pl.all())


def statsmodels_fit(d: Definition, part: pl.DataFrame):
    """The parent commit's fit: statsmodels' binomial GLM on the same design."""
    X, _, _ = design(part, d.risk_adjustment.case_mix, d.id, YEAR)
    events = part["events"].to_numpy().astype(float)
    n = part["n"].to_numpy().astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GLM(np.column_stack([events, n - events]), X,
                   family=families.Binomial()).fit(tol=1e-10, maxiter=100)


def refused(result) -> bool:
    """fit_year's refusal rule, applied to the statsmodels fit."""
    return (not result.converged or not np.all(np.isfinite(result.params))
            or bool(np.any(np.abs(result.params) > 30)))


def test_a_correct_model_on_ten_million_records_per_pattern_is_decided_as_statsmodels_decides():
    d = definition(OLD, SEX)
    # Events drawn from the model's own logit (-2, +0.5 if 70+, -0.3 if F): nothing separates.
    part = patterns(d, [(0, 0, 10_000_000, 1_192_136), (1, 0, 10_000_000, 1_823_134),
                        (0, 1, 10_000_000, 911_360), (1, 1, 10_000_000, 1_418_978)])
    reference = statsmodels_fit(d, part)
    assert not refused(reference)
    p, fit = fit_year(part, d, YEAR)  # the deviance's rounding noise alone stopped nothing
    assert fit.converged
    np.testing.assert_allclose(p, reference.predict(), rtol=1e-9)


@pytest.mark.parametrize("case_mix, rows", [
    ((OLD, SEX), [(0, 0, 1_000_000, 200_000), (1, 0, 1, 1),
                  (0, 1, 1_000_000, 200_000), (1, 1, 1, 1)]),
    ((OLD,), [(0, 1_000_000, 200_000), (1, 1, 1)]),
], ids=["two variables", "one variable"])
def test_a_category_where_every_record_has_the_event_has_a_proper_interval(case_mix, rows):
    d = definition(*case_mix)
    part = patterns(d, rows)
    reference = statsmodels_fit(d, part)
    assert not refused(reference)
    low, high = reference.conf_int().T
    assert np.all(np.isfinite(reference.bse)) and np.all((low < reference.params)
                                                           & (reference.params < high))
    _, fit = fit_year(part, d, YEAR)
    terms = fit.coefficients
    assert terms["std_error"].is_finite().all(), terms.to_dicts()
    assert ((terms["ci_low"] < terms["estimate"]) & (terms["estimate"] < terms["ci_high"])).all(), \
        terms.to_dicts()


def test_a_separated_category_at_a_registrys_size_has_statsmodels_risks(caplog):
    """Five records, all with the event: the likelihood has no maximum and the category's
    coefficient is where a fit stops (statsmodels' and ours may stop one iteration apart, so
    the estimates may differ by ~1). What is published from it must not: the risks (so the
    expected counts), the other terms, and a warning that names the category."""
    d = definition(OLD, SEX)
    part = patterns(d, [(0, 0, 12_000, 1_440), (1, 0, 5, 5), (0, 1, 12_000, 1_152), (1, 1, 5, 5)])
    reference = statsmodels_fit(d, part)
    assert not refused(reference)
    with caplog.at_level(logging.WARNING, logger="kvalitet.risk"):
        p, fit = fit_year(part, d, YEAR)
    np.testing.assert_allclose(p, reference.predict(), rtol=1e-9, atol=1e-12)
    terms = {row["term"]: row for row in fit.coefficients.to_dicts()}
    np.testing.assert_allclose([terms["intercept"]["estimate"], terms["sex[F]"]["estimate"]],
                               reference.params[[0, 2]], rtol=1e-9)
    separated = terms["old[70+]"]
    assert separated["estimate"] > 15 and separated["std_error"] > 100
    assert separated["ci_low"] < separated["estimate"] < separated["ci_high"]
    assert "every record of case-mix category old=70+ has the event" in caplog.text


def test_aliased_case_mix_terms_are_left_out_as_r_leaves_them_out(caplog):
    """Two case-mix variables on one column (sex M/F and F/M): sex_b[M] is the intercept
    minus sex[F]. statsmodels ran off and the run stopped; R's glm leaves the aliased term
    out (coefficient NA) and fits the rest, and so does the risk adjustment: the risks are
    those of the model without it, the term is listed as dropped, and a warning names it."""
    d = definition(SEX, AGE4, SEX_REVERSED)
    part = patterns(d, [(0, 0, 1, 15, 1), (0, 1, 1, 14, 0), (0, 2, 1, 4, 0), (0, 3, 1, 16, 0),
                        (1, 0, 0, 21, 1), (1, 1, 0, 19, 1), (1, 2, 0, 11, 1), (1, 3, 0, 14, 2)])
    X, names, _ = design(part, d.risk_adjustment.case_mix, d.id, YEAR)
    assert np.linalg.matrix_rank(X) == X.shape[1] - 1
    assert refused(statsmodels_fit(d, part))
    with caplog.at_level(logging.WARNING, logger="kvalitet.risk"):
        p, fit = fit_year(part, d, YEAR)
    without = definition(SEX, AGE4)
    reference = statsmodels_fit(without, part.drop("sex_b"))
    np.testing.assert_allclose(p, reference.predict(), rtol=1e-9)
    assert "sex_b[M]" not in fit.coefficients["term"].to_list()
    assert fit.coefficients["term"].to_list() == [t for t in names if t != "sex_b[M]"]
    assert fit.dropped_categories == ["sex_b[M] (aliased)"]
    assert "sex_b[M] always move with other terms (aliased)" in caplog.text


def test_patterns_of_equal_risk_are_ties_in_the_c_statistic_and_hosmer_lemeshow():
    d = definition(SEX, OLD)
    # Age adds nothing here: M 2 events of 6 records (risk 1/3 at both ages), F 1 of 21.
    part = patterns(d, [(0, 0, 4, 1), (0, 1, 2, 1), (1, 0, 14, 1), (1, 1, 7, 0)])
    p, fit = fit_year(part, d, YEAR)
    np.testing.assert_allclose(p, [1 / 3, 1 / 3, 1 / 21, 1 / 21], rtol=1e-12)
    # Event/non-event pairs: M events over F non-events 2*20 concordant, F events over M
    # non-events 1*4 discordant, within M 2*4 and within F 1*20 tied (half): 54 of 3*24.
    assert fit.c_statistic == pytest.approx(54 / 72, abs=1e-12)
    # Two risk groups, each with expected events = observed events (the MLE with sex).
    assert fit.hosmer_lemeshow_chi2 == pytest.approx(0.0, abs=1e-9)
