"""The pipeline against an independent oracle (tests/oracle), on the sample input and on an
input of boundary cases: every indicator, period and unit, row for row.

The oracle shares no code with the engine, so an error in ingest, age, windows or counting
(the kind the golden backtest cannot see, because the engine produced it) shows up here.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings

from tests.oracle import boundary, compute, load
from tests.oracle.indicators import judge
from tests.oracle.random_input import random_inputs

KEY = ("indicator_id", "period_type", "period", "level", "unit_code")
VALUES = ("unit_name", "numerator", "denominator", "missing", "median")
PSEUDONYM_KEY = "an-oracle-test-key-long-enough"
CPR_LIKE = re.compile(r"\d{6}[- ]?\d{4}")


def run_cli(input_dir: Path, output: Path, *extra: str):
    """The pipeline as a user runs it (Prefect off, a fresh warehouse in the output)."""
    from typer.testing import CliRunner

    from pipelines.cli import app

    env = {"KVALITET_PSEUDONYM_KEY": PSEUDONYM_KEY, "KVALITET_WAREHOUSE": ""}
    return CliRunner().invoke(app, ["run", "--input", str(input_dir), "--output", str(output),
                                    *extra], env=env)


def pipeline_rows(output: Path) -> list[dict]:
    return pq.read_table(output / "indicator_results.parquet",
                         columns=list(KEY + VALUES)).to_pylist()


def differences(oracle: list[dict], pipeline: list[dict]) -> list[tuple]:
    """(key, oracle values, pipeline values) for every row that is missing on one side or
    differs; medians compared to 1e-9 minutes."""
    mine = {tuple(r[k] for k in KEY): r for r in oracle}
    theirs = {tuple(r[k] for k in KEY): r for r in pipeline}
    assert len(mine) == len(oracle) and len(theirs) == len(pipeline), "duplicate result keys"
    out = []
    for key in sorted(mine.keys() | theirs.keys()):
        a, b = mine.get(key), theirs.get(key)
        if a is None or b is None or any(not _same(a[v], b[v]) for v in VALUES):
            out.append((key, a, b))
    return out


def _same(x, y) -> bool:
    if isinstance(x, float) and isinstance(y, float):
        return abs(x - y) <= 1e-9
    return x == y


def diff_table(diffs: list[tuple], limit: int = 40) -> str:
    """Ids and counts only (never a record)."""
    def counts(row):
        if row is None:
            return "(no row)"
        median = "" if row["median"] is None else f" med={row['median']:.4f}"
        return f"{row['numerator']}/{row['denominator']} miss={row['missing']}{median}"

    lines = [f"{len(diffs)} rows differ (oracle | pipeline):"]
    for key, a, b in diffs[:limit]:
        name = "" if a is None or b is None or a["unit_name"] == b["unit_name"] else \
            f"  name {a['unit_name']!r} != {b['unit_name']!r}"
        lines.append(f"  {' '.join(key):<55} {counts(a):<28} | {counts(b)}{name}")
    if len(diffs) > limit:
        lines.append(f"  ... and {len(diffs) - limit} more")
    return "\n".join(lines)


def file_counts(oracle_files, output: Path) -> list[str]:
    """Rows read, loaded and quarantined per file, oracle against the validation report."""
    report = json.loads((output / "validation" / "validation_report.json").read_text())
    theirs = {f["file_name"]: (f["rows_read"], f["rows_loaded"], f["rows_quarantined"])
              for f in report["files"]}
    problems = []
    for f in oracle_files:
        if f.failed:
            continue
        mine = (f.rows_read, f.rows_loaded, f.rows_quarantined)
        if theirs.get(f.file_name) != mine:
            problems.append(f"{f.file_name}: oracle {mine}, pipeline {theirs.get(f.file_name)}")
    return problems


# -- independence -------------------------------------------------------------------------------

FORBIDDEN = ("pipelines", "schemas", "reports", "sample_data", "tests.builders")


def test_the_oracle_shares_no_code_with_the_engine():
    """No oracle module imports the engine's packages, directly or through another module."""
    import ast
    import subprocess
    import sys

    folder = Path(__file__).parent / "oracle"
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            bad = [n for n in names if n.startswith(FORBIDDEN)]
            assert not bad, f"{path.name} imports {bad}"
    probe = ("import sys, tests.oracle, tests.oracle.boundary, tests.oracle.random_input; "
             f"print([m for m in sys.modules if m.startswith({FORBIDDEN!r})])")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            cwd=Path(__file__).parent.parent, check=True).stdout.strip()
    assert loaded == "[]"


# -- the sample input ---------------------------------------------------------------------------

def test_oracle_equals_pipeline_on_the_sample(sample_run):
    oracle = compute(sample_run["input"])
    pipeline = pipeline_rows(sample_run["output"])
    diffs = differences(oracle, pipeline)
    assert not diffs, diff_table(diffs)
    assert len(oracle) == len(pipeline) > 10_000
    indicators = {r["indicator_id"] for r in oracle}
    assert indicators == {*(f"STROKE_0{i}" for i in range(1, 8)),
                          *(f"HIP_0{i}" for i in range(1, 7)),
                          *(f"DHRD_0{i}" for i in range(1, 6)), "COMPL_STROKE", "COMPL_HIP",
                          *(f"GP_DIAB_0{i}" for i in range(1, 6))}
    clinics = {r["unit_code"] for r in oracle if r["level"] == "clinic"}
    assert any(code.startswith("0") for code in clinics)  # leading zeros kept


def test_oracle_counts_the_sample_files_as_the_validation_report(sample_run):
    loaded = load(sample_run["input"])
    assert not any(f.failed for f in loaded.files)
    assert file_counts(loaded.files, sample_run["output"]) == []


# -- boundary cases -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def boundary_input(tmp_path_factory):
    root = tmp_path_factory.mktemp("oracle-boundary")
    built = boundary.build(root / "input")
    return {"root": root, "input": root / "input", "built": built,
            "loaded": load(root / "input")}


def _masked(rid: str) -> str:
    return "<cpr-shaped id>" if CPR_LIKE.search(rid) else rid


def test_the_boundary_input_is_what_it_claims(boundary_input):
    """Files really are in the encodings, delimiters and types the cases rely on."""
    folder = boundary_input["input"]
    assert (folder / "stroke" / "stroke_2025-12-31.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    raw = (folder / "stroke" / "stroke_2026-06-30.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert b"\r\n" in raw and raw.decode("cp1252").startswith("record_id,cpr,")
    lpr = pq.read_schema(folder / "lpr" / "lpr_2026-06-30.parquet")
    assert str(lpr.field("admission_at").type) == "timestamp[us, tz=UTC]"
    hip = pq.read_schema(folder / "hipfracture" / "hipfracture_2026-06-30.parquet")
    assert str(hip.field("death_date").type) == "date32[day]"
    header = (folder / "cardiac_rehab_municipal" /
              "cardiac_rehab_municipal_2026-09-30.csv").read_text().splitlines()[0]
    assert "smoker" not in header.split(",") and "smoking_cessation_offered" in header


def test_the_oracle_gives_the_hand_written_outcome_of_every_boundary_case(boundary_input):
    """The oracle itself checked against outcomes worked out from the catalogue by hand."""
    built, loaded = boundary_input["built"], boundary_input["loaded"]
    assert loaded.latest_extract == boundary.CUTOFF
    assert [f.file_name for f in loaded.files if f.failed] == ["stroke_2026-05-31.csv"]
    wrong = []
    for (indicator, rid), want in built.expect.items():
        registry = ("cardiac_rehab_hospital" if rid.startswith("C_") else
                    "cardiac_rehab_municipal" if rid.startswith("M_") else
                    "general_practice_diabetes" if rid.startswith("G_") else
                    "hipfracture" if rid.startswith("H_") else "stroke")
        record = loaded.current[registry].get(rid)
        if record is None:
            wrong.append(f"{indicator} {rid}: not loaded")
            continue
        got = judge(loaded, indicator, record, boundary.CUTOFF)
        if indicator == "STROKE_07":
            got = None if got is None else got[2]
            ok = got == want if want is None or got is None else abs(got - want) < 1e-9
        else:
            ok = (None if got is None else got[:2]) == want
        if not ok:
            wrong.append(f"{indicator} {rid}: want {want}, got {got}")
    for (registry, rid), want in built.current.items():
        record = loaded.current[registry].get(rid)
        if want is None and record is not None:
            wrong.append(f"{registry} {_masked(rid)}: loaded, but breaks a rule")
        elif want is not None and (record is None or record[want[0]] != want[1]):
            wrong.append(f"{registry} {_masked(rid)}: current {want[0]} is not the expected one")
    broken = {}
    for source, _, _, rid, rules in loaded.quarantined:
        broken.setdefault((source, rid), []).append(rules)
    for (source, rid), want in built.rules.items():
        if broken.get((source, rid)) != want:
            wrong.append(f"{source} {_masked(str(rid))}: breaks {broken.get((source, rid))}, "
                         f"want {want}")
    rows = {tuple(r[k] for k in ("indicator_id", "period", "level", "unit_code")): r
            for r in compute(boundary_input["input"], loaded=loaded)}
    for cell, (numerator, denominator) in built.cells.items():
        row = rows.get(cell, {"numerator": 0, "denominator": 0})
        if (row["numerator"], row["denominator"]) != (numerator, denominator):
            wrong.append(f"{cell}: want {numerator}/{denominator}, "
                         f"got {row['numerator']}/{row['denominator']}")
    assert not wrong, "\n".join(wrong)
    assert len(built.expect) > 100


@pytest.fixture(scope="module")
def boundary_run(boundary_input):
    output = boundary_input["root"] / "output"
    result = run_cli(boundary_input["input"], output)
    # One file is unreadable on purpose: the run completes with failures.
    assert result.exit_code == 3, result.output[-3000:]
    return output


@pytest.mark.slow
def test_oracle_equals_pipeline_on_boundary_cases(boundary_input, boundary_run):
    oracle = compute(boundary_input["input"], loaded=boundary_input["loaded"])
    diffs = differences(oracle, pipeline_rows(boundary_run))
    assert not diffs, diff_table(diffs)
    assert len(oracle) > 1000


@pytest.mark.slow
def test_boundary_files_count_as_the_oracle_counts_them(boundary_input, boundary_run):
    assert file_counts(boundary_input["loaded"].files, boundary_run) == []


@pytest.mark.slow
def test_oracle_equals_pipeline_with_an_earlier_cutoff(boundary_input, tmp_path):
    """--cutoff: later periods are not counted and follow-up is measured against it."""
    cutoff = dt.date(2026, 6, 14)
    result = run_cli(boundary_input["input"], tmp_path / "out", "--cutoff", cutoff.isoformat())
    assert result.exit_code == 3, result.output[-3000:]
    oracle = compute(boundary_input["input"], cutoff=cutoff, loaded=boundary_input["loaded"])
    assert max(r["period"] for r in oracle if r["period_type"] == "month") == "2026-06"
    diffs = differences(oracle, pipeline_rows(tmp_path / "out"))
    assert not diffs, diff_table(diffs)


# -- minimal reproductions of what the comparison found ------------------------------------------

def _tiny_input(folder: Path, files: dict[str, bytes]) -> Path:
    import shutil

    (folder / "reference").mkdir(parents=True)
    for name in ("regions", "municipalities", "hospitals"):
        shutil.copy(boundary.REFERENCE / f"{name}.csv", folder / "reference" / f"{name}.csv")
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


STROKE_HEADER = ("record_id,cpr,sex,municipality_code,hospital_code,admission_at,diagnosis,"
                 "stroke_unit_at,imaging_at,thrombolysis,thrombolysis_at,dysphagia_screening_at,"
                 "physio_assessment_at,sss_score,prestroke_mrs,discharge_at,death_date")


def _stroke_line(rid: str, cpr: str) -> str:
    return f"{rid},{cpr},M,101,H401,2026-03-10 10:00,DI63,2026-03-10 11:00,,nej,,,,,,,"


def _compare_tiny(tmp_path: Path, files: dict[str, bytes]) -> tuple[list[dict], list[tuple]]:
    folder = _tiny_input(tmp_path / "input", files)
    result = run_cli(folder, tmp_path / "output")
    assert result.exit_code == 0, result.output[-3000:]
    oracle = compute(folder)
    return oracle, differences(oracle, pipeline_rows(tmp_path / "output"))


@pytest.mark.slow
def test_an_unbalanced_quote_does_not_swallow_the_next_line(tmp_path):
    """Contract: a line the CSV reader cannot split is quarantined (unparseable_row) and
    never swallows the lines after it."""
    patients = boundary.Patients()
    lines = [STROKE_HEADER, _stroke_line("S1", patients.cpr(dt.date(1950, 1, 1))),
             _stroke_line("S2", '"' + patients.cpr(dt.date(1950, 1, 2))),
             _stroke_line("S3", patients.cpr(dt.date(1950, 1, 3)))]
    oracle, diffs = _compare_tiny(tmp_path, {"stroke/stroke_2026-06-30.csv":
                                             ("\n".join(lines) + "\n").encode()})
    national = [r for r in oracle if r["indicator_id"] == "STROKE_01" and r["level"] == "national"
                and r["period"] == "2026"]
    assert [(r["numerator"], r["denominator"]) for r in national] == [(2, 2)]
    assert not diffs, diff_table(diffs)
    assert file_counts(load(tmp_path / "input").files, tmp_path / "output") == []


@pytest.mark.slow
def test_a_record_id_shaped_like_a_cpr_number_is_quarantined(tmp_path):
    """Contract (second release): rule record_id_is_cpr; no CPR-shaped value is stored."""
    import duckdb

    patients = boundary.Patients()
    shaped = boundary.raw_cpr("010101", 1, 234)  # a valid CPR number used as record_id
    lines = [STROKE_HEADER, _stroke_line(shaped, patients.cpr(dt.date(1950, 1, 1)))]
    oracle, diffs = _compare_tiny(tmp_path, {"stroke/stroke_2026-06-30.csv":
                                             ("\n".join(lines) + "\n").encode()})
    assert oracle == []
    with duckdb.connect(str(tmp_path / "output" / "kvalitet.duckdb"), read_only=True) as con:
        stored = con.sql("SELECT count(*) FROM stroke WHERE regexp_matches(record_id, "
                         "'[0-9]{6}-?[0-9]{4}')").fetchall()[0][0]
    assert stored == 0, f"{stored} CPR-shaped record_id value(s) stored in the warehouse"
    assert not diffs, diff_table(diffs)


@pytest.mark.slow
def test_zone_aware_parquet_times_count_in_danish_local_time(tmp_path):
    """Contract (second release): zone-aware Parquet timestamps are converted to
    Europe/Copenhagen and then treated as naive local values. 23:30 UTC on 10 March 2026 is
    00:30 on the 11th in Denmark: within a day of a hip fracture admission on the 12th."""
    import pyarrow as pa

    patient = boundary.Patients().cpr(dt.date(1950, 6, 6))
    hip = ("record_id;cpr;sex;municipality_code;hospital_code;admission_at;diagnosis;rehab_plan\n"
           f"H1;{patient};F;101;H102;2026-03-12 09:00;DS720;ja\n").encode()
    at = dt.datetime(2026, 3, 10, 23, 30, tzinfo=dt.timezone.utc)
    table = pa.table({"cpr": [patient], "hospital_code": ["H102"], "municipality_code": ["101"],
                      "admission_at": pa.array([at], pa.timestamp("us", tz="UTC")),
                      "action_diagnosis": ["DS721"]})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    oracle, diffs = _compare_tiny(tmp_path, {"hipfracture/hipfracture_2026-06-30.csv": hip,
                                             "lpr/lpr_2026-06-30.parquet":
                                                 sink.getvalue().to_pybytes()})
    national = [r for r in oracle if r["indicator_id"] == "COMPL_HIP" and r["level"] == "national"
                and r["period"] == "2026-03"]
    assert [(r["numerator"], r["denominator"]) for r in national] == [(1, 1)]
    assert not diffs, diff_table(diffs)


# -- random small inputs ------------------------------------------------------------------------

@pytest.mark.slow
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(example=random_inputs())
def test_oracle_equals_pipeline_on_random_small_inputs(example, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("oracle-random")
    folder = _tiny_input(tmp_path / "input", example.files)
    result = run_cli(folder, tmp_path / "output")
    assert result.exit_code == 0, result.output[-3000:]
    loaded = load(folder)
    diffs = differences(compute(folder, loaded=loaded), pipeline_rows(tmp_path / "output"))
    assert not diffs, diff_table(diffs)
    assert file_counts(loaded.files, tmp_path / "output") == []


@pytest.mark.slow
def test_a_quoted_header_is_read_like_quoted_values(tmp_path):
    """CSV quoting applies to the header too: a header of quoted names (as SAS and Excel
    write it) names the same columns; quoted values already load."""
    patients = boundary.Patients()
    header = ";".join(f'"{name}"' for name in STROKE_HEADER.split(","))
    lines = [header, _stroke_line("S1", patients.cpr(dt.date(1950, 1, 1))).replace(",", ";")]
    folder = _tiny_input(tmp_path / "input",
                         {"stroke/stroke_2026-06-30.csv": ("\n".join(lines) + "\n").encode()})
    oracle = compute(folder)
    assert [(r["numerator"], r["denominator"]) for r in oracle if r["indicator_id"] == "STROKE_01"
            and r["level"] == "national" and r["period"] == "2026"] == [(1, 1)]
    result = run_cli(folder, tmp_path / "output")
    assert result.exit_code == 0, result.output[-2000:]
    diffs = differences(oracle, pipeline_rows(tmp_path / "output"))
    assert not diffs, diff_table(diffs)


@pytest.mark.slow
def test_an_extract_dated_after_the_day_of_the_run_is_refused(tmp_path):
    """Contract (second release): such an extract is refused as a whole, named, exit 3."""
    patients = boundary.Patients()
    later = dt.date.today() + dt.timedelta(days=400)
    lines = [STROKE_HEADER, _stroke_line("S1", patients.cpr(dt.date(1950, 1, 1)))]
    future = [STROKE_HEADER, _stroke_line("S2", patients.cpr(dt.date(1951, 1, 1)))]
    folder = _tiny_input(tmp_path / "input", {
        "stroke/stroke_2026-06-30.csv": ("\n".join(lines) + "\n").encode(),
        f"stroke/stroke_{later.isoformat()}.csv": ("\n".join(future) + "\n").encode()})
    oracle = compute(folder)
    assert [(r["numerator"], r["denominator"]) for r in oracle if r["indicator_id"] == "STROKE_01"
            and r["level"] == "national" and r["period"] == "2026"] == [(1, 1)]
    result = run_cli(folder, tmp_path / "output")
    assert result.exit_code == 3 and f"stroke_{later.isoformat()}.csv" in result.output, \
        f"exit {result.exit_code}"
    diffs = differences(oracle, pipeline_rows(tmp_path / "output"))
    assert not diffs, diff_table(diffs)
