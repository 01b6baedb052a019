"""The plain DuckDB-SQL script (benchmarks/plain_sql.py, the baseline of benchmarks/e2e.py)
counts what ``kvalitet run`` publishes, on the bundled sample.

Expected difference, and how it is taken out: the pipeline validates every row against the
contract and quarantines the rows that break it (unknown codes, events after the extract
date or before admission, out-of-range scores, duplicate record ids in a file, ...); the
plain script only drops rows whose values do not parse, as a plain script does. So the
script runs on a copy of the sample without the rows the pipeline quarantined (by file and
row number from the warehouse's ``quarantine`` table); a correction that breaks a rule then
leaves the earlier version current on both sides. On that copy every result row must agree:
numerator, denominator, missing, median, unit name, proportion, interval, standard, and the
risk-adjusted expected count, O/E and adjusted proportion (the pipeline fits its GLM on
covariate patterns, the script on records: the same estimates, to rounding). The compared
file is ``indicator_results.parquet``, which is unsuppressed (the small-number rule applies
to published artefacts only); the pipeline's smoothed proportion has no counterpart.
"""

from __future__ import annotations

import shutil

import duckdb
import pyarrow.parquet as pq
import pytest

from benchmarks import plain_sql
from pipelines.settings import INDICATORS_DIR, WAREHOUSE_FILE_NAME
from tests.builders import TEST_KEY

KEYS = ("indicator_id", "period_type", "period", "level", "unit_code")
EXACT = ("unit_name", "numerator", "denominator", "missing", "standard", "standard_met")
CLOSE = ("proportion", "ci_low", "ci_high", "median", "expected", "oe_ratio", "oe_low",
         "oe_high", "adjusted_proportion", "adjusted_low", "adjusted_high")


def quarantined_rows(warehouse) -> dict[tuple[str, str], set[int]]:
    """(registry, file name) -> the data rows (from 1) the pipeline quarantined."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        found = con.sql("SELECT DISTINCT source, file_name, row_number FROM quarantine").fetchall()
    rows: dict[tuple[str, str], set[int]] = {}
    for source, name, number in found:
        rows.setdefault((source, name), set()).add(number)
    return rows


def without_rows(input_dir, folder, rows: dict[tuple[str, str], set[int]]):
    """A copy of the input without the given data rows, each file in its own bytes (encoding,
    byte-order mark, line ends kept); no line of the sample spans two lines."""
    shutil.copytree(input_dir, folder)
    for (source, name), numbers in rows.items():
        path = folder / source / name
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            pq.write_table(table.take([i for i in range(table.num_rows) if i + 1 not in numbers]),
                           path)
        else:
            lines = path.read_bytes().splitlines(keepends=True)  # line 0 is the header
            path.write_bytes(b"".join(line for i, line in enumerate(lines) if i not in numbers))
    return folder


def by_key(path) -> dict[tuple, dict]:
    rows = pq.read_table(path).to_pylist()
    keyed = {tuple(r[k] for k in KEYS): r for r in rows}
    assert len(keyed) == len(rows), "duplicate result keys"
    return keyed


def differences(pipeline: dict, plain: dict) -> list[str]:
    """One line per differing row (keys and counts only, never a record)."""
    out = []
    for key in sorted(pipeline.keys() | plain.keys()):
        a, b = pipeline.get(key), plain.get(key)
        if a is None or b is None:
            out.append(f"{' '.join(key)}: only in the {'plain script' if a is None else 'pipeline'}")
            continue
        wrong = [c for c in EXACT if a[c] != b[c]]
        wrong += [c for c in CLOSE if (a[c] is None) != (b[c] is None)
                  or a[c] is not None and a[c] != pytest.approx(b[c], rel=1e-6, abs=1e-9)]
        if wrong:
            out.append(f"{' '.join(key)}: {', '.join(wrong)} "
                       f"(pipeline {a['numerator']}/{a['denominator']}, "
                       f"plain {b['numerator']}/{b['denominator']})")
    return out


@pytest.fixture(scope="module")
def quarantine(sample_run):
    return quarantined_rows(sample_run["output"] / WAREHOUSE_FILE_NAME)


def test_the_plain_script_agrees_with_the_pipeline_on_every_row(sample_run, quarantine,
                                                                tmp_path):
    assert sum(map(len, quarantine.values())) > 50  # the sample's broken rows are taken out
    clean = without_rows(sample_run["input"], tmp_path / "input", quarantine)
    written = plain_sql.run(clean, tmp_path / "plain.parquet", TEST_KEY)
    pipeline = by_key(sample_run["output"] / "indicator_results.parquet")
    plain = by_key(written)
    problems = differences(pipeline, plain)
    assert not problems, f"{len(problems)} rows differ:\n" + "\n".join(problems[:40])
    assert len(plain) > 30_000
    assert {k[0] for k in plain} == {p.stem for p in plain_sql.definition_files(INDICATORS_DIR)}
    risk = [r for r in plain.values() if r["expected"] is not None]
    assert {r["indicator_id"] for r in risk} == {"STROKE_06", "HIP_05"}
    assert any(r["adjusted_proportion"] is not None and r["level"] == "hospital" for r in risk)


def test_the_quarantined_rows_are_the_whole_difference(sample_run, tmp_path):
    """On the sample as delivered the script counts rows the pipeline quarantines: the rows
    differ (so the first test's agreement is not vacuous)."""
    written = plain_sql.run(sample_run["input"], tmp_path / "plain.parquet", TEST_KEY)
    problems = differences(by_key(sample_run["output"] / "indicator_results.parquet"),
                           by_key(written))
    assert problems
    assert any("only in the plain script" in p for p in problems)  # e.g. unknown hospital H999


def test_pseudonyms_and_ages_are_the_pipelines(sample_run, quarantine, tmp_path):
    """The script's HMAC-SHA256 in SQL and its age from the CPR's birth date and century
    digit give the warehouse's values for every current record."""
    clean = without_rows(sample_run["input"], tmp_path / "input", quarantine)
    files = plain_sql.registry_files(clean)
    with duckdb.connect() as con, duckdb.connect(
            str(sample_run["output"] / WAREHOUSE_FILE_NAME), read_only=True) as warehouse:
        plain_sql.load_reference(con, clean / "reference")
        for name in ("stroke", "hipfracture", "general_practice_diabetes"):
            plain_sql.load_registry(con, plain_sql.REGISTRIES[name], files[name], TEST_KEY)
            query = f"SELECT record_id, pseudonym, age FROM {name} ORDER BY record_id"
            ours = con.sql(query).fetchall()
            theirs = warehouse.sql(query).fetchall()
            assert len(ours) == len(theirs) > 1_000
            differ = sum(a != b for a, b in zip(ours, theirs))  # a count: no value printed
            assert differ == 0, f"{name}: {differ} records differ in id, pseudonym or age"
