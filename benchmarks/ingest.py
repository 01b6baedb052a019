"""Ingest throughput: read + validate + pseudonymise + load one large stroke extract.

    python -m benchmarks.ingest [--rows 1000000] [--repeats 3]

Imports happen before timing (once per process); the timed part is the work.
Prints the median rows/second and peak memory of each repetition (a fresh
process each), and the same for a baseline in the same run: DuckDB's own
``read_csv`` loading the file into a table with no validation at all. Goal on
the 2-core reference machine: >= 300k rows/s end to end.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import duckdb

from benchmarks.common import measure
from pipelines import warehouse as wh
from pipelines.ingest import ingest_file
from pipelines.reference import load_reference


def kvalitet_ingest(input_dir: Path, csv: Path, warehouse: Path) -> int:
    if warehouse.exists():
        warehouse.unlink()
    reference = load_reference(input_dir)
    with wh.connect(warehouse) as con:
        outcome = ingest_file(con, "stroke", csv, reference, b"benchmark-key-0123456789")
    return outcome.rows_read


def duckdb_raw_load(csv: Path, warehouse: Path) -> int:
    if warehouse.exists():
        warehouse.unlink()
    with duckdb.connect(str(warehouse)) as con:
        con.execute(f"CREATE TABLE raw AS SELECT * FROM read_csv('{csv}', all_varchar=true, ignore_errors=true)")
        return con.execute("SELECT count(*) FROM raw").fetchall()[0][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from sample_data.generate import generate

    work = Path(tempfile.mkdtemp(prefix="kvalitet-bench-"))
    try:
        generate(work / "in", rows=args.rows, sources=("stroke",))
        csv = sorted((work / "in" / "stroke").glob("*.csv"))[-1]
        mb = csv.stat().st_size / 1e6
        ours = measure(kvalitet_ingest, (work / "in", csv, work / "k.duckdb"), args.repeats)
        base = measure(duckdb_raw_load, (csv, work / "raw.duckdb"), args.repeats)
        rows = ours["extra"]
        print(f"file: {csv.name}, {rows:,} rows, {mb:.0f} MB")
        print(f"kvalitet ingest  median {ours['median_s']:.2f} s  {rows / ours['median_s']:>10,.0f} rows/s"
              f"  peak {ours['peak_mb']:,.0f} MB  runs {ours['all_s']}")
        print(f"duckdb raw load  median {base['median_s']:.2f} s  {rows / base['median_s']:>10,.0f} rows/s"
              f"  peak {base['peak_mb']:,.0f} MB  runs {base['all_s']}")
        print(f"ratio (kvalitet time / raw load time): {ours['median_s'] / base['median_s']:.2f}x")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
