"""End to end: ``kvalitet run`` on generated inputs, per phase, against DuckDB's raw load.

    python -m benchmarks.e2e [--rows 500000 1000000 10000000] [--huge] [--repeats 3]
                             [--prefect] [--plain-all] [--work DIR]

``--rows`` counts every data row of every extract (all five registries, two
extracts each, as the generator writes them); ``--huge`` adds 50M rows. For each
size it prints one table, medians over ``--repeats`` fresh processes:

- ``run (direct)``: ``python -m pipelines.cli run`` as a user runs it without a
  Prefect server (``KVALITET_ORCHESTRATION`` unset or ``direct``), wall time of the
  whole process (imports included) and its peak memory; ``run (prefect, ...)`` the
  same as a Prefect flow (``--prefect``): against the server ``PREFECT_API_URL``
  names, else Prefect's temporary server;
- the phases, each in its own process so its peak memory is its own:
  ``ingest`` (every registry read, validated, pseudonymised and loaded into a new
  warehouse), ``compute`` (every indicator, results written) and ``publish``
  (validation report and run manifest);
- ``duckdb raw load``: DuckDB's ``read_csv``/``read_parquet`` of the same files
  into tables, no validation at all, the yardstick every ratio is taken to;
- ``plain DuckDB-SQL script``: benchmarks/plain_sql.py (the catalogue as a registry
  analyst's plain DuckDB-SQL + statsmodels script: typed reads, pseudonyms, latest
  extract wins, every indicator, level and period, the risk models) in a fresh process
  like the runs, for sizes up to 1M rows unless ``--plain-all``; after the table, one line
  per run saying how many times faster than it the run is (issue #16, goal 5).

Figures are printed, never asserted. On a shared machine wall seconds swing with the
load; the ratios within one table and the CPU seconds (all threads of the process)
are the steadier figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import measure
# Imported before any timer starts (the phases time the work; the whole runs time imports too).
from pipelines import manifest, steps  # noqa: E402
from pipelines.pipeline import DirectRunner  # noqa: E402

KEY = "benchmark-key-0123456789"
ROWS_PER_STROKE_ROW = 9.46  # all extracts' rows per generated stroke admission (measured, GP included)


def generate_input(folder: Path, rows: int) -> int:
    """The generator's five registries, two extracts each, about ``rows`` rows in all."""
    from sample_data.generate import generate

    done = folder / "rows.txt"
    if done.exists():
        return int(done.read_text())
    written = generate(folder / "in", rows=max(1_000, round(rows / ROWS_PER_STROKE_ROW)))
    total = sum(written.values())
    done.write_text(str(total))
    return total


def _environment(orchestration: str | None = "direct") -> dict:
    env = {**os.environ, "KVALITET_PSEUDONYM_KEY": KEY, "KVALITET_WAREHOUSE": "",
           "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("KVALITET_ORCHESTRATION", None)
    if orchestration:
        env["KVALITET_ORCHESTRATION"] = orchestration
    return env


def whole_run(input_dir: Path, output: Path, orchestration: str | None
              ) -> tuple[float, float, float]:
    """``kvalitet run`` in a fresh process: wall seconds, peak MB and CPU seconds (all its
    threads; a Prefect server it starts is not counted). The peak includes this benchmark's
    own size when it started the run (~0.1 GB: Linux carries it through fork and exec)."""
    return _process(["pipelines.cli", "run", "--input", str(input_dir), "--output", str(output)],
                    output, _environment(orchestration), "kvalitet run", (0, 3))


def plain_run(input_dir: Path, output: Path) -> tuple[float, float, float]:
    """benchmarks/plain_sql.py in a fresh process, measured as ``whole_run`` measures."""
    return _process(["benchmarks.plain_sql", "--input", str(input_dir), "--output", str(output)],
                    output, _environment(None), "the plain DuckDB-SQL script", (0,))


def _process(arguments: list[str], output: Path, env: dict, what: str, ok: tuple[int, ...]
             ) -> tuple[float, float, float]:
    import shutil

    shutil.rmtree(output, ignore_errors=True)
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", *arguments], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               cwd=Path(__file__).resolve().parent.parent)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    stderr = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    if os.waitstatus_to_exitcode(status) not in ok:
        raise RuntimeError(f"{what} failed: {stderr[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def phase_ingest(input_dir: Path, output: Path) -> int:
    import shutil

    os.environ["KVALITET_PSEUDONYM_KEY"] = KEY
    shutil.rmtree(output, ignore_errors=True)
    output.mkdir(parents=True)
    warehouse = output / "kvalitet.duckdb"
    runner = DirectRunner()  # as a run loads: one connection, one reader for all registries
    with runner.holding(warehouse), runner.reading(input_dir):
        ingests = [steps.ingest_registry(input_dir, warehouse, source)
                   for source in steps.registries_present(input_dir)]
    (output / "ingests.json").write_text(json.dumps(ingests))
    return sum(f["rows_read"] for i in ingests for f in i["files"])


def phase_compute(output: Path) -> int:
    return steps.compute_indicators(output / "kvalitet.duckdb", output, None, "wilson")["rows"]


def phase_publish(input_dir: Path, output: Path) -> int:
    ingests = json.loads((output / "ingests.json").read_text())
    steps.write_validation_report(output / "kvalitet.duckdb", output, ingests)
    manifest.write(output, input_dir, {}, None, {}, [f for i in ingests for f in i["files"]], {})
    return 0


def duckdb_raw_load(input_dir: Path, warehouse: Path) -> int:
    """Every extract into a table of text columns, as DuckDB reads it: no rules, no pseudonyms."""
    import duckdb

    if warehouse.exists():
        warehouse.unlink()
    rows = 0
    with duckdb.connect(str(warehouse)) as con:
        con.execute("SET enable_progress_bar = false")
        for i, path in enumerate(sorted(p for p in input_dir.glob("*/*")
                                        if p.parent.name != "reference")):
            if path.suffix == ".parquet":
                source = f"read_parquet('{path}')"
            else:
                head = path.open("rb").readline()
                delimiter = ";" if head.count(b";") > head.count(b",") else ","
                source = (f"read_csv('{path}', all_varchar=true, delim='{delimiter}', "
                          "null_padding=true, ignore_errors=true, encoding=")
            try:
                con.execute(f"CREATE TABLE t{i} AS SELECT * FROM {source}'utf-8')"
                            if path.suffix != ".parquet" else
                            f"CREATE TABLE t{i} AS SELECT * FROM {source}")
            except duckdb.Error:  # a cp1252 extract
                con.execute(f"CREATE TABLE t{i} AS SELECT * FROM {source}'latin-1')")
            rows += con.execute(f"SELECT count(*) FROM t{i}").fetchall()[0][0]
    return rows


def _repeat(fn, args: tuple, repeats: int) -> dict:
    runs = [fn(*args) for _ in range(repeats)]
    return {"median_s": statistics.median(r[0] for r in runs), "peak_mb": max(r[1] for r in runs),
            "all_s": [round(r[0], 2) for r in runs], "cpu_s": statistics.median(r[2] for r in runs)}


def table(rows: int, mb: float, results: dict[str, dict]) -> str:
    base = results["duckdb raw load"]["median_s"]
    lines = [f"### {rows:,} rows ({mb:,.0f} MB of extracts)", "",
             "| what | median s | × DuckDB raw load | CPU s | peak MB | runs (s) |",
             "|---|---:|---:|---:|---:|---|"]
    for what, r in results.items():
        lines.append(f"| {what} | {r['median_s']:.2f} | {r['median_s'] / base:.2f} | "
                     f"{r['cpu_s']:.1f} | {r['peak_mb']:,.0f} | "
                     f"{', '.join(f'{s:.2f}' for s in r['all_s'])} |")
    return "\n".join(lines)


PLAIN = "plain DuckDB-SQL script"


def against_plain(results: dict[str, dict]) -> list[str]:
    """How many times faster than the plain script each whole run is (medians)."""
    if PLAIN not in results:
        return []
    plain = results[PLAIN]["median_s"]
    return [f"kvalitet {what} is {plain / r['median_s']:.2f}x faster than the {PLAIN}"
            for what, r in results.items() if what.startswith("run (")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[500_000, 1_000_000, 10_000_000])
    parser.add_argument("--huge", action="store_true", help="add 50M rows")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--prefect", action="store_true", help="also time Prefect's local mode")
    parser.add_argument("--plain-all", action="store_true",
                        help="time the plain DuckDB-SQL script above 1M rows too")
    parser.add_argument("--phases", action=argparse.BooleanOptionalAction, default=True,
                        help="time ingest, compute and publish each in its own process")
    parser.add_argument("--work", type=Path,
                        default=Path(tempfile.gettempdir()) / "kvalitet-e2e")
    args = parser.parse_args()
    sizes = args.rows + ([50_000_000] if args.huge else [])
    for rows in sizes:
        folder = args.work / f"rows-{rows}"
        folder.mkdir(parents=True, exist_ok=True)
        # In its own process: a child's peak memory counts its parent's size when it was
        # started (Linux carries the high-water mark through fork), so this one stays small.
        total = measure(generate_input, (folder, rows), 1)["extra"]
        input_dir = folder / "in"
        mb = sum(p.stat().st_size for p in input_dir.rglob("*") if p.is_file()) / 1e6
        results: dict[str, dict] = {}
        results["duckdb raw load"] = measure(duckdb_raw_load, (input_dir, folder / "raw.duckdb"),
                                             args.repeats)
        results["run (direct)"] = _repeat(whole_run, (input_dir, folder / "run", "direct"),
                                          args.repeats)
        if args.prefect:
            where = ("server at PREFECT_API_URL" if os.environ.get("PREFECT_API_URL")
                     else "temporary server")
            results[f"run (prefect, {where})"] = _repeat(
                whole_run, (input_dir, folder / "run", "prefect"), args.repeats)
        if rows <= 1_000_000 or args.plain_all:
            results[PLAIN] = _repeat(plain_run, (input_dir, folder / "plain"), args.repeats)
        if args.phases:
            out = folder / "phases"
            results["ingest"] = measure(phase_ingest, (input_dir, out), args.repeats)
            results["compute"] = measure(phase_compute, (out,), args.repeats)
            results["publish"] = measure(phase_publish, (input_dir, out), args.repeats)
        print(table(total, mb, results), flush=True)
        for line in against_plain(results):
            print(f"\n{line}", flush=True)
        print(flush=True)


if __name__ == "__main__":
    main()
