"""Write indicator results: OUTPUT/indicator_results.parquet and the warehouse table."""

from __future__ import annotations

from pathlib import Path

import polars as pl

RESULTS_FILE = "indicator_results.parquet"


def write_results(con, results: pl.DataFrame, output_dir: Path) -> Path:
    """Replace the table's rows in one transaction; the Parquet file holds the same rows."""
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / RESULTS_FILE
    results.write_parquet(path, statistics=False)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM indicator_results")
        con.execute("INSERT INTO indicator_results BY NAME SELECT * FROM results")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return path


def read_results(con) -> pl.DataFrame:
    return pl.from_arrow(con.sql("SELECT * FROM indicator_results").to_arrow_table())
