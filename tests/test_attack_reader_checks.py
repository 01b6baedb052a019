"""Attacks on the day's three changes: the reader checks each batch (ba29a8b), a column is
trimmed when stripping changes a value's length (47e2520), Polars' allocator keeps freed pages
(c14d8f5).

One finding, fixed: the second registry of a shared run was checked against the first
registry's reference tables but stored its own. Everything else held and is pinned here."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pytest

import pipelines.extract_reader as reader
import pipelines.ingest as ingest
import pipelines.read_ahead as read_ahead
from pipelines import steps, warehouse
from pipelines.cpr import CPR_LIKE
from pipelines.ingest import ingest_directory
from schemas import EXTRACT_SCHEMAS
from tests.builders import TEST_KEY, cpr_for, hip_row, lpr_row, stroke_row, write_extract
from tests.test_ingest import snapshot

ROOT = Path(__file__).resolve().parents[1]
LOADED_AT = 12  # extract_files' column of the clock


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "kvalitet-read-ahead"]


def small_batches(monkeypatch) -> None:
    monkeypatch.setattr(reader, "default_batch_bytes", lambda limit=None: 20_000)


class OneAfterTheOther:
    """No thread: each file read and checked by the writer when it comes to it (the writer's
    own path, ``digest`` None), the oracle the reader's checks must equal."""

    def __init__(self, files, formats, today, loaded, check):
        pass

    def digest(self, index):
        return None

    def done_with(self, index):
        pass

    def close(self):
        pass


def without_reader(monkeypatch) -> None:
    monkeypatch.setattr(ingest, "ReadAhead", OneAfterTheOther)


def comparable(path: Path) -> dict:
    tables = snapshot(path)
    tables["extract_files"] = [r[:LOADED_AT] + r[LOADED_AT + 1:] for r in tables["extract_files"]]
    return tables


def both_ways(input_dir: Path, tmp_path: Path, monkeypatch, call=None, seen=None):
    """(outcome, warehouse) read ahead and checked by the reader, then checked by the writer;
    ``call(path)`` ingests (default: ingest_directory); an exception is the outcome.
    ``seen``: a failing check's count of batches, started afresh for each."""
    call = call or (lambda path: ingest_directory(input_dir, path, TEST_KEY).as_dict())

    def one(path: Path):
        if seen is not None:
            seen.clear()
        try:
            found = call(path)
        except BaseException as problem:  # noqa: BLE001 - the outcome to compare
            found = type(problem).__name__
        assert not reader_threads()
        if seen is not None:
            raised.extend(seen.get("raised in", []))
        return found, comparable(path)

    raised: list[str] = []
    ahead = one(tmp_path / "ahead.duckdb")
    with monkeypatch.context() as m:
        without_reader(m)
        alone = one(tmp_path / "alone.duckdb")
    if seen is not None:  # the reader's thread, then the writer's own
        assert raised == ["kvalitet-read-ahead", "MainThread"], raised
    return ahead, alone


def three_stroke_files(input_dir: Path) -> None:
    for month, rows in (("2024-03-31", 300), ("2024-04-30", 600), ("2024-05-31", 300)):
        write_extract(input_dir, "stroke", month,
                      [stroke_row(record_id=f"{month}-{i}") for i in range(rows)])


def failing_check(monkeypatch, problem: BaseException, name="stroke_2024-04-30.csv", batch=2):
    """validate raises ``problem`` on the file's ``batch``-th batch (in whichever thread; the
    thread's name is kept under "raised in")."""
    real, seen = ingest.validate, {}

    def check(extract, schema, context):
        seen[extract.path.name] = seen.get(extract.path.name, 0) + 1
        if extract.path.name == name and seen[extract.path.name] == batch:
            seen.setdefault("raised in", []).append(threading.current_thread().name)
            raise problem
        return real(extract, schema, context)

    monkeypatch.setattr(ingest, "validate", check)
    return seen


# -- 1. the reader checks each batch --------------------------------------------------------

@pytest.mark.parametrize("kind", [RuntimeError, MemoryError, ValueError])
def test_a_check_failing_in_the_reader_fails_its_file_only(input_dir, tmp_path, monkeypatch,
                                                            kind):
    """The check raises on the second batch of the middle file, in the reader's thread: that
    file fails with one masked line, nothing of it is stored, the files around it load, no
    reader is left, and all of it exactly as when the writer checks."""
    small_batches(monkeypatch)
    three_stroke_files(input_dir)
    cpr = cpr_for(dt.date(1950, 5, 17), 77)
    seen = failing_check(monkeypatch, kind(f"broken on {cpr}\nand a second line"))
    ahead, alone = both_ways(input_dir, tmp_path, monkeypatch, seen=seen)
    assert ahead == alone
    files = {f["file_name"]: f for f in ahead[0]["files"]}
    bad = files["stroke_2024-04-30.csv"]
    # Rows read = loaded + quarantined holds for a failed file too: it counts no row.
    assert (bad["status"], bad["rows_read"], bad["rows_loaded"],
            bad["rows_quarantined"]) == ("failed", 0, 0, 0)
    assert bad["problem"].startswith(kind.__name__) and "\n" not in bad["problem"]
    assert not re.search(CPR_LIKE, bad["problem"])
    assert [(files[n]["status"], files[n]["rows_loaded"]) for n in
            ("stroke_2024-03-31.csv", "stroke_2024-05-31.csv")] == [("loaded", 300)] * 2
    tables = ahead[1]
    assert sorted(r[2] for r in tables["extract_files"]) == ["stroke_2024-03-31.csv",
                                                             "stroke_2024-05-31.csv"]
    assert len(tables["stroke_history"]) == 600 and tables["quarantine"] == []


@pytest.mark.parametrize("kind", [KeyboardInterrupt, SystemExit])
def test_an_interrupt_in_the_readers_check_stops_the_run_as_the_writers_would(
        input_dir, tmp_path, monkeypatch, kind):
    """An interrupt is not one file's failure: raised in the reader's check it reaches the
    caller as itself, the file it hit is rolled back, the one before stays, no reader is
    left; the same as when the writer checks."""
    small_batches(monkeypatch)
    three_stroke_files(input_dir)
    seen = failing_check(monkeypatch, kind("stop"))
    ahead, alone = both_ways(input_dir, tmp_path, monkeypatch, seen=seen)
    assert ahead == alone
    assert ahead[0] == kind.__name__
    assert [r[2] for r in ahead[1]["extract_files"]] == ["stroke_2024-03-31.csv"]
    assert len(ahead[1]["stroke_history"]) == 300


def test_a_check_failing_on_a_files_first_batch_fails_before_any_write(input_dir, tmp_path,
                                                                      monkeypatch):
    small_batches(monkeypatch)
    three_stroke_files(input_dir)
    seen = failing_check(monkeypatch, RuntimeError("first"), batch=1)
    ahead, alone = both_ways(input_dir, tmp_path, monkeypatch, seen=seen)
    assert ahead == alone
    fates = {f["file_name"]: f["status"] for f in ahead[0]["files"]}
    assert fates["stroke_2024-04-30.csv"] == "failed"
    assert list(fates.values()).count("loaded") == 2


def hostile_stroke(input_dir: Path) -> None:
    """Several batches of 20 kB: ids repeated across batches, CPR-shaped ids, dates after
    the extract date, unknown hospitals, values of white space only or padded with
    white space and with look-alikes that are not white space."""
    rows = []
    for i in range(700):
        row = stroke_row(record_id=f"S{i % 450}")  # rows 450.. repeat earlier batches' ids
        if i % 37 == 0:
            row["record_id"] = cpr_for(dt.date(1971, 1, 1 + i % 28), i)
        if i % 41 == 0:
            row["admission_at"] = "2024-04-02 10:00"  # after 2024-03-31
        if i % 43 == 0:
            row["hospital_code"] = "H999"
        if i % 47 == 0:
            row["hospital_code"] = "\u00a0H401\u3000"  # white space: stripped
        if i % 53 == 0:
            row["hospital_code"] = "\u200bH401"  # not white space: an unknown code
        if i % 59 == 0:
            row["diagnosis"] = " \u2003 "  # white space only: missing
        if i % 61 == 0:
            row["thrombolysis"] = "\ufeffJA"
        rows.append(row)
    write_extract(input_dir, "stroke", "2024-03-31", rows)


def test_hostile_rows_in_small_batches_fare_as_when_the_writer_checks(input_dir, tmp_path,
                                                                      monkeypatch):
    small_batches(monkeypatch)
    hostile_stroke(input_dir)
    write_extract(input_dir, "lpr", "2024-03-31",
                  [lpr_row(hospital_code=["H401", "H999", " H402 "][i % 3],
                           admission_at=["2024-03-10 09:00", "2024-05-01 09:00"][i % 2])
                   for i in range(900)])
    ahead, alone = both_ways(input_dir, tmp_path, monkeypatch)
    assert ahead == alone
    stroke = next(f for f in ahead[0]["files"] if f["source"] == "stroke")
    assert stroke["rows_read"] == 700 == stroke["rows_loaded"] + stroke["rows_quarantined"]
    rules = stroke["rules"]
    assert rules["record_id_is_cpr"] == 19
    assert rules["duplicate_record_id"] > 0 and rules["after_extract_date"] > 0
    assert rules["known_code"] > 0 and rules["required"] > 0
    shown = [r for r in ahead[1]["quarantine"] if r[5] == "record_id_is_cpr"]
    assert shown and not any(re.search(CPR_LIKE, str(v)) for r in shown for v in r)
    lpr = next(f for f in ahead[0]["files"] if f["source"] == "lpr")
    assert lpr["rows_loaded"] == 300  # H401 or H402 (padded), in March


def test_quarantine_rules_of_the_hostile_file(input_dir, tmp_path, monkeypatch):
    """The look-alikes are judged as the contract says: U+00A0/U+3000 padding is stripped
    (loads), U+200B is not white space (unknown code), white space only is missing."""
    small_batches(monkeypatch)
    hostile_stroke(input_dir)
    ingest_directory(input_dir, tmp_path / "w.duckdb", TEST_KEY)
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        rules = dict(con.execute("SELECT row_number, list(rule ORDER BY rule) FROM quarantine "
                                 "GROUP BY 1").fetchall())
    assert 47 + 1 not in rules  # row 48 (i = 47): NBSP/ideographic space padded, loads
    assert "known_code" in rules[53 + 1]  # U+200B
    assert "required" in rules[59 + 1]  # white space only


def test_each_file_is_judged_by_its_own_extract_date(input_dir, tmp_path, monkeypatch):
    """The reader's check keeps a context per extract date: a row dated 15 February is after
    the January extract's date and not after the March one's, whichever came first, in
    one registry and across registries of a shared run."""
    small_batches(monkeypatch)
    for day in ("2024-01-31", "2024-03-31", "2024-02-14", "2024-02-15"):
        write_extract(input_dir, "stroke", day,
                      [stroke_row(record_id=f"{day}-{i}", admission_at="2024-02-15 23:59")
                       for i in range(400)])
        write_extract(input_dir, "hipfracture", day,
                      [hip_row(record_id=f"{day}-{i}", admission_at="2024-02-15 00:01")
                       for i in range(400)])

    def shared(path: Path) -> list[dict]:
        with warehouse.held(path), read_ahead.across_registries(input_dir):
            return [ingest_directory(input_dir, path, TEST_KEY, sources=(s,)).as_dict()
                    for s in steps.registries_present(input_dir)]

    for call in (None, shared):
        ahead, alone = both_ways(input_dir, tmp_path, monkeypatch, call)
        assert ahead == alone
        found = ahead[0] if isinstance(ahead[0], list) else [ahead[0]]
        loaded = {f"{f['source']}/{f['extract_date']}": f["rows_loaded"]
                  for i in found for f in i["files"]}
        assert loaded == {f"{s}/{d}": 0 if d < "2024-02-15" else 400
                          for s in ("stroke", "hipfracture")
                          for d in ("2024-01-31", "2024-02-14", "2024-02-15", "2024-03-31")}
        for p in (tmp_path / "ahead.duckdb", tmp_path / "alone.duckdb"):
            p.unlink()


def test_files_already_in_the_warehouse_are_not_checked_again(input_dir, tmp_path,
                                                              monkeypatch):
    small_batches(monkeypatch)
    three_stroke_files(input_dir)
    path = tmp_path / "w.duckdb"
    ingest_directory(input_dir, path, TEST_KEY)
    before = comparable(path)
    checked = failing_check(monkeypatch, RuntimeError("never"), name="-", batch=0)
    write_extract(input_dir, "stroke", "2024-06-30", [stroke_row(record_id="N")])
    again = ingest_directory(input_dir, path, TEST_KEY)
    assert checked == {"stroke_2024-06-30.csv": 1}
    assert [f.status for f in again.files] == ["already_loaded"] * 3 + ["loaded"]
    after = comparable(path)
    assert len(after["extract_files"]) == len(before["extract_files"]) + 1
    assert not reader_threads()


def with_reference_corrected_after(input_dir: Path, path: Path, first: str, shared: bool
                                   ) -> list[dict]:
    """Each registry's ingest in turn; hospitals.csv gets H999 after ``first``'s."""
    def each() -> list[dict]:
        found = []
        for source in steps.registries_present(input_dir):
            found.append(ingest_directory(input_dir, path, TEST_KEY, sources=(source,))
                         .as_dict())
            if source == first:
                with open(input_dir / "reference" / "hospitals.csv", "a") as table:
                    table.write("H999,Nyt Hospital,1084\n")
        return found

    if not shared:
        return each()
    with warehouse.held(path), read_ahead.across_registries(input_dir):
        return each()


def test_a_shared_run_checks_and_stores_the_reference_tables_it_started_with(
        input_dir, tmp_path):
    """Found by this attack: the reader checked every registry against the first registry's
    reference tables while each registry's ingest stored its own, so a hospital added between
    registries was in the warehouse's hospitals table and its rows were quarantined as
    known_code. A shared run now reads the tables once, when it starts: what it stores is
    what it checked against."""
    write_extract(input_dir, "hipfracture", "2024-03-31", [hip_row()])
    write_extract(input_dir, "stroke", "2024-03-31", [stroke_row(hospital_code="H999")])
    shared = with_reference_corrected_after(input_dir, tmp_path / "s.duckdb", "hipfracture",
                                            shared=True)
    with duckdb.connect(str(tmp_path / "s.duckdb"), read_only=True) as con:
        stored = con.execute("SELECT count(*) FROM hospitals WHERE hospital_code = 'H999'"
                             ).fetchone()[0]
    stroke = shared[1]["files"][0]
    assert stored == 0  # the table as the run found it
    assert (stroke["rows_loaded"], stroke["rules"]) == (0, {"known_code": 1})


def test_the_second_registry_of_a_reader_per_registry_run_uses_its_own_reference(
        input_dir, tmp_path):
    """The same correction without a shared reader: the row loads (the oracle of the xfail)."""
    write_extract(input_dir, "hipfracture", "2024-03-31", [hip_row()])
    write_extract(input_dir, "stroke", "2024-03-31", [stroke_row(hospital_code="H999")])
    separate = with_reference_corrected_after(input_dir, tmp_path / "a.duckdb", "hipfracture",
                                              shared=False)
    assert (separate[1]["files"][0]["rows_loaded"], separate[1]["files"][0]["rules"]) == (1, {})


# -- 2. trimming -----------------------------------------------------------------------------

@pytest.mark.parametrize("values, expected", [
    (["a", "b", "c"], ["a", "b", "c"]),
    (["a", "\u00a0", "c"], ["a", None, "c"]),  # white space only: null
    (["a", "", "c"], ["a", None, "c"]),
    (["\u200ba", "a\ufeff", "\x1ca"], ["\u200ba", "a\ufeff", "\x1ca"]),  # not white space
    (["\u2028a\u3000", "b", "\u0085"], ["a", "b", None]),
    (["\u200b", " x ", "y"], ["\u200b", "x", "y"]),
])
def test_a_column_is_trimmed_exactly_when_a_value_needs_it(values, expected):
    """Whatever the column's mix, every value loses exactly its surrounding White_Space and
    an empty value is null (the flag of the rewrite cannot leave a value unstripped)."""
    import polars as pl

    frame = pl.DataFrame({"v": values, reader.ROW_NUMBER: [1, 2, 3]})
    assert reader._trimmed(frame)["v"].to_list() == expected


def test_batches_needing_trimming_or_not_read_as_the_file_whole(tmp_path, monkeypatch):
    """Only some batches of a file have padded values: batch for batch the same values as
    the file read in one batch."""
    schema = EXTRACT_SCHEMAS["stroke"]
    rows = [stroke_row(record_id=f"S{i}",
                       hospital_code=("\u2003H401 " if 300 <= i < 350 else "H401"),
                       diagnosis=("\u200bDI63" if i == 600 else "DI63")) for i in range(800)]
    path = write_extract(tmp_path, "stroke", "2024-03-31", rows)
    whole = reader.read_extract(path, schema).rows.sort(reader.ROW_NUMBER)
    small_batches(monkeypatch)
    import polars as pl

    batches = list(reader.iter_extract_batches(path, schema))
    assert len(batches) > 2
    parts = pl.concat([b.rows for b in batches]).sort(reader.ROW_NUMBER)
    assert parts.equals(whole)
    assert set(whole["hospital_code"].to_list()) == {"H401"}
    assert whole["diagnosis"].to_list().count("\u200bDI63") == 1


# -- 3. the allocator's setting ---------------------------------------------------------------

def _python(code: str, **env: str | None) -> subprocess.CompletedProcess:
    import os

    environment = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    environment.update({k: v for k, v in env.items() if v is not None})
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env=environment, check=True)


def test_polars_allocator_really_takes_the_setting():
    """jemalloc itself reports the decay it uses (stats at exit): the package's minute, and
    nothing malformed in the setting."""
    code = ("import os, pipelines\nos.environ['_RJEM_MALLOC_CONF'] += ',stats_print:true'\n"
            "import polars\npolars.DataFrame({'a': [1, 2]}).sum()")
    ran = _python(code)
    assert "opt.dirty_decay_ms: 60000 " in ran.stderr
    assert "Malformed" not in ran.stderr and "Invalid conf" not in ran.stderr


@pytest.mark.parametrize("given", ["", "dirty_decay_ms:0"])
def test_a_users_allocator_setting_wins_even_empty(given):
    ran = _python("import os, pipelines, polars\nprint(repr(os.environ['_RJEM_MALLOC_CONF']))",
                  _RJEM_MALLOC_CONF=given)
    assert ran.stdout.strip().strip("'").endswith(given) and "60000" not in ran.stdout


def test_a_child_process_of_the_package_sees_the_same_setting():
    """A subprocess the package starts (git for the manifest, a server) inherits the setting;
    one that imports Polars again still ends with the minute, not Polars' half second."""
    code = ("import os, subprocess, sys, pipelines, polars\n"
            "print(subprocess.run([sys.executable, '-c', 'import os, polars; "
            "print(os.environ[\"_RJEM_MALLOC_CONF\"])'], capture_output=True, text=True,"
            " check=True).stdout.strip())")
    ran = _python(code)
    assert ran.stdout.strip().split(",")[-1] == "dirty_decay_ms:60000"


def test_parquet_text_is_trimmed_like_csv_and_all_null_columns_pass(input_dir, tmp_path,
                                                                    monkeypatch):
    """A Parquet extract's values (dictionary-encoded, padded, white space only, an all-null
    optional column) are trimmed and checked as a CSV's, the reader's way and the writer's."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [stroke_row(record_id=f"P{i}") for i in range(300)]
    columns = {c: [r.get(c) for r in rows] for c in EXTRACT_SCHEMAS["stroke"].names}
    columns["hospital_code"] = [["\u3000H401", "H401 ", "\u200bH401"][i % 3] for i in range(300)]
    columns["diagnosis"] = [" \t " if i == 7 else "DI63" for i in range(300)]
    table = pa.table({c: (pa.array(v, pa.string()).dictionary_encode()
                          if c == "hospital_code" else pa.array(v, pa.string()))
                      for c, v in columns.items()})
    assert any(all(v is None for v in values) for values in columns.values())
    (input_dir / "stroke").mkdir()
    pq.write_table(table, input_dir / "stroke" / "stroke_2024-03-31.parquet", row_group_size=64)
    ahead, alone = both_ways(input_dir, tmp_path, monkeypatch)
    assert ahead == alone
    found = ahead[0]["files"][0]
    assert (found["rows_loaded"], found["rules"]) == (199, {"known_code": 100, "required": 1})
