"""Laney's P′ chart as qicharts2 computes it (R/helper.functions.R, qic.pp)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reports.pchart import p_prime


def test_check_values_worked_by_hand():
    # p̄ = 45/400 = 0.1125; sigma = sqrt(0.1125 * 0.8875 / 100) = 0.0315980
    # z = (-0.0125, 0.0075, -0.0325, 0.0375) / sigma; moving ranges 0.02, 0.04, 0.07 / sigma
    # mean MR = 1.371392; sigma_z = 1.371392 / 1.128 = 1.215773
    # UCL = 0.1125 + 3 * 0.0315980 * 1.215773 = 0.2277482; LCL = 0.1125 - 0.1152482 < 0 -> 0
    chart = p_prime([10, 12, 8, 15], [100, 100, 100, 100])
    assert chart.centre == pytest.approx(0.1125)
    assert chart.sigma_z == pytest.approx(1.215773, abs=1e-6)
    assert chart.upper == pytest.approx([0.2277482] * 4, abs=1e-6)
    assert chart.lower == pytest.approx([0.0] * 4)
    assert chart.upper_95 == pytest.approx([0.1125 + 2 * 0.0315980 * 1.215773] * 4, abs=1e-6)
    assert not chart.outside.any()


def test_limits_follow_each_months_n():
    # p̄ = 34/210; a month's sigma is sqrt(p̄(1-p̄)/n_i): the smallest month has the widest limits
    chart = p_prime([5, 20, 9], [50, 100, 60])
    assert chart.centre == pytest.approx(34 / 210)
    widths = chart.upper - chart.centre
    assert widths[0] > widths[2] > widths[1]
    assert widths[0] / widths[1] == pytest.approx(math.sqrt(100 / 50))


def test_a_month_without_data_is_a_gap_and_its_moving_ranges_are_dropped():
    with_gap = p_prime([10, np.nan, 12, 8], [100, 0, 100, 100])
    assert np.isnan(with_gap.proportion[1]) and np.isnan(with_gap.upper[1])
    centre = 30 / 300
    sigma = math.sqrt(centre * (1 - centre) / 100)
    # only the range between the 3rd and 4th month remains (qicharts2: mean(..., na.rm = TRUE))
    assert with_gap.sigma_z == pytest.approx(abs(0.12 - 0.08) / sigma / 1.128)


def test_a_point_beyond_its_limits_is_a_signal():
    chart = p_prime([10, 11, 9, 10, 10, 11, 9, 40, 10, 10], [100] * 10)
    assert chart.outside.tolist() == [False] * 7 + [True] + [False] * 2


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(5, 95), min_size=4, max_size=24), st.integers(2, 50))
def test_limits_do_not_shrink_with_larger_samples(percents, k):
    """Laney's point: scaling every month's n (and events) by k leaves the P′ limits as they
    are, where a P chart's would narrow by sqrt(k)."""
    y = np.array(percents, float)
    base = p_prime(y, np.full(len(y), 100.0))
    scaled = p_prime(y * k, np.full(len(y), 100.0 * k))
    assert scaled.centre == pytest.approx(base.centre)
    finite = ~np.isnan(base.upper)
    assert scaled.upper[finite] == pytest.approx(base.upper[finite], abs=1e-9)
    assert scaled.lower[finite] == pytest.approx(base.lower[finite], abs=1e-9)


def test_the_annual_report_writes_p_prime_data_for_the_nation_and_hospitals(sample_reports):
    data = pl.read_parquet(sample_reports["annual"] / "stroke" / "p_prime_chart.parquet")
    assert {"national", "hospital"} <= set(data["level"])
    one = data.filter(pl.col("indicator_id") == "STROKE_01", pl.col("level") == "national")
    assert one.height == 12
    again = p_prime(one["numerator"].cast(pl.Float64).to_numpy(),
                    one["denominator"].cast(pl.Float64).fill_null(0).to_numpy())
    assert one["ucl"].to_numpy() == pytest.approx(again.upper, nan_ok=True)  # hidden months: none
    html = (sample_reports["annual"] / "stroke" / "annual_report.html").read_text(encoding="utf-8")
    assert "P′-kontroldiagram (Laney)" in html
    section = html[html.index('id="STROKE_01"'):html.index('id="STROKE_02"')]
    assert '"updatemenus"' in section  # every hospital's P′ chart, one at a time
    hospitals = set(data.filter(pl.col("indicator_id") == "STROKE_01",
                                pl.col("level") == "hospital")["unit_name"])
    assert len(hospitals) > 10 and all(f'"label":"{h}"' in section for h in hospitals)
