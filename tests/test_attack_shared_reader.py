"""Attacks on one reader shared by a run's registries (read_ahead.across_registries, ff954cf).

The first four were found failing (a run crossing midnight, a file delivered during the run,
an input loaded again through the same reader) and are fixed; the others held from the start."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import duckdb
import pytest

import pipelines.read_ahead as read_ahead
from pipelines import settings, steps, warehouse
from pipelines.ingest import ingest_directory
from tests.builders import TEST_KEY, hip_row, lpr_row, stroke_row, write_extract


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "kvalitet-read-ahead"]


def per_registry(input_dir: Path, path: Path) -> list[dict]:
    """What DirectRunner does: every registry's ingest in turn (outcomes only)."""
    return [ingest_directory(input_dir, path, TEST_KEY, sources=(s,)).as_dict()
            for s in steps.registries_present(input_dir)]


def shared(input_dir: Path, path: Path) -> list[dict]:
    with warehouse.held(path), read_ahead.across_registries(input_dir):
        return per_registry(input_dir, path)


def outcomes(ingests: list[dict]) -> dict[str, tuple]:
    return {f"{f['source']}/{f['file_name']}": (f["status"], f["rows_read"], f["rows_loaded"],
                                                f["problem"])
            for i in ingests for f in i["files"]}


def history_rows_per_file(path: Path, source: str) -> dict[str, int]:
    with duckdb.connect(str(path), read_only=True) as con:
        return dict(con.execute(
            f"SELECT f.file_name, count(*) FROM {source}_history h JOIN extract_files f "
            "USING (file_id) GROUP BY 1").fetchall())


def a_day_then_the_next(monkeypatch, first: dt.date) -> None:
    """settings.today(): ``first`` on its first call, the day after from then on (a run
    that starts before midnight and is still loading after it)."""
    calls = []

    def today() -> dt.date:
        calls.append(1)
        return first if len(calls) == 1 else first + dt.timedelta(days=1)

    monkeypatch.delenv("KVALITET_RUN_DATE", raising=False)
    monkeypatch.setattr(settings, "today", today)


def test_a_run_crossing_midnight_judges_every_file_by_its_first_day(input_dir, tmp_path,
                                                                   monkeypatch):
    """The run has one day, the one it started on: a file dated the next day is refused as
    after the day of the run, by name, whichever registry it is in (the shared reader once
    skipped it while a later registry's writer, past midnight, accepted it and failed with
    'StopIteration'), and the files around it load."""
    write_extract(input_dir, "hipfracture", "2024-03-31", [hip_row()])
    write_extract(input_dir, "lpr", "2024-04-02", [lpr_row(), lpr_row(hospital_code="H402")])
    write_extract(input_dir, "stroke", "2024-03-31", [stroke_row()])
    a_day_then_the_next(monkeypatch, dt.date(2024, 4, 1))
    found = outcomes(shared(input_dir, tmp_path / "w.duckdb"))
    status, _, loaded, problem = found["lpr/lpr_2024-04-02.csv"]
    assert (status, loaded) == ("failed", 0)
    assert "after the day of the run (2024-04-01)" in problem
    assert found["hipfracture/hipfracture_2024-03-31.csv"][0] == "loaded"
    assert found["stroke/stroke_2024-03-31.csv"][0] == "loaded"


def test_a_run_crossing_midnight_does_not_hang_on_its_last_file(input_dir, tmp_path,
                                                                monkeypatch):
    """The same with the next day's file last: once the writer waited for ever for a batch
    the finished reader never sent."""
    write_extract(input_dir, "hipfracture", "2024-03-31", [hip_row()])
    write_extract(input_dir, "stroke", "2024-04-02", [stroke_row()])
    a_day_then_the_next(monkeypatch, dt.date(2024, 4, 1))
    found: dict = {}
    worker = threading.Thread(target=lambda: found.update(
        outcomes(shared(input_dir, tmp_path / "w.duckdb"))), daemon=True)
    worker.start()
    worker.join(timeout=10)
    hung = worker.is_alive()
    if hung:  # release the writer (an item past its file ends its wait) so nothing is left
        run = read_ahead.run_reader(input_dir)
        run._reader._queue.put((10**6, "end", None))
        worker.join(timeout=30)
    assert not hung, "the run hung on its last file"
    assert found["stroke/stroke_2024-04-02.csv"][0] == "failed"
    assert found["hipfracture/hipfracture_2024-03-31.csv"][0] == "loaded"


def test_a_file_delivered_during_the_run_fails_no_registry(input_dir, tmp_path, monkeypatch):
    import pipelines.ingest as ingest

    write_extract(input_dir, "hipfracture", "2024-03-31", [hip_row()])
    write_extract(input_dir, "lpr", "2024-03-31", [lpr_row()])
    real = ingest.validate

    def delivering(extract, schema, context):  # while hipfracture loads, lpr gets a file
        late = input_dir / "lpr" / "lpr_2024-04-30.csv"
        if not late.exists():
            write_extract(input_dir, "lpr", "2024-04-30", [lpr_row(), lpr_row()])
        return real(extract, schema, context)

    monkeypatch.setattr(ingest, "validate", delivering)
    found = outcomes(shared(input_dir, tmp_path / "w.duckdb"))
    assert found["lpr/lpr_2024-03-31.csv"] == ("loaded", 1, 1, None)
    assert found["lpr/lpr_2024-04-30.csv"] == ("loaded", 2, 2, None)


def test_an_input_loaded_again_through_the_same_reader_does_not_hang(input_dir, tmp_path):
    write_extract(input_dir, "hipfracture", "2024-03-31", [hip_row()])
    write_extract(input_dir, "stroke", "2024-03-31", [stroke_row()])
    path, found = tmp_path / "w.duckdb", []

    def twice() -> None:
        with warehouse.held(path), read_ahead.across_registries(input_dir):
            found.append(outcomes(per_registry(input_dir, path)))
            found.append(outcomes(per_registry(input_dir, path)))

    worker = threading.Thread(target=twice, daemon=True)
    worker.start()
    worker.join(timeout=10)
    hung = worker.is_alive()
    if hung:  # release the writer (an item past its file ends its wait) so nothing is left
        read_ahead.run_reader(input_dir)._reader._queue.put((10**6, "end", None))
        worker.join(timeout=30)
    assert not hung, "the second load hung"
    assert {status for status, *_ in found[1].values()} == {"already_loaded"}

# -- what held ---------------------------------------------------------------------------------

def small_batches_in_consecutive_registries(input_dir: Path, monkeypatch) -> None:
    import pipelines.extract_reader as reader

    monkeypatch.setattr(reader, "default_batch_bytes", lambda limit=None: 20_000)
    write_extract(input_dir, "hipfracture", "2024-03-31",
                  [hip_row(record_id=f"H{i}") for i in range(900)])
    write_extract(input_dir, "hipfracture", "2024-04-30",
                  [hip_row(record_id=f"H{i}", sex="M") for i in range(700)])
    (input_dir / "cardiac_rehab_municipal").mkdir()  # a registry without files in between
    write_extract(input_dir, "lpr", "2024-03-31",
                  [lpr_row(hospital_code=f"H40{i % 3}") for i in range(1100)])
    write_extract(input_dir, "lpr", "2024-04-30", [lpr_row() for _ in range(100)])
    write_extract(input_dir, "stroke", "2024-03-31",
                  [stroke_row(record_id=f"S{i}") for i in range(800)])
    write_extract(input_dir, "stroke", "2099-01-01", [stroke_row()])
    (input_dir / "stroke" / "stroke_2024-05-31.csv").write_bytes(b"\xff\xfe\x00garbage")


@pytest.mark.parametrize("fails", ["lpr", "hipfracture"])
def test_a_registry_failing_whole_leaves_the_next_ones_their_own_batches(input_dir, tmp_path,
                                                                         monkeypatch, fails):
    """A registry's ingest fails outside any file (storing the reference tables, after the
    reader has read ahead into its first file): the next registries' files load whole, batch
    for batch, exactly as with a reader per registry."""
    import pipelines.ingest as ingest

    small_batches_in_consecutive_registries(input_dir, monkeypatch)
    real, current = ingest.store_reference, {}

    def failing_for(con, reference):
        if current.get("source") == fails:
            raise RuntimeError("reference tables not stored")
        return real(con, reference)

    monkeypatch.setattr(ingest, "store_reference", failing_for)

    def each(path: Path) -> list:
        found = []
        for source in steps.registries_present(input_dir):
            current["source"] = source
            try:
                found.append(ingest_directory(input_dir, path, TEST_KEY, sources=(source,))
                             .as_dict())
            except RuntimeError:
                found.append(source)
        return found

    with warehouse.held(tmp_path / "s.duckdb"), read_ahead.across_registries(input_dir):
        together = each(tmp_path / "s.duckdb")
    assert not reader_threads()
    alone = each(tmp_path / "a.duckdb")
    assert fails in together and together == alone
    for source in ("hipfracture", "lpr", "stroke"):
        per_file = history_rows_per_file(tmp_path / "s.duckdb", source)
        assert per_file == history_rows_per_file(tmp_path / "a.duckdb", source)
        assert (per_file == {}) == (source == fails)
    loaded = outcomes([i for i in together if isinstance(i, dict)])
    assert loaded["stroke/stroke_2024-03-31.csv"] == ("loaded", 800, 800, None)


@pytest.mark.parametrize("stop", ["interrupt", "disk full"])
def test_a_run_stopped_mid_file_leaves_no_reader_and_the_next_run_completes(
        input_dir, tmp_path, monkeypatch, stop):
    """KeyboardInterrupt or a full disk in the (one) batch of lpr's last file, with stroke's
    first file read ahead: the run stops, no reader thread is left, nothing of that file is
    stored, and the next run loads everything as one clean run does."""
    from pipelines import warehouse as wh
    from pipelines.ingest import FatalIngestError
    from pipelines.pipeline import pipeline

    monkeypatch.setenv("KVALITET_PSEUDONYM_KEY", TEST_KEY.decode())
    small_batches_in_consecutive_registries(input_dir, monkeypatch)
    real = wh.store_rows

    def stopping(con, source, rows, file_id, extract_date, file_name):
        if file_name == "lpr_2024-04-30.csv":
            if stop == "interrupt":
                raise KeyboardInterrupt
            raise duckdb.IOException("No space left on device")
        return real(con, source, rows, file_id, extract_date, file_name)

    monkeypatch.setattr(wh, "store_rows", stopping)
    with pytest.raises(KeyboardInterrupt if stop == "interrupt" else FatalIngestError):
        pipeline(input_dir, tmp_path / "out", warehouse=tmp_path / "w.duckdb")
    assert not reader_threads()
    assert list(history_rows_per_file(tmp_path / "w.duckdb", "lpr")) == ["lpr_2024-03-31.csv"]
    assert history_rows_per_file(tmp_path / "w.duckdb", "stroke") == {}
    monkeypatch.setattr(wh, "store_rows", real)
    again = pipeline(input_dir, tmp_path / "out", warehouse=tmp_path / "w.duckdb")
    clean = pipeline(input_dir, tmp_path / "clean", warehouse=tmp_path / "c.duckdb")
    assert not reader_threads()
    assert again["files_loaded"] == 2 and again["files_already_loaded"] == 3
    assert clean["files_loaded"] == 5
    for source in ("hipfracture", "lpr", "stroke"):
        assert (history_rows_per_file(tmp_path / "w.duckdb", source)
                == history_rows_per_file(tmp_path / "c.duckdb", source))
