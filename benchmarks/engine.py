"""Engine speed: every indicator x level x month and year, against per-indicator SQL.

    python -m benchmarks.engine [--rows 1000000 10000000] [--repeats 3]

``--rows`` counts stroke + hip fracture + cardiac (hospital) records (50/30/20 %);
municipal referrals and LPR contacts come on top, as the generator makes them.
The warehouse is built once per size straight from generated frames (the
ingest has its own benchmark). Each timing runs in a fresh process; medians and
peak memory are printed with the ratio baseline / engine. Goals on the 2-core
reference machine: 10M rows in < 15 s, < 6 GB peak, >= 5x the baseline.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
from pathlib import Path

import polars as pl

from benchmarks import sql_baseline
from benchmarks.common import measure
from pipelines import engine, warehouse
from pipelines import cpr as cpr_rules
from pipelines.definitions import load_definitions
from pipelines.extract_reader import ROW_NUMBER
from pipelines.ingest import warehouse_rows
from pipelines.reference import load_reference, store_reference
from pipelines.settings import INDICATORS_DIR
from sample_data import generate as gen
from schemas import EXTRACT_SCHEMAS

EXTRACT_DATE = gen.EXTRACT_DATES[-1]


def as_validated(frame: pl.DataFrame, source: str) -> pl.DataFrame:
    """Generated rows in the shape validation hands to the loader."""
    schema = EXTRACT_SCHEMAS[source]
    return frame.select(
        pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias(ROW_NUMBER),
        *[(cpr_rules.normalised(pl.col(c.name)) if c.kind == "cpr"
           else pl.col(c.name).fill_null("uoplyst") if c.kind == "answer"
           else pl.col(c.name)).cast(c.dtype).alias(c.name) for c in schema.columns],
        *[cpr_rules.birth_date(pl.col(c.name)).alias(cpr_rules.BIRTH_DATE)
          for c in schema.columns if c.kind == "cpr"])


def build(path: Path, rows: int, seed: int = 7) -> dict[str, int]:
    world = gen.World.make(seed)
    frames = {"stroke": gen.typed(gen.stroke(world, rows // 2)),
              "hipfracture": gen.typed(gen.hipfracture(world, rows * 3 // 10))}
    hospital, municipal = gen.cardiac(world, rows // 5)
    frames["cardiac_rehab_hospital"] = gen.typed(hospital)
    frames["cardiac_rehab_municipal"] = gen.typed(municipal)
    frames["lpr"] = gen.typed(gen.lpr(world, {k: frames[k] for k in ("stroke", "hipfracture")}))
    with warehouse.connect(path) as con:
        store_reference(con, load_reference(gen_reference(path.parent)))
        con.execute("INSERT INTO extract_files VALUES (1, 'all', 'generated', ?, 'x', NULL, NULL,"
                    " 0, 0, 0, [], [], now()::TIMESTAMP)", [EXTRACT_DATE])
        for source, frame in frames.items():
            loaded = warehouse_rows(as_validated(frame, source), source,  # noqa: F841
                                    b"benchmark-key-0123456789", 1, EXTRACT_DATE)
            con.execute(f"INSERT INTO {source}_history BY NAME SELECT * FROM loaded")
        for source in warehouse.record_sources(con):
            warehouse.refresh_current(con, source)  # what ingest keeps, built once here
    return {k: v.height for k, v in frames.items()}


def gen_reference(folder: Path) -> Path:
    from tests.builders import new_input  # the reference tables as a contract folder

    return new_input(folder / "reference_input")


def run_engine(path: Path) -> int:
    with warehouse.connect(path, read_only=True) as con:
        return engine.compute(con, load_definitions(INDICATORS_DIR)).height


def run_baseline(path: Path) -> int:
    with warehouse.connect(path, read_only=True) as con:
        cutoff = con.sql("SELECT max(extract_date) FROM extract_files").fetchall()[0][0]
        return sql_baseline.compute(con, load_definitions(INDICATORS_DIR), cutoff).height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "kvalitet-bench")
    args = parser.parse_args()
    for rows in args.rows:
        folder = args.work / f"rows-{rows}"
        path = folder / "kvalitet.duckdb"
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            start = dt.datetime.now()
            sizes = build(path, rows)
            print(f"built {path} in {(dt.datetime.now() - start).seconds} s: {sizes}")
        ours = measure(run_engine, (path,), args.repeats)
        base = measure(run_baseline, (path,), args.repeats)
        print(f"{rows:>11,} rows  engine   median {ours['median_s']:6.2f} s  peak "
              f"{ours['peak_mb']:7,.0f} MB  runs {ours['all_s']}  ({ours['extra']:,} result rows)")
        print(f"{rows:>11,} rows  baseline median {base['median_s']:6.2f} s  peak "
              f"{base['peak_mb']:7,.0f} MB  runs {base['all_s']}  ({base['extra']:,} result rows)")
        print(f"{rows:>11,} rows  baseline / engine = {base['median_s'] / ours['median_s']:.1f}x")


if __name__ == "__main__":
    main()
