"""Case-mix models against statsmodels on the record-level design, O/E, smoothing, and a
simulated hospital whose excess mortality only risk adjustment reveals."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm
from scipy import stats

from pipelines import engine, warehouse
from pipelines.definitions import load_definitions
from pipelines.ingest import ingest_directory
from pipelines.risk_adjustment import (
    RiskModelError, adjust, c_statistic, expected_cells, label_expression, poisson_interval,
)
from pipelines.settings import INDICATORS_DIR
from tests.builders import TEST_KEY, cpr_for, stroke_row, write_extract

DEFINITIONS = {d.id: d for d in load_definitions(INDICATORS_DIR)}
STROKE_06 = DEFINITIONS["STROKE_06"]
GRAIN = ["hospital_code", "municipality_code", "month"]


def simulated_records(n: int = 4000, seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 100, n)
    sss = np.where(rng.random(n) < 0.08, np.nan, rng.integers(0, 59, n)).astype(float)
    mrs = np.where(rng.random(n) < 0.08, np.nan, rng.integers(0, 6, n)).astype(float)
    sex = rng.choice(["M", "F"], n)
    risk = 1 / (1 + np.exp(-(-2.5 + 0.03 * (age - 70) - 0.05 * np.nan_to_num(sss, nan=20)
                             + 0.3 * np.nan_to_num(mrs, nan=3) + 0.2 * (sex == "F"))))
    return pl.DataFrame({
        "hospital_code": rng.choice(["H401", "H201", "H301"], n),
        "municipality_code": rng.choice(["101", "751"], n),
        "month": rng.choice(["2024-01", "2024-02", "2025-03"], n),
        "outcome": rng.random(n) < risk,
        "age": age.astype(np.int16), "sex": sex,
        "sss_score": pl.Series(sss).fill_nan(None).cast(pl.Int16),
        "prestroke_mrs": pl.Series(mrs).fill_nan(None).cast(pl.Int16),
    }).with_columns(pl.col("month").str.slice(0, 4).alias("year"))


def record_level_logit(records: pl.DataFrame):
    """The reference: statsmodels Logit on one row per record with explicit dummies."""
    labelled = records.with_columns(label_expression(v) for v in STROKE_06.risk_adjustment.case_mix)
    columns, names = [np.ones(labelled.height)], ["intercept"]
    for v in STROKE_06.risk_adjustment.case_mix:
        for index, category in enumerate(v.categories[1:], start=1):
            columns.append((labelled[v.name] == index).to_numpy().astype(float))
            names.append(f"{v.name}[{category.label}]")
    X = np.column_stack(columns)
    result = sm.Logit(labelled["outcome"].to_numpy().astype(float), X).fit(disp=0, tol=1e-12,
                                                                           maxiter=200)
    return result, X, names


def test_coefficients_and_expected_equal_a_record_level_logit():
    records = simulated_records().filter(pl.col("month").str.starts_with("2024"))
    cells, fits = expected_cells(records, STROKE_06, GRAIN)
    reference, X, names = record_level_logit(records)
    ours = fits[0].coefficients
    assert ours["term"].to_list() == names
    np.testing.assert_allclose(ours["estimate"].to_numpy(), reference.params, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours["std_error"].to_numpy(), reference.bse, rtol=1e-6)
    p = reference.predict(X)
    by_cell = records.with_columns(pl.Series("p", p)).group_by(GRAIN).agg(pl.col("p").sum())
    joined = cells.join(by_cell, on=GRAIN)
    assert joined.height == by_cell.height
    np.testing.assert_allclose(joined["expected"], joined["p"], rtol=1e-6)
    # Logistic MLE with an intercept: expected events sum to the observed events.
    assert cells["expected"].sum() == pytest.approx(records["outcome"].sum(), rel=1e-9)


def test_each_year_has_its_own_model():
    records = simulated_records()
    _, fits = expected_cells(records, STROKE_06, GRAIN)
    assert [f.year for f in fits] == ["2024", "2025"]
    assert sum(f.n for f in fits) == records.height


def test_c_statistic_equals_mann_whitney_on_records():
    rng = np.random.default_rng(3)
    p = rng.choice([0.1, 0.2, 0.2, 0.5, 0.7], 30)
    n = rng.integers(1, 20, 30)
    events = rng.binomial(n, p)
    expanded_p = np.repeat(p, n)
    outcome = np.concatenate([np.r_[np.ones(e), np.zeros(k - e)] for e, k in zip(events, n)])
    u = stats.mannwhitneyu(expanded_p[outcome == 1], expanded_p[outcome == 0]).statistic
    assert c_statistic(p, events, n) == pytest.approx(u / ((outcome == 1).sum() * (outcome == 0).sum()))


def test_a_category_with_records_but_no_events_stops_with_its_name():
    records = simulated_records().filter(pl.col("month").str.starts_with("2024"))
    records = records.with_columns(
        pl.when(pl.col("prestroke_mrs").is_null()).then(False).otherwise(pl.col("outcome"))
        .alias("outcome"))
    with pytest.raises(RiskModelError, match=r"STROKE_06 2024: case-mix variable 'prestroke_mrs', "
                                             r"category 'missing' has \d+ records but no events"):
        expected_cells(records, STROKE_06, GRAIN)


def test_a_category_without_records_is_dropped():
    records = simulated_records().filter(pl.col("month").str.starts_with("2024"),
                                         pl.col("age") >= 65)
    _, fits = expected_cells(records, STROKE_06, GRAIN)
    assert fits[0].dropped_categories == ["age_group=18-64"]
    assert "age_group[65-74]" not in fits[0].coefficients["term"].to_list()  # the new reference


@pytest.mark.parametrize("observed", [0, 1, 2, 7, 40, 250])
def test_poisson_interval_is_the_chi_square_formula(observed):
    low, high = poisson_interval(np.array([observed]))
    expected_low = 0.0 if observed == 0 else stats.chi2.ppf(0.025, 2 * observed) / 2
    assert low[0] == pytest.approx(expected_low, abs=1e-12)
    assert high[0] == pytest.approx(stats.chi2.ppf(0.975, 2 * observed + 2) / 2, rel=1e-12)
    assert low[0] <= observed <= high[0]


def adjusted(rows: list[dict]) -> pl.DataFrame:
    frame = pl.DataFrame(rows).with_columns(
        pl.lit("X").alias("indicator_id"), pl.lit("year").alias("period_type"),
        pl.lit("2024").alias("period"), pl.lit(0.1).alias("national_proportion"))
    return adjust(frame)


def test_oe_adjusted_and_small_units():
    out = adjusted([
        {"level": "national", "numerator": 30, "denominator": 300, "expected": 30.0, "variance": 27.0},
        {"level": "hospital", "numerator": 20, "denominator": 100, "expected": 10.0, "variance": 9.0},
        {"level": "hospital", "numerator": 0, "denominator": 100, "expected": 10.0, "variance": 9.0},
        {"level": "hospital", "numerator": 1, "denominator": 2, "expected": 0.5, "variance": 0.2},
    ]).to_dicts()
    national, high, zero, tiny = out
    assert national["oe_ratio"] == 1.0 and national["smoothed_proportion"] == pytest.approx(0.1)
    assert high["oe_ratio"] == 2.0 and high["adjusted_proportion"] == pytest.approx(0.2)
    assert high["oe_low"] == pytest.approx(stats.chi2.ppf(0.025, 40) / 2 / 10)
    assert high["adjusted_low"] == pytest.approx(high["oe_low"] * 0.1)
    assert zero["oe_ratio"] == 0.0 and zero["oe_low"] == 0.0
    assert tiny["oe_ratio"] == 2.0
    assert tiny["adjusted_proportion"] is None and tiny["smoothed_proportion"] is None


def test_smoothing_by_hand():
    out = adjusted([
        {"level": "hospital", "numerator": 20, "denominator": 100, "expected": 10.0, "variance": 9.0},
        {"level": "hospital", "numerator": 5, "denominator": 100, "expected": 10.0, "variance": 9.0},
    ])
    noise = 0.1 ** 2 * 9.0 / 10.0 ** 2                     # 0.0009 for both
    signal = ((0.2 - 0.1) ** 2 + (0.05 - 0.1) ** 2) / 2 - noise  # 0.00625 - 0.0009
    w = signal / (signal + noise)
    assert out["smoothed_proportion"].to_list() == pytest.approx(
        [w * 0.2 + (1 - w) * 0.1, w * 0.05 + (1 - w) * 0.1])


def test_risk_adjustment_reveals_what_the_crude_rate_hides(input_dir):
    """H401 treats younger, milder strokes but with e (about 2.7) times the odds of death;
    H201 treats the oldest, most severe; H301 treats everyone, so the case-mix categories
    overlap across hospitals as they do in real data."""
    rng = np.random.default_rng(11)
    rows = []
    for i in range(4000):
        hospital = ["H401", "H201", "H301", "H301"][i % 4]
        if hospital == "H401":
            age, sss = int(rng.integers(40, 75)), int(rng.integers(35, 59))
        elif hospital == "H201":
            age, sss = int(rng.integers(75, 100)), int(rng.integers(0, 35))
        else:
            age, sss = int(rng.integers(40, 100)), int(rng.integers(0, 59))
        logit = -1.6 + 0.03 * (age - 70) - 0.04 * (sss - 30) + (1.0 if hospital == "H401" else 0)
        dies = rng.random() < 1 / (1 + np.exp(-logit))
        admitted = dt.datetime(2024, 1, 1, 8) + dt.timedelta(hours=int(rng.integers(0, 24 * 300)))
        born = dt.date(admitted.year - age, 6, 15) if admitted.month > 6 else dt.date(
            admitted.year - age - 1, 6, 15)
        rows.append(stroke_row(
            record_id=f"S{i}", cpr=cpr_for(born, i), hospital_code=hospital, sss_score=sss,
            prestroke_mrs=int(rng.integers(0, 3)), admission_at=f"{admitted:%Y-%m-%d %H:%M}",
            death_date=f"{admitted.date() + dt.timedelta(days=int(rng.integers(0, 25))):%Y-%m-%d}"
            if dies else None))
    write_extract(input_dir, "stroke", "2024-12-31", rows)
    path = input_dir.parent / "w.duckdb"
    ingest_directory(input_dir, path, TEST_KEY)
    with warehouse.connect(path) as con:
        results = engine.compute(con, [STROKE_06])
    year = results.filter(pl.col("period") == "2024", pl.col("level") == "hospital")
    h = {r["unit_code"]: r for r in year.to_dicts()}
    assert h["H401"]["proportion"] < h["H201"]["proportion"]       # crude: H401 looks better
    assert h["H401"]["oe_low"] > 1                                  # adjusted: flagged high
    assert h["H401"]["adjusted_proportion"] > h["H201"]["adjusted_proportion"]
    assert h["H201"]["oe_high"] > 1 > h["H201"]["oe_low"] or h["H201"]["oe_high"] < 1
    national = results.filter(pl.col("period") == "2024", pl.col("level") == "national").row(
        0, named=True)
    assert national["expected"] == pytest.approx(national["numerator"], rel=1e-9)
    assert year["expected"].sum() == pytest.approx(national["expected"], rel=1e-9)
