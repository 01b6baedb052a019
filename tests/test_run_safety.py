"""A run refuses what would silently give wrong numbers: another key, a future extract, bad
arguments; a wrong delivery can be taken back; deliveries agree with the published counts."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.ingest import ingest_directory
from pipelines.settings import SAMPLE_INPUT_DIR
from tests.builders import (
    TEST_KEY, born_years_before, cpr_for, lpr_row, stroke_row, write_extract,
)
from tests.test_ingest import snapshot

OTHER_KEY = "another-key-that-is-long-enough"


def run(*args, key: str = TEST_KEY.decode(), **env):
    result = CliRunner().invoke(app, [str(a) for a in args],
                                env={"KVALITET_PSEUDONYM_KEY": key, "KVALITET_WAREHOUSE": "",
                                     **env})
    return result


def results(output) -> pl.DataFrame:
    return pl.read_parquet(output / "indicator_results.parquet")


def national(frame: pl.DataFrame, indicator: str, period: str) -> tuple[int, int]:
    row = frame.filter(pl.col("indicator_id") == indicator, pl.col("period") == period,
                       pl.col("level") == "national").row(0, named=True)
    return row["numerator"], row["denominator"]


@pytest.fixture
def sample_copy(tmp_path):
    shutil.copytree(SAMPLE_INPUT_DIR, tmp_path / "input")
    return tmp_path / "input"


def test_another_key_is_refused_before_anything_loads(sample_copy, tmp_path):
    output = tmp_path / "out"
    assert run("run", "--input", sample_copy, "--output", output).exit_code == 0
    before_results = results(output)
    before = snapshot(output / "kvalitet.duckdb")
    new = sample_copy / "stroke" / "stroke_2026-01-31.csv"
    new.write_bytes((sample_copy / "stroke" / "stroke_2025-12-31.csv").read_bytes())
    refused = run("run", "--input", sample_copy, "--output", output, key=OTHER_KEY)
    assert refused.exit_code == 1
    assert "another pseudonymisation key" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    assert snapshot(output / "kvalitet.duckdb") == before
    assert results(output).equals(before_results)


def test_the_key_fingerprint_is_not_the_key(sample_copy, tmp_path):
    output = tmp_path / "out"
    assert run("ingest", "--input", sample_copy, "--warehouse", output / "w.duckdb").exit_code == 0
    with duckdb.connect(str(output / "w.duckdb"), read_only=True) as con:
        stored = con.sql("SELECT value FROM warehouse_meta WHERE name = 'key_fingerprint'"
                         ).fetchall()[0][0]
    assert len(stored) == 64 and TEST_KEY.decode() not in stored
    refused = run("ingest", "--input", sample_copy, "--warehouse", output / "w.duckdb",
                  key=OTHER_KEY)
    assert refused.exit_code == 1 and "another pseudonymisation key" in refused.output


def test_a_future_extract_is_refused_and_moves_nothing(input_dir, tmp_path):
    write_extract(input_dir, "stroke", "2024-06-30", [stroke_row(record_id="A", sex="F")])
    write_extract(input_dir, "stroke", "2099-01-01", [stroke_row(record_id="A", sex="M")])
    output = tmp_path / "out"
    outcome = run("run", "--input", input_dir, "--output", output,
                  KVALITET_RUN_DATE="2025-01-10")
    assert outcome.exit_code == 3
    assert "stroke_2099-01-01.csv" in outcome.output and "after the day of the run" in outcome.output
    with duckdb.connect(str(output / "kvalitet.duckdb"), read_only=True) as con:
        assert con.sql("SELECT max(extract_date) FROM extract_files").fetchall()[0][0] == \
            dt.date(2024, 6, 30)
        assert con.sql("SELECT sex FROM stroke").fetchall() == [("F",)]
    # A real correction that arrives later still wins.
    write_extract(input_dir, "stroke", "2025-01-05", [stroke_row(record_id="A", sex="M")])
    again = run("run", "--input", input_dir, "--output", output, KVALITET_RUN_DATE="2025-01-10")
    assert again.exit_code == 3  # the 2099 file is still refused
    with duckdb.connect(str(output / "kvalitet.duckdb"), read_only=True) as con:
        assert con.sql("SELECT sex FROM stroke").fetchall() == [("M",)]
    assert "(cutoff 2025-01-05)" in again.output


def test_a_retracted_extract_leaves_the_current_data_but_not_the_history(input_dir, tmp_path):
    write_extract(input_dir, "stroke", "2024-06-30", [stroke_row(record_id="A", sex="F"),
                                                      stroke_row(record_id="B")])
    wrong = write_extract(input_dir, "stroke", "2024-09-30", [stroke_row(record_id="A", sex="M"),
                                                              stroke_row(record_id="C")])
    output = tmp_path / "out"
    assert run("run", "--input", input_dir, "--output", output).exit_code == 0
    assert national(results(output), "STROKE_02", "2024") == (0, 3)
    retract = run("extract", "retract", wrong, "--warehouse", output / "kvalitet.duckdb",
                  "--by", "datamanager")
    assert retract.exit_code == 0, retract.output
    with duckdb.connect(str(output / "kvalitet.duckdb"), read_only=True) as con:
        assert con.sql("SELECT record_id, sex FROM stroke ORDER BY 1").fetchall() == [
            ("A", "F"), ("B", "M")]
        assert con.sql("SELECT count(*) FROM stroke_history").fetchall()[0][0] == 4
        assert con.sql("SELECT retracted_by, retracted_at IS NOT NULL FROM extract_files "
                       "WHERE file_name = 'stroke_2024-09-30.csv'").fetchall() == [
            ("datamanager", True)]
    again = run("run", "--input", input_dir, "--output", output)
    assert again.exit_code == 0
    assert national(results(output), "STROKE_02", "2024") == (0, 2)
    assert "(cutoff 2024-06-30)" in again.output  # a retracted extract's date does not count
    listed = run("extract", "list", "--warehouse", output / "kvalitet.duckdb")
    assert "retracted" in listed.output and "datamanager" in listed.output
    unknown = run("extract", "retract", "stroke_1999-01-01.csv", "--warehouse",
                  output / "kvalitet.duckdb")
    assert unknown.exit_code == 1


def test_the_same_content_under_a_later_date_is_a_new_delivery(input_dir, tmp_path):
    """The content hash decides what is the same extract; the extract date still counts."""
    first = write_extract(input_dir, "stroke", "2024-06-30", [stroke_row(record_id="A", sex="F")])
    write_extract(input_dir, "stroke", "2024-09-30", [stroke_row(record_id="A", sex="M")])
    (input_dir / "stroke" / "stroke_2024-12-31.csv").write_bytes(first.read_bytes())
    warehouse = tmp_path / "w.duckdb"
    summary = ingest_directory(input_dir, warehouse, TEST_KEY)
    assert [f.status for f in summary.files] == ["loaded"] * 3
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.sql("SELECT sex FROM stroke").fetchall() == [("F",)]
        assert con.sql("SELECT max(extract_date) FROM delivered_files").fetchall()[0][0] == \
            dt.date(2024, 12, 31)
    again = ingest_directory(input_dir, warehouse, TEST_KEY)
    assert {f.status for f in again.files} == {"already_loaded"}


def test_monthly_records_use_the_runs_cutoff(input_dir, tmp_path):
    """With --cutoff, what a unit is sent are the records its published counts rest on."""
    rows = [stroke_row(record_id=f"R{i}", admission_at=f"2024-03-{10 + i} 10:00",
                       death_date=None) for i in range(8)]
    write_extract(input_dir, "stroke", "2024-06-30", rows)
    output = tmp_path / "out"
    assert run("run", "--input", input_dir, "--output", output, "--cutoff", "2024-03-13"
               ).exit_code == 0
    counted = results(output).filter(pl.col("indicator_id") == "STROKE_01",
                                     pl.col("period") == "2024-03", pl.col("level") == "hospital")
    assert counted["denominator"].to_list() == [4]
    report = run("report", "monthly", "--month", "2024-03", "--warehouse",
                 output / "kvalitet.duckdb")
    assert report.exit_code == 0, report.output
    listed = pl.read_csv(output / "reports" / "monthly" / "2024-03" / "hospital_H401" /
                         "records_not_meeting.csv")
    assert sorted(listed.filter(pl.col("indicator_id") == "STROKE_01")["record_id"]) == [
        "R0", "R1", "R2", "R3"]


@pytest.mark.parametrize("args", [
    ["monthly", "--month", "2025-13"], ["monthly", "--month", "12-2025"],
    ["annual", "--year", "25"], ["run", "--cutoff", "31-12-2025"],
    ["run", "--ci", "bayes"],
])
def test_bad_arguments_stop_before_any_work(args, tmp_path):
    output = tmp_path / "out"
    outcome = run(*args[:1], "--input", SAMPLE_INPUT_DIR, "--output", output, *args[1:])
    assert outcome.exit_code == 2
    assert len(outcome.output.strip().splitlines()) == 1, outcome.output
    assert not (output / "kvalitet.duckdb").exists()


@pytest.mark.parametrize("args", [["report", "monthly", "--month", "2025-00"],
                                  ["report", "annual", "--year", "202"]])
def test_bad_report_arguments(args, tmp_path):
    outcome = run(*args, "--warehouse", tmp_path / "none.duckdb")
    assert outcome.exit_code == 2 and len(outcome.output.strip().splitlines()) == 1


def test_a_report_without_a_warehouse_says_so_in_one_line(tmp_path):
    outcome = run("report", "annual", "--year", "2025", "--warehouse", tmp_path / "none.duckdb")
    assert outcome.exit_code == 1
    assert "no warehouse" in outcome.output and "Traceback" not in outcome.output


def test_folders_and_strangers_in_the_input_are_named(sample_copy, tmp_path):
    (sample_copy / "stroke" / "stroke_2025-07-07.csv").mkdir()
    (sample_copy / "notes.txt").write_text("hello")
    outcome = run("run", "--input", sample_copy, "--output", tmp_path / "out")
    assert outcome.exit_code == 3
    assert "stroke/stroke_2025-07-07.csv/" in outcome.output
    assert "notes.txt" in outcome.output
    assert (tmp_path / "out" / "indicator_results.parquet").exists()


def test_a_held_warehouse_is_one_line(input_dir, tmp_path):
    write_extract(input_dir, "stroke", "2024-06-30", [stroke_row()])
    warehouse = tmp_path / "w.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('held', flush=True); time.sleep(60)", str(warehouse)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        outcome = run("ingest", "--input", input_dir, "--warehouse", warehouse)
    finally:
        holder.kill()
        holder.wait()
    assert outcome.exit_code == 1
    assert "in use by another run" in outcome.output and "process" in outcome.output
    assert len(outcome.output.strip().splitlines()) == 1


def test_a_corrupt_warehouse_is_one_line(input_dir, tmp_path):
    write_extract(input_dir, "stroke", "2024-06-30", [stroke_row()])
    warehouse = tmp_path / "w.duckdb"
    warehouse.write_bytes(b"this is not a database" * 1000)
    outcome = run("ingest", "--input", input_dir, "--warehouse", warehouse)
    assert outcome.exit_code == 1
    assert "not a readable Kvalitet warehouse" in outcome.output
    assert len(outcome.output.strip().splitlines()) == 1


def test_a_failing_file_fails_alone_and_the_rest_of_its_registry_loads(input_dir, tmp_path,
                                                                        monkeypatch):
    import pipelines.ingest as ingest

    write_extract(input_dir, "stroke", "2024-06-30", [stroke_row(record_id="A")])
    write_extract(input_dir, "stroke", "2024-09-30", [stroke_row(record_id="B")])
    write_extract(input_dir, "stroke", "2024-12-31", [stroke_row(record_id="C")])
    real = ingest.validate

    def explode_on_september(extract, *args):
        if extract.extract_date == dt.date(2024, 9, 30):
            raise ValueError("unexpected value 0101801234 in a column")  # CPR-shaped on purpose
        return real(extract, *args)

    monkeypatch.setattr(ingest, "validate", explode_on_september)
    summary = ingest_directory(input_dir, tmp_path / "w.duckdb", TEST_KEY)
    assert [f.status for f in summary.files] == ["loaded", "failed", "loaded"]
    failed = summary.files[1]
    assert failed.file_name == "stroke_2024-09-30.csv"
    leaked = "0101801234" in failed.problem
    assert failed.problem.startswith("ValueError: ") and not leaked
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.sql("SELECT record_id FROM stroke ORDER BY 1").fetchall() == [("A",), ("C",)]


def test_age_boundaries_reach_the_populations(input_dir, tmp_path):
    """Someone whose 18th/65th birthday is the day after admission is not in the population."""
    admitted = dt.date(2024, 2, 2)
    rows = []
    for i, (years, after) in enumerate([(18, 0), (18, 1), (65, 0), (65, 1)]):
        born = born_years_before(admitted, years, days_after=after)
        rows.append(lpr_row(cpr=cpr_for(born, serial=i), admission_at="2024-02-02 10:00",
                            action_diagnosis="DS721"))
        rows.append(lpr_row(cpr=cpr_for(born, serial=i), admission_at="2024-02-02 10:00",
                            action_diagnosis="DI63"))
    write_extract(input_dir, "lpr", "2024-06-30", rows)
    write_extract(input_dir, "stroke", "2024-06-30", [stroke_row()])
    output = tmp_path / "out"
    assert run("run", "--input", input_dir, "--output", output).exit_code == 0
    frame = results(output)
    assert national(frame, "COMPL_HIP", "2024")[1] == 1      # only the one 65 on the day
    assert national(frame, "COMPL_STROKE", "2024")[1] == 3   # both 65s and the 18 on the day


@pytest.mark.slow
def test_prefects_temporary_server_ends_with_a_killed_run(tmp_path):
    """kill -9 of a run under Prefect's local mode must not leave its server running."""
    import os
    import signal
    import time

    env = {**os.environ, "KVALITET_PSEUDONYM_KEY": TEST_KEY.decode(), "KVALITET_WAREHOUSE": "",
           "KVALITET_ORCHESTRATION": "prefect", "PREFECT_HOME": str(tmp_path / "prefect")}
    env.pop("PREFECT_API_URL", None)
    run_ = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "run", "--input",
                             str(SAMPLE_INPUT_DIR), "--output", str(tmp_path / "out")],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def server_children() -> list[int]:
        found = subprocess.run(["pgrep", "-P", str(run_.pid), "-f", "uvicorn"],
                               capture_output=True, text=True).stdout.split()
        return [int(p) for p in found]

    try:
        deadline = time.monotonic() + 120
        while not (servers := server_children()):
            assert run_.poll() is None and time.monotonic() < deadline, "no server started"
            time.sleep(0.5)
        os.kill(run_.pid, signal.SIGKILL)
        run_.wait()
        deadline = time.monotonic() + 60
        while any(os.path.exists(f"/proc/{p}") and "zombie" not in open(
                f"/proc/{p}/status").read().lower() for p in servers):
            assert time.monotonic() < deadline, "the temporary server outlived its run"
            time.sleep(0.5)
    finally:
        if run_.poll() is None:
            run_.kill()
        for pid in server_children():
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB file system (tmpfs; needs root, as on CI's machine): less than the sample needs."""
    import os

    folder = tmp_path / "small"
    folder.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs",
                                            str(folder)], capture_output=True).returncode:
        pytest.skip("cannot mount a small file system here")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_a_full_disk_says_so_and_names_the_file(small_disk):
    outcome = run("ingest", "--input", SAMPLE_INPUT_DIR, "--warehouse", small_disk / "w.duckdb")
    assert outcome.exit_code == 1
    last = outcome.output.strip().splitlines()[-1]
    assert "No space left on device" in last and "w.duckdb" in last
    assert "cannot rollback" not in outcome.output and "Traceback" not in outcome.output


def test_a_full_disk_under_the_validation_report_names_the_file(small_disk, tmp_path):
    """The warehouse fits; the report's folder is full: the last line says which file."""
    filler = small_disk / "filler"
    with open(filler, "wb") as out:  # take every byte the small disk has
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    outcome = run("ingest", "--input", SAMPLE_INPUT_DIR, "--warehouse",
                  tmp_path / "w" / "w.duckdb", "--report", small_disk / "validation")
    assert outcome.exit_code == 1
    last = outcome.output.strip().splitlines()[-1]
    assert "No space left on device" in last and "validation" in last, last
    assert "Traceback" not in outcome.output


def test_direct_mode_does_not_import_prefect():
    """KVALITET_ORCHESTRATION=direct pays no Prefect import (seconds of fixed cost)."""
    code = ("import sys; from pipelines import cli, pipeline; "
            "print('prefect' in sys.modules)")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert shown.stdout.strip() == "False", shown.stderr


def test_reports_find_the_runs_warehouse_and_refuse_without_results(input_dir, tmp_path):
    write_extract(input_dir, "stroke", "2024-06-30",
                  [stroke_row(record_id=f"R{i}") for i in range(6)])
    ingested = tmp_path / "ingested"
    assert run("ingest", "--input", input_dir, "--warehouse", ingested / "kvalitet.duckdb"
               ).exit_code == 0
    empty = run("report", "annual", "--year", "2024", "--output", ingested)
    assert empty.exit_code == 1 and "no indicator results" in empty.output
    assert not (ingested / "reports").exists()
    output = tmp_path / "out"
    assert run("run", "--input", input_dir, "--output", output).exit_code == 0
    annual = run("report", "annual", "--year", "2024", "--output", output)
    assert annual.exit_code == 0, annual.output
    assert (output / "reports" / "annual" / "2024" / "stroke" / "annual_report.html").exists()
    other = run("report", "annual", "--year", "2019", "--output", output)
    assert other.exit_code == 1 and "no indicator results for 2019" in other.output


def test_a_formats_file_that_cannot_be_followed_stops_the_run(input_dir, tmp_path):
    write_extract(input_dir, "stroke", "2024-06-30", [stroke_row()])
    (input_dir / "formats.yaml").write_text('stroke: {sep: ";"}\n')
    outcome = run("run", "--input", input_dir, "--output", tmp_path / "out")
    assert outcome.exit_code == 1 and "formats.yaml" in outcome.output
    assert not (tmp_path / "out" / "kvalitet.duckdb").exists()


def test_a_run_whose_only_file_fails_completes_with_failures(input_dir, tmp_path):
    path = write_extract(input_dir, "stroke", "2024-06-30", [stroke_row()])
    path.write_bytes(b"\x00\x01 not a csv")
    output = tmp_path / "out"
    outcome = run("run", "--input", input_dir, "--output", output)
    assert outcome.exit_code == 3, outcome.output
    assert "stroke_2024-06-30.csv" in outcome.output and "Traceback" not in outcome.output
    assert results(output).is_empty()
