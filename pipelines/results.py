"""Write indicator results: OUTPUT/indicator_results.parquet and the warehouse table."""

from __future__ import annotations

from pathlib import Path

import polars as pl

RESULTS_FILE = "indicator_results.parquet"


def model_tables(fits) -> tuple[pl.DataFrame, pl.DataFrame]:
    models = pl.DataFrame([{
        "indicator_id": f.indicator_id, "year": f.year, "n": f.n, "events": f.events,
        "converged": f.converged, "c_statistic": f.c_statistic,
        "hosmer_lemeshow_chi2": f.hosmer_lemeshow_chi2, "hosmer_lemeshow_df": f.hosmer_lemeshow_df,
        "hosmer_lemeshow_p": f.hosmer_lemeshow_p,
        "dropped_categories": ", ".join(f.dropped_categories)} for f in fits],
        schema={"indicator_id": pl.String, "year": pl.String, "n": pl.Int64, "events": pl.Int64,
                "converged": pl.Boolean, "c_statistic": pl.Float64,
                "hosmer_lemeshow_chi2": pl.Float64, "hosmer_lemeshow_df": pl.Int64,
                "hosmer_lemeshow_p": pl.Float64, "dropped_categories": pl.String})
    coefficients = pl.concat(
        [f.coefficients.with_columns(pl.lit(f.indicator_id).alias("indicator_id"),
                                     pl.lit(f.year).alias("year"),
                                     pl.int_range(pl.len(), dtype=pl.Int32).alias("position"))
         for f in fits]
    ) if fits else pl.DataFrame(schema={"indicator_id": pl.String, "year": pl.String,
                                        "position": pl.Int32, "term": pl.String,
                                        "estimate": pl.Float64,
                                        "std_error": pl.Float64, "ci_low": pl.Float64,
                                        "ci_high": pl.Float64, "odds_ratio": pl.Float64})
    return models, coefficients


def write_results(con, results: pl.DataFrame, output_dir: Path, fits=(), cutoff=None) -> Path:
    """Replace the tables' rows in one transaction; the Parquet file holds the same rows
    (written to a temporary name and renamed once the transaction committed, so a reader never
    sees half a file, nor rows the warehouse refused)."""
    from pipelines.warehouse import set_meta, transaction

    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / RESULTS_FILE
    partial = path.with_name(f".{RESULTS_FILE}.partial")
    results.write_parquet(partial, statistics=False)
    models, coefficients = model_tables(list(fits))  # noqa: F841 - read by DuckDB
    try:
        with transaction(con):
            if cutoff is not None:
                set_meta(con, "results_cutoff", cutoff.isoformat())
            con.execute("DELETE FROM indicator_results")
            con.execute("INSERT INTO indicator_results BY NAME SELECT * FROM results")
            con.execute("DELETE FROM risk_models")
            con.execute("INSERT INTO risk_models BY NAME SELECT * FROM models")
            con.execute("DELETE FROM risk_model_coefficients")
            con.execute("INSERT INTO risk_model_coefficients BY NAME SELECT * FROM coefficients")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(path)
    return path


def read_results(con) -> pl.DataFrame:
    return pl.from_arrow(con.sql("SELECT * FROM indicator_results").to_arrow_table())


def results_cutoff(con):
    """The cutoff the warehouse's current results were computed with (what a delivery must
    use to list the same records its unit's counts rest on)."""
    import datetime as dt

    from pipelines.engine import data_cutoff
    from pipelines.warehouse import meta

    stored = meta(con, "results_cutoff")
    return dt.date.fromisoformat(stored) if stored else data_cutoff(con)
