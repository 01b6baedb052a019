"""Backtest: the sample run's indicator_results equal the committed, reviewed golden table.

After an intended change of method or definitions, regenerate with
``KVALITET_UPDATE_GOLDEN=1 pytest tests/test_backtest.py`` and review the diff.
"""

import os
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

GOLDEN = Path(__file__).parent / "golden" / "sample_indicator_results.parquet"


def test_sample_results_equal_the_golden_table(sample_run):
    results = pl.read_parquet(sample_run["output"] / "indicator_results.parquet")
    if os.environ.get("KVALITET_UPDATE_GOLDEN"):
        results.write_parquet(GOLDEN, compression="zstd", statistics=False)
    golden = pl.read_parquet(GOLDEN)
    assert_frame_equal(results, golden, check_exact=False, rel_tol=1e-9, abs_tol=1e-12)
