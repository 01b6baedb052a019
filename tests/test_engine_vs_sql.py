"""Two implementations agree: the Polars engine and per-indicator DuckDB SQL, on the sample."""


import duckdb
import polars as pl
from polars.testing import assert_frame_equal

from benchmarks import sql_baseline
from pipelines.definitions import load_definitions
from pipelines.settings import INDICATORS_DIR, WAREHOUSE_FILE_NAME

KEYS = ["indicator_id", "period_type", "period", "level", "unit_code"]


def test_engine_equals_sql_on_every_row(sample_run):
    definitions = load_definitions(INDICATORS_DIR)
    engine = pl.read_parquet(sample_run["output"] / "indicator_results.parquet")
    with duckdb.connect(str(sample_run["output"] / WAREHOUSE_FILE_NAME), read_only=True) as con:
        cutoff = con.sql("SELECT max(extract_date) FROM extract_files").fetchall()[0][0]
        sql = sql_baseline.compute(con, definitions, cutoff)
    columns = [*KEYS, "denominator", "missing"]
    ours = engine.with_columns(pl.when(pl.col("median").is_null()).then(pl.col("numerator"))
                               .alias("numerator"))
    theirs = sql.with_columns(
        pl.when(pl.col("median").is_null()).then(pl.col("numerator")).alias("numerator"),
        pl.when(pl.col("median").is_not_null()).then(0).otherwise(pl.col("missing")).alias("missing"))
    for frame in (ours, theirs):
        assert frame.height > 30_000
    left = ours.select(*columns, "numerator", "median").sort(KEYS)
    right = theirs.select(*columns, pl.col("numerator").cast(pl.Int64),
                          pl.col("median").cast(pl.Float64)).sort(KEYS)
    assert_frame_equal(left, right.with_columns(pl.col(c).cast(left.schema[c]) for c in columns),
                       check_exact=False, rel_tol=1e-12)
