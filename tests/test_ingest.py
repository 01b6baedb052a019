"""Ingest into a real DuckDB file: idempotent, versioned, nothing lost, failures isolated."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import polars as pl
from hypothesis import HealthCheck, given, settings, strategies as st
from typer.testing import CliRunner

from pipelines import warehouse
from pipelines.cli import app
from pipelines.ingest import ingest_directory
from tests.builders import TEST_KEY, lpr_row, new_input, stroke_row, write_extract

TABLES = ["extract_files", "quarantine", "stroke_history", "hipfracture_history",
          "cardiac_rehab_hospital_history", "cardiac_rehab_municipal_history", "lpr_history",
          "regions", "municipalities", "hospitals"]


def snapshot(path) -> dict[str, list]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {t: sorted(con.sql(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES}


def current(path, table="stroke") -> pl.DataFrame:
    with duckdb.connect(str(path), read_only=True) as con:
        return pl.from_arrow(con.sql(f"SELECT * FROM {table} ORDER BY record_id").to_arrow_table())


def test_reingesting_the_same_input_changes_nothing(tmp_path):
    from sample_data.generate import generate

    generate(tmp_path / "in", rows=300)
    warehouse = tmp_path / "w.duckdb"
    first = ingest_directory(tmp_path / "in", warehouse, TEST_KEY)
    before = snapshot(warehouse)
    again = ingest_directory(tmp_path / "in", warehouse, TEST_KEY)
    assert {f.status for f in first.files} == {"loaded"}
    assert {f.status for f in again.files} == {"already_loaded"}
    assert snapshot(warehouse) == before


def test_a_later_extract_corrects_and_the_old_version_stays_in_history(input_dir, tmp_path):
    write_extract(input_dir, "stroke", "2024-06-30",
                  [stroke_row(record_id="A", thrombolysis="uoplyst"), stroke_row(record_id="B")])
    write_extract(input_dir, "stroke", "2024-12-31", [stroke_row(record_id="A", thrombolysis="ja")])
    warehouse = tmp_path / "w.duckdb"
    ingest_directory(input_dir, warehouse, TEST_KEY)
    assert current(warehouse)["thrombolysis"].to_list() == ["ja", "nej"]
    history = current(warehouse, "stroke_history").filter(pl.col("record_id") == "A")
    assert sorted(history["thrombolysis"].to_list()) == ["ja", "uoplyst"]


def test_the_latest_extract_date_wins_whatever_the_load_order(input_dir, tmp_path):
    warehouse = tmp_path / "w.duckdb"
    write_extract(input_dir, "stroke", "2024-12-31", [stroke_row(record_id="A", sex="F")])
    ingest_directory(input_dir, warehouse, TEST_KEY)
    write_extract(input_dir, "stroke", "2024-06-30", [stroke_row(record_id="A", sex="M")])
    ingest_directory(input_dir, warehouse, TEST_KEY)
    assert current(warehouse)["sex"].to_list() == ["F"]


def test_a_correction_that_breaks_a_rule_leaves_the_loaded_version_current(input_dir, tmp_path):
    write_extract(input_dir, "stroke", "2024-06-30", [stroke_row(record_id="A", sex="F")])
    write_extract(input_dir, "stroke", "2024-12-31", [stroke_row(record_id="A", sex="Q")])
    warehouse = tmp_path / "w.duckdb"
    summary = ingest_directory(input_dir, warehouse, TEST_KEY)
    assert current(warehouse)["sex"].to_list() == ["F"]
    assert summary.files[1].rows_quarantined == 1


def test_an_unreadable_file_changes_nothing_and_the_others_load(input_dir, tmp_path):
    write_extract(input_dir, "stroke", "2024-06-30", [stroke_row(record_id="A")])
    warehouse = tmp_path / "w.duckdb"
    ingest_directory(input_dir, warehouse, TEST_KEY)
    before = snapshot(warehouse)
    (input_dir / "stroke" / "stroke_2024-12-31.csv").write_text("record_id;cpr\nB;1\n")
    write_extract(input_dir, "hipfracture", "2024-12-31", [])
    summary = ingest_directory(input_dir, warehouse, TEST_KEY)
    failed = summary.failed
    assert [f.file_name for f in failed] == ["stroke_2024-12-31.csv"]
    assert "missing required column" in failed[0].problem
    after = snapshot(warehouse)
    assert after["stroke_history"] == before["stroke_history"]
    assert after["quarantine"] == before["quarantine"]
    assert len(after["extract_files"]) == len(before["extract_files"]) + 1  # the hip file


def test_run_exits_3_and_names_the_failed_file(input_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("KVALITET_PSEUDONYM_KEY", TEST_KEY.decode())
    write_extract(input_dir, "stroke", "2024-06-30", [stroke_row(record_id="A")])
    (input_dir / "stroke" / "stroke_2024-12-31.csv").write_bytes(b"\x00\x00")
    result = CliRunner().invoke(app, ["run", "--input", str(input_dir), "--output",
                                      str(tmp_path / "out")])
    assert result.exit_code == 3, result.output
    assert "stroke_2024-12-31.csv" in result.output and "binary" in result.output
    assert (tmp_path / "out" / "indicator_results.parquet").exists()


def test_run_without_a_key_refuses_to_start(input_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("KVALITET_PSEUDONYM_KEY", raising=False)
    result = CliRunner().invoke(app, ["run", "--input", str(input_dir), "--output",
                                      str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "KVALITET_PSEUDONYM_KEY" in result.output
    assert not (tmp_path / "out").exists()


# -- nothing lost: rows read = rows loaded + rows quarantined ----------------------------
BAD_VALUES = {"sex": "X", "diagnosis": "DI99", "admission_at": "2024-13-01 10:00",
              "cpr": "3102991234", "sss_score": "99", "hospital_code": "H000",
              "discharge_at": "2020-01-01 10:00", "death_date": "2030-01-01"}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.sampled_from([None, *BAD_VALUES]), st.integers(0, 5)),
                     min_size=0, max_size=30),
       ragged=st.lists(st.integers(0, 30), max_size=3))
def test_rows_read_equal_rows_loaded_plus_quarantined(tmp_path_factory, rows, ragged):
    folder = new_input(tmp_path_factory.mktemp("in"))
    made = []
    for broken, record in rows:  # record ids repeat, so duplicates occur too
        values = {broken: BAD_VALUES[broken]} if broken else {}
        made.append(stroke_row(record_id=f"R{record}", **values))
    path = write_extract(folder, "stroke", "2024-12-31", made)
    lines = path.read_text().splitlines()
    for position in ragged:
        if position < len(lines) - 1:
            lines[position + 1] += ";surplus"
    path.write_text("\n".join(lines) + "\n")
    summary = ingest_directory(folder, folder / "w.duckdb", TEST_KEY)
    outcome = summary.files[0]
    assert outcome.rows_read == len(made)
    assert outcome.rows_read == outcome.rows_loaded + outcome.rows_quarantined
    with duckdb.connect(str(folder / "w.duckdb"), read_only=True) as con:
        loaded = con.sql("SELECT count(*) FROM stroke_history").fetchall()[0][0]
        quarantined = con.sql("SELECT count(DISTINCT row_number) FROM quarantine").fetchall()[0][0]
    assert (loaded, quarantined) == (outcome.rows_loaded, outcome.rows_quarantined)


def test_run_with_clopper_pearson_intervals(input_dir, tmp_path, monkeypatch):
    from statsmodels.stats.proportion import proportion_confint

    monkeypatch.setenv("KVALITET_PSEUDONYM_KEY", TEST_KEY.decode())
    rows = [stroke_row(record_id=f"S{i}", dysphagia_screening_at="2024-03-10 11:00" if i % 3
                       else None) for i in range(9)]
    write_extract(input_dir, "stroke", "2024-12-31", rows)
    result = CliRunner().invoke(app, ["run", "--input", str(input_dir), "--output",
                                      str(tmp_path / "out"), "--ci", "clopper-pearson"])
    assert result.exit_code == 0, result.output
    row = pl.read_parquet(tmp_path / "out" / "indicator_results.parquet").filter(
        pl.col("indicator_id") == "STROKE_05", pl.col("level") == "national",
        pl.col("period") == "2024").row(0, named=True)
    assert (row["numerator"], row["denominator"]) == (6, 9)
    low, high = proportion_confint(6, 9, method="beta")
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(low), pytest.approx(high))


def test_a_file_read_in_batches_loads_exactly_as_read_whole(tmp_path, monkeypatch):
    """Batches (large files) change nothing: same rows, same quarantine, and the first row of
    a record_id wins even when its repeat lies in a later batch."""
    import pipelines.extract_reader as reader
    from tests.builders import new_input

    rows = [stroke_row(record_id=f"S{i % 700}", sex="F" if i < 700 else "M",
                       diagnosis="DI63" if i % 97 else "BAD") for i in range(1500)]
    whole_input = new_input(tmp_path / "in")
    write_extract(whole_input, "stroke", "2024-06-30", rows)
    whole = ingest_directory(whole_input, tmp_path / "whole.duckdb", TEST_KEY)
    monkeypatch.setattr(reader, "default_batch_bytes", lambda limit=None: 20_000)
    from schemas import EXTRACT_SCHEMAS

    batches = sum(1 for _ in reader.iter_extract_batches(
        whole_input / "stroke" / "stroke_2024-06-30.csv", EXTRACT_SCHEMAS["stroke"]))
    assert batches >= 3  # counted, not listed: a batch's repr would show its rows
    batched = ingest_directory(whole_input, tmp_path / "batched.duckdb", TEST_KEY)
    assert [(f.rows_read, f.rows_loaded, f.rows_quarantined, f.rules) for f in batched.files] == \
        [(f.rows_read, f.rows_loaded, f.rows_quarantined, f.rules) for f in whole.files]
    assert batched.files[0].rows_read == 1500 and batched.files[0].rows_loaded < 700
    for table in ("stroke_history", "quarantine"):
        def content(path):
            with duckdb.connect(str(path), read_only=True) as con:
                return sorted(con.sql(f"SELECT * EXCLUDE (file_id) FROM {table}").fetchall(),
                              key=repr)
        assert content(tmp_path / "batched.duckdb") == content(tmp_path / "whole.duckdb")
    assert set(current(tmp_path / "batched.duckdb")["sex"]) == {"F"}


def files_of_every_fate(input_dir, monkeypatch) -> None:
    """Stroke files in several batches, unreadable, refused (dated in the future), failing
    while written with batches still queued; then another registry's file."""
    import time

    import pipelines.extract_reader as reader
    import pipelines.ingest as ingest

    monkeypatch.setattr(reader, "default_batch_bytes", lambda limit=None: 20_000)
    write_extract(input_dir, "stroke", "2024-03-31", [stroke_row(record_id=f"S{i}")
                                                      for i in range(600)])
    (input_dir / "stroke" / "stroke_2024-04-30.csv").write_text("record_id;cpr\nB;1\n")
    write_extract(input_dir, "stroke", "2024-05-31", [stroke_row(record_id=f"F{i}")
                                                      for i in range(1500)])
    write_extract(input_dir, "stroke", "2024-06-30", [stroke_row(record_id=f"T{i}")
                                                      for i in range(900)])
    write_extract(input_dir, "stroke", "2999-01-31", [stroke_row(record_id="X")])
    write_extract(input_dir, "hipfracture", "2024-06-30", [])
    real_rows = ingest.warehouse_rows

    def failing_in_may(valid, source, key, file_id, extract_date):  # the writer fails; the
        if extract_date.month == 5:                                  # reader has read on
            time.sleep(0.5)  # long enough for the reader to queue the file's next batch
            raise RuntimeError("the writer failed")
        return real_rows(valid, source, key, file_id, extract_date)

    monkeypatch.setattr(ingest, "warehouse_rows", failing_in_may)


def test_reading_ahead_changes_no_outcome(input_dir, tmp_path, monkeypatch):
    """Files of every fate (several batches, unreadable, refused, failing while written with
    batches still queued), read ahead in a thread: exactly what one file after the other gives,
    and the thread is gone afterwards."""
    import threading

    import pipelines.extract_reader as reader
    import pipelines.ingest as ingest
    from schemas import EXTRACT_SCHEMAS

    files_of_every_fate(input_dir, monkeypatch)
    ahead = ingest_directory(input_dir, tmp_path / "ahead.duckdb", TEST_KEY)
    assert not [t for t in threading.enumerate() if t.name == "kvalitet-read-ahead"]

    class OneAfterTheOther:  # no thread: each file read and checked when the writer comes to it
        def __init__(self, files, formats, today, loaded, check):
            self.files, self.check = files, check

        def digest(self, index):
            return None

        def batches(self, index):
            source, path = self.files[index]
            return ((b, self.check(source, path, b))
                    for b in reader.iter_extract_batches(path, EXTRACT_SCHEMAS[source]))

        def done_with(self, index):
            pass

        def close(self):
            pass

    monkeypatch.setattr(ingest, "ReadAhead", OneAfterTheOther)
    alone = ingest_directory(input_dir, tmp_path / "alone.duckdb", TEST_KEY)
    assert ahead.as_dict() == alone.as_dict()
    fates = {f.file_name: (f.status, f.rows_loaded) for f in ahead.files}
    assert fates == {"stroke_2024-03-31.csv": ("loaded", 600),
                     "stroke_2024-04-30.csv": ("failed", 0),
                     "stroke_2024-05-31.csv": ("failed", 0),
                     "stroke_2024-06-30.csv": ("loaded", 900),
                     "stroke_2999-01-31.csv": ("failed", 0),
                     "hipfracture_2024-06-30.csv": ("loaded", 0)}
    loaded_at = 12  # extract_files' column of the clock
    ahead_tables, alone_tables = snapshot(tmp_path / "ahead.duckdb"), snapshot(tmp_path / "alone.duckdb")
    for tables in (ahead_tables, alone_tables):
        tables["extract_files"] = [r[:loaded_at] + r[loaded_at + 1:] for r in tables["extract_files"]]
    assert ahead_tables == alone_tables


def test_one_reader_across_registries_changes_no_outcome(input_dir, tmp_path, monkeypatch):
    """A run loads its registries one after another through one reader (the next registry's
    first file read while the current one's last batches are written): the same outcome and
    warehouse as a reader per registry, one reader started, none left afterwards, and a
    registry loaded again is hashed, not read, through the shared reader too."""
    import threading

    import pipelines.read_ahead as read_ahead
    from pipelines import steps

    files_of_every_fate(input_dir, monkeypatch)
    write_extract(input_dir, "lpr", "2024-06-30", [lpr_row()])
    started = []
    real_init = read_ahead.ReadAhead.__init__

    def counted(self, files, *args):
        started.append(len(files))
        real_init(self, files, *args)

    monkeypatch.setattr(read_ahead.ReadAhead, "__init__", counted)

    def per_registry(path: Path) -> list[dict]:
        return [ingest_directory(input_dir, path, TEST_KEY, sources=(s,)).as_dict()
                for s in steps.registries_present(input_dir)]

    separate = per_registry(tmp_path / "separate.duckdb")
    assert sorted(started) == [1, 1, 5]  # a reader per registry
    started.clear()
    shared_path = tmp_path / "shared.duckdb"
    with warehouse.held(shared_path), read_ahead.across_registries(input_dir):
        shared = per_registry(shared_path)
        assert started == [7]
        again = per_registry(shared_path)
    assert started == [7]
    assert not [t for t in threading.enumerate() if t.name == "kvalitet-read-ahead"]
    assert shared == separate
    assert {f["status"] for i in again for f in i["files"]} <= {"already_loaded", "failed"}
    loaded_at = 12  # extract_files' column of the clock
    tables = {name: snapshot(path) for name, path in (("separate", tmp_path / "separate.duckdb"),
                                                      ("shared", shared_path))}
    for snap in tables.values():
        snap["extract_files"] = [r[:loaded_at] + r[loaded_at + 1:] for r in snap["extract_files"]]
    assert tables["shared"] == tables["separate"]
