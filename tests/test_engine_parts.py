"""The engine counts a large registry in parts; the parts must add up to exactly one pass."""

from __future__ import annotations

import shutil
import statistics

import polars as pl
import pytest
from hypothesis import example, given, settings, strategies as st

from pipelines import engine, warehouse
from pipelines.definitions import Link, load_definitions
from pipelines.settings import INDICATORS_DIR


def _results(path, monkeypatch, rows_per_part: int) -> tuple[pl.DataFrame, list[int]]:
    counted = []
    real = engine.part_count

    def spy(con, registries):
        counted.append(real(con, registries))
        return counted[-1]

    monkeypatch.setattr(engine, "rows_per_part", lambda: rows_per_part)
    monkeypatch.setattr(engine, "part_count", spy)
    with warehouse.connect(path) as con:
        computation = engine.compute_all(con, load_definitions(INDICATORS_DIR))
    return computation.results, counted


def test_results_in_parts_equal_results_in_one_pass(sample_run, tmp_path, monkeypatch):
    """Every indicator (links, completeness, medians, risk models included) on the sample,
    counted whole and split into many parts: the very same rows, to the last bit."""
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(sample_run["output"] / "kvalitet.duckdb", path)
    whole, parts = _results(path, monkeypatch, 10**12)
    assert set(parts) == {1}
    for rows in (2_000, 333):
        split, parts = _results(path, monkeypatch, rows)
        assert max(parts) > 5, parts  # the sample really was split
        assert split.equals(whole), f"{rows} rows per part"
    assert whole.height > 10_000 and whole["median"].is_not_null().sum() > 100
    assert whole["expected"].is_not_null().sum() > 100


def test_a_memory_limit_sets_the_parts(monkeypatch):
    monkeypatch.setenv("KVALITET_MEMORY_LIMIT_GB", "1")
    assert engine.rows_per_part() == 2**30 // 4 // engine.ROW_BYTES


def test_linked_records_share_their_part():
    link = Link.model_construct(registry="cardiac_rehab_municipal", key="hospital_record_id")
    assert engine.split_keys("cardiac_rehab_hospital", {"a": link}) == {
        "cardiac_rehab_hospital": "record_id", "cardiac_rehab_municipal": "hospital_record_id"}
    assert engine.split_keys("lpr", {}) == {"lpr": "pseudonym"}
    # Two keys into one registry cannot both decide its parts: it is loaded whole.
    other = Link.model_construct(registry="cardiac_rehab_municipal", key="record_id")
    assert engine.split_keys("cardiac_rehab_hospital", {"a": link, "b": other}) is None


values = st.one_of(st.integers(-10_000, 10_000).map(float),
                   st.floats(-1e9, 1e9, allow_nan=False, allow_subnormal=False))


@settings(max_examples=300, deadline=None)
# Halfway between these two, (lo + hi) / 2 and Polars' lo + (hi - lo) / 2 differ in the last bit.
@example([(0, -86.894, 1), (0, 25.144, 1)])
@given(st.lists(st.tuples(st.integers(0, 3), values, st.integers(1, 4)), min_size=1, max_size=40))
def test_median_from_records_per_value(rows):
    """The median of values weighted by their record counts is the median of the records:
    bit for bit Polars' own median, and Python's within rounding."""
    frame = pl.DataFrame(rows, schema={"group": pl.Int64, "value": pl.Float64,
                                       "records": pl.UInt32}, orient="row")
    got = dict(frame.group_by("group").agg(engine.weighted_median("value", "records"))
               .iter_rows())
    for group in got:
        records = [v for g, v, n in rows if g == group for _ in range(n)]
        assert got[group] == pl.Series(records).median()
        assert got[group] == pytest.approx(statistics.median(records), rel=1e-12, abs=1e-9)


def test_median_of_no_records_is_typed():
    empty = pl.DataFrame(schema={"group": pl.Int64, "value": pl.Float64, "records": pl.UInt32})
    out = empty.lazy().group_by("group").agg(engine.weighted_median("value", "records")).collect()
    assert out.is_empty() and out.schema["value"] == pl.Float64
