"""Counts add up: national = sum of regions = sum of hospitals (= sum of municipalities);
a year = the sum of its months. Checked on generated data of many shapes."""

from __future__ import annotations

import polars as pl
from hypothesis import HealthCheck, given, settings, strategies as st

from pipelines import engine, warehouse
from pipelines.definitions import load_definitions
from pipelines.ingest import ingest_directory
from pipelines.settings import INDICATORS_DIR
from sample_data.generate import generate
from tests.builders import TEST_KEY

COUNTS = ["numerator", "denominator", "missing"]


def assert_additive(results: pl.DataFrame) -> None:
    counts = results.filter(pl.col("numerator").is_not_null())
    national = counts.filter(pl.col("level") == "national").select(
        "indicator_id", "period", *COUNTS)
    for level in ("region", "hospital", "clinic", "municipality"):
        parts = counts.filter(pl.col("level") == level)
        if parts.is_empty():
            continue
        summed = parts.group_by("indicator_id", "period").agg(pl.col(COUNTS).sum())
        indicators = parts["indicator_id"].unique()
        expected = national.filter(pl.col("indicator_id").is_in(indicators.implode()))
        joined = expected.join(summed, on=["indicator_id", "period"], how="full", suffix="_sum")
        for c in COUNTS:
            assert (joined[c] == joined[f"{c}_sum"]).all(), (level, c)
    months = counts.filter(pl.col("period_type") == "month").with_columns(
        pl.col("period").str.slice(0, 4)).group_by("indicator_id", "level", "unit_code", "period"
                                                   ).agg(pl.col(COUNTS).sum())
    years = counts.filter(pl.col("period_type") == "year").select(
        "indicator_id", "level", "unit_code", "period", *COUNTS)
    assert months.sort(pl.all()).equals(years.sort(pl.all()))


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), rows=st.integers(40, 400))
def test_counts_add_up_on_generated_data(tmp_path_factory, seed, rows):
    folder = tmp_path_factory.mktemp("gen")
    generate(folder / "in", rows=rows, seed=seed)
    path = folder / "w.duckdb"
    ingest_directory(folder / "in", path, TEST_KEY)
    # Counts are what add up; tiny random data may leave a case-mix category without
    # events (which rightly stops a run), so the models are left out here.
    definitions = [d.model_copy(update={"risk_adjustment": None})
                   for d in load_definitions(INDICATORS_DIR)]
    with warehouse.connect(path) as con:
        results = engine.compute(con, definitions)
    assert_additive(results)


def test_counts_add_up_on_the_sample(sample_run):
    results = pl.read_parquet(sample_run["output"] / "indicator_results.parquet")
    assert results["indicator_id"].n_unique() == 25
    assert_additive(results)
