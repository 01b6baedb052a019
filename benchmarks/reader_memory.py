"""Reader memory: peak RSS and time of reading one large CSV whole vs in batches.

    python -m benchmarks.reader_memory [--size-mb 1024] [--batch-mb N] [--repeats 3]
                                       [--stage read|validate|ingest]

Writes a synthetic stroke extract of about ``--size-mb`` (no real person in it), then
reads it in a fresh process per measurement: ``read_extract`` (the whole file) and
``iter_extract_batches`` (batches of ``--batch-mb``, default from the memory limit),
``--stage validate`` also validates each batch, and ``--stage ingest`` loads it into a
fresh warehouse as ingest does (pseudonyms, history and quarantine inserts, one
transaction per file). Peak RSS is the child's ``ru_maxrss``; the baseline is its RSS
after the imports, before reading. Prints the medians, and peak memory as a multiple
of the file size.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

CHILD = r"""
import json, resource, sys, tempfile, time
from pathlib import Path

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

import datetime as dt
import polars as pl
from pipelines import warehouse
from pipelines.extract_reader import iter_extract_batches, read_extract
from pipelines.ingest import warehouse_rows
from pipelines.validation import validate
from schemas import EXTRACT_SCHEMAS
from schemas.columns import ValidationContext

mode, path, batch_bytes, stage = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
duckdb_memory = sys.argv[5]
schema = EXTRACT_SCHEMAS["stroke"]
context = ValidationContext(dt.date(2025, 12, 31), frozenset(f"H{i}" for i in range(100, 1000)),
                            frozenset(range(1000)))
work = Path(tempfile.mkdtemp(prefix="kvalitet-reader-child-"))
with warehouse.connect(work / "w.duckdb") as con:
    if duckdb_memory:
        con.execute(f"SET memory_limit = '{duckdb_memory}GB'")
    baseline = rss()
    start = time.perf_counter()
    count = 0
    parts = [read_extract(path, schema, digest="-")] if mode == "whole" else iter_extract_batches(
        path, schema, digest="-", batch_bytes=batch_bytes)
    con.execute("BEGIN TRANSACTION")  # as ingest: one transaction per file, batch by batch
    for part in parts:
        count += part.rows_read
        if stage in ("validate", "ingest"):
            checked = validate(part, schema, context)
        if stage == "ingest":
            rows = warehouse_rows(checked.valid, "stroke", b"benchmark-key-0123456789", 1,
                                  part.extract_date)
            rejected = checked.quarantine.with_columns(
                pl.lit(1).alias("file_id"), pl.lit("stroke").alias("source"),
                pl.lit(path.name).alias("file_name"))
            con.execute("INSERT INTO stroke_history BY NAME SELECT * FROM rows")
            con.execute("INSERT INTO quarantine BY NAME SELECT * FROM rejected")
            del rows, rejected
        part = checked = None
    con.execute("COMMIT")
    seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "peak": peak, "baseline": baseline, "rows": count}))
"""


def synthetic_block(rows: int, seed: int) -> pl.DataFrame:
    """Stroke-shaped text rows: the reader's work depends on their shape, not their truth."""
    rng = np.random.default_rng(seed)
    day = rng.integers(1, 29, rows)
    month = rng.integers(1, 13, rows)
    minute = rng.integers(0, 60, rows)
    stamp = pl.format("2025-{}-{} {}:{}", pl.lit(month).cast(pl.String).str.zfill(2),
                      pl.lit(day).cast(pl.String).str.zfill(2),
                      pl.lit(rng.integers(0, 24, rows)).cast(pl.String).str.zfill(2),
                      pl.lit(minute).cast(pl.String).str.zfill(2))
    frame = pl.DataFrame({"n": np.arange(rows)}).with_columns(
        pl.format("S{}-{}", pl.lit(seed), pl.col("n")).alias("record_id"),
        # valid by the contract: a real DDMMYY and a 7th digit 0-3 (born 19YY)
        pl.format("{}{}{}{}", pl.lit(day).cast(pl.String).str.zfill(2),
                  pl.lit(month).cast(pl.String).str.zfill(2),
                  pl.lit(rng.integers(20, 100, rows)).cast(pl.String),
                  pl.lit(rng.integers(0, 4000, rows)).cast(pl.String).str.zfill(4)).alias("cpr"),
        pl.lit(np.where(rng.random(rows) < 0.5, "M", "F")).alias("sex"),
        pl.lit(rng.integers(101, 860, rows)).cast(pl.String).alias("municipality_code"),
        pl.format("H{}", pl.lit(rng.integers(100, 999, rows))).alias("hospital_code"),
        stamp.alias("admission_at"),
        pl.lit(np.array(["DI61", "DI63", "DI64"])[rng.integers(0, 3, rows)]).alias("diagnosis"),
        stamp.alias("stroke_unit_at"), stamp.alias("imaging_at"),
        pl.lit(np.array(["ja", "nej", ""])[rng.integers(0, 3, rows)]).alias("thrombolysis"),
        pl.lit(None, pl.String).alias("thrombolysis_at"),
        stamp.alias("dysphagia_screening_at"), stamp.alias("physio_assessment_at"),
        pl.lit(rng.integers(0, 59, rows)).cast(pl.String).alias("sss_score"),
        pl.lit(rng.integers(0, 6, rows)).cast(pl.String).alias("prestroke_mrs"),
        stamp.alias("discharge_at"), pl.lit(None, pl.String).alias("death_date"),
    ).drop("n")
    return frame


def write_csv(path: Path, size_mb: float, block_rows: int = 200_000) -> int:
    target, rows, seed = size_mb * 1e6, 0, 0
    with path.open("wb") as out:
        while out.tell() < target:
            block = synthetic_block(block_rows, seed)
            block.write_csv(out, separator=";", include_header=seed == 0)
            rows += block.height
            seed += 1
    return rows


def measure(mode: str, path: Path, batch_bytes: int, stage: str, repeats: int,
            duckdb_memory: str = "") -> dict:
    runs = []
    for _ in range(repeats):
        done = subprocess.run(
            [sys.executable, "-c", CHILD, mode, str(path), str(batch_bytes), stage, duckdb_memory],
            capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
        if done.returncode:
            raise RuntimeError(f"{mode} run failed:\n{done.stderr[-3000:]}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {"seconds": statistics.median(r["seconds"] for r in runs),
            "peak": statistics.median(r["peak"] for r in runs),
            "baseline": statistics.median(r["baseline"] for r in runs),
            "rows": runs[-1]["rows"], "all": [round(r["seconds"], 2) for r in runs]}


def main() -> None:
    from pipelines.extract_reader import default_batch_bytes

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=float, default=1024)
    parser.add_argument("--batch-mb", type=float, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stage", choices=["read", "validate", "ingest"], default="read")
    parser.add_argument("--duckdb-memory-gb", default="",
                        help="DuckDB's memory_limit for the ingest stage (it spills beyond it)")
    parser.add_argument("--only", choices=["whole", "batches"], default=None)
    args = parser.parse_args()
    batch_bytes = int(args.batch_mb * 2**20) if args.batch_mb else default_batch_bytes()

    work = Path(tempfile.mkdtemp(prefix="kvalitet-reader-"))
    try:
        path = work / "stroke_2025-12-31.csv"
        written = write_csv(path, args.size_mb)
        size = path.stat().st_size
        duckdb_limit = (f"; DuckDB memory_limit {args.duckdb_memory_gb} GB"
                        if args.duckdb_memory_gb else "")
        print(f"file: {size / 1e6:,.0f} MB, {written:,} rows; batches of {batch_bytes / 2**20:g} "
              f"MiB; stage {args.stage}{duckdb_limit}; medians of {args.repeats} fresh processes")
        for mode in ("whole", "batches"):
            if args.only and mode != args.only:
                continue
            result = measure(mode, path, batch_bytes, args.stage, args.repeats,
                             args.duckdb_memory_gb)
            assert result["rows"] == written, (result["rows"], written)
            print(f"{mode:8}  {result['seconds']:6.2f} s  {written / result['seconds']:>10,.0f} "
                  f"rows/s  peak RSS {result['peak'] / 1e6:7,.0f} MB = "
                  f"{result['peak'] / size:4.2f}x the file "
                  f"({(result['peak'] - result['baseline']) / size:4.2f}x above the "
                  f"{result['baseline'] / 1e6:,.0f} MB after imports)  runs {result['all']}")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
