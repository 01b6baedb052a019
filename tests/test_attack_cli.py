"""Attack: the command as a user runs it (a subprocess through ``command_line``, which ends
with ``os._exit``): exit status and last lines on failure paths, a failing registry's effect on
the others, and CPR-shaped values in places a user names (folders, file names)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path


from tests.builders import TEST_KEY, cpr_for, hip_row, new_input, stroke_row, write_extract

ROOT = Path(__file__).resolve().parent.parent


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KVALITET_", "PREFECT_"))}
    env.update({"KVALITET_PSEUDONYM_KEY": TEST_KEY.decode(), "KVALITET_ORCHESTRATION": "direct",
                "TMPDIR": str(tmp_path), "PYTHONPATH": str(ROOT)})
    return env


def _input_with_a_failing_file(folder: Path) -> Path:
    folder = new_input(folder)
    write_extract(folder, "stroke", "2024-06-30", [stroke_row(record_id=f"S{i}") for i in range(3)])
    (folder / "stroke" / "stroke_2024-07-31.csv").write_bytes(b"")  # fails by name: exit 3
    return folder


def _run(args: list[str], tmp_path: Path, **streams) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=ROOT,
                          env=_env(tmp_path), **streams)


def test_exit_3_and_the_failed_file_survive_os_exit(tmp_path):
    folder = _input_with_a_failing_file(tmp_path / "input")
    done = _run(["run", "--input", str(folder), "--output", str(tmp_path / "out")], tmp_path,
                capture_output=True, text=True)
    assert done.returncode == 3
    assert done.stderr.rstrip().splitlines()[-1] == (
        "FAILED stroke/stroke_2024-07-31.csv: empty file: no header row")
    assert done.stdout.splitlines()[-1].startswith("manifest -> ")


def test_a_closed_stdout_keeps_the_exit_status(tmp_path):
    """Started with stdout closed (sys.stdout is None): no traceback, the run's own status."""
    folder = _input_with_a_failing_file(tmp_path / "input")
    command = (f"exec '{sys.executable}' -m pipelines.cli run --input '{folder}' "
               f"--output '{tmp_path / 'out'}' >&-")
    done = subprocess.run(["sh", "-c", command], cwd=ROOT, env=_env(tmp_path),
                          capture_output=False, stderr=subprocess.PIPE, text=True)
    assert "Traceback" not in done.stderr
    assert done.returncode == 3


def test_a_gone_reader_of_stdout_does_not_hide_the_failed_files(tmp_path):
    """stdout a pipe nobody reads (`| head -c0`): the FAILED lines still reach stderr and the
    exit status is the run's own."""
    folder = _input_with_a_failing_file(tmp_path / "input")
    read, write = os.pipe()
    os.close(read)
    try:
        done = _run(["run", "--input", str(folder), "--output", str(tmp_path / "out")], tmp_path,
                    stdout=write, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(write)
    assert "FAILED stroke/stroke_2024-07-31.csv" in done.stderr
    assert done.returncode == 3


def test_a_gone_reader_of_both_streams_keeps_the_exit_status(tmp_path):
    """`2>&1 | head -c0`: nothing can be said any more, but the status is still the run's."""
    folder = _input_with_a_failing_file(tmp_path / "input")
    read, write = os.pipe()
    os.close(read)
    try:
        done = _run(["run", "--input", str(folder), "--output", str(tmp_path / "out")], tmp_path,
                    stdout=write, stderr=write)
    finally:
        os.close(write)
    assert done.returncode == 3


def test_one_registry_failing_does_not_fail_the_next(tmp_path, monkeypatch):
    """A registry whose ingest fails outside a file's transaction rolls it back: the run's one
    connection is not left in an aborted transaction for the next registry."""
    import pipelines.ingest as ingest
    from pipelines.pipeline import pipeline

    monkeypatch.setenv("KVALITET_PSEUDONYM_KEY", TEST_KEY.decode())
    folder = new_input(tmp_path / "input")
    write_extract(folder, "hipfracture", "2024-06-30", [hip_row()])
    write_extract(folder, "stroke", "2024-06-30", [stroke_row()])
    real, calls = ingest.store_reference, []

    def failing_once(con, reference):  # hipfracture's ingest comes first and fails in DuckDB
        calls.append(1)
        if len(calls) == 1:
            con.execute("SELECT error('the first registry fails')")
        return real(con, reference)

    monkeypatch.setattr(ingest, "store_reference", failing_once)
    summary = pipeline(folder, tmp_path / "out")
    assert summary["registries"]["hipfracture"].startswith("failed")
    assert summary["registries"]["stroke"] == "completed"


def test_cpr_shaped_names_of_folders_and_files_never_leave_a_run(tmp_path):
    """The leak test plants numbers in values and headers; here they are in what a user or a
    registry names: the input folder, an extract's file name, a folder in a registry folder, a
    stray top-level file, an extra column, a record id inside longer text."""
    from tests.leak_fixture import Scan, scan_tree

    planted: dict[str, str] = {}

    def number(where: str, born: dt.date, serial: int) -> str:
        planted[cpr_for(born, serial)] = where
        return cpr_for(born, serial)

    folder = new_input(tmp_path / f"in_{number('input folder', dt.date(1971, 3, 4), 321)}")
    stroke = number("stroke file name", dt.date(1972, 5, 6), 654)
    write_extract(folder, "stroke", "2024-06-30",
                  [stroke_row(record_id="S1"),
                   stroke_row(record_id=f"ID{number('record id', dt.date(1975, 11, 12), 222)}X")],
                  name=f"stroke_{stroke}_2024-06-30.csv")
    from schemas import EXTRACT_SCHEMAS

    extra = number("extra column", dt.date(1978, 4, 15), 555)
    write_extract(folder, "stroke", "2024-07-31", [stroke_row(record_id="S9")],
                  columns=[*EXTRACT_SCHEMAS["stroke"].names, f"note{extra}"])
    (folder / "stroke" / f"{number('undated file', dt.date(1977, 2, 14), 444)}.csv").write_text("x\n")
    (folder / f"{number('stray entry', dt.date(1973, 7, 8), 987)}.txt").write_text("x\n")
    (folder / "stroke" / f"x{number('folder', dt.date(1974, 9, 10), 111)}_2024-06-30.csv").mkdir()
    write_extract(folder, "hipfracture", "2024-06-30", [hip_row()])
    out = tmp_path / "out"
    warehouse = str(out / "kvalitet.duckdb")
    scan = Scan(planted)
    codes = []
    for args in (["run", "--input", str(folder), "--output", str(out), "--verbose"],
                 ["ingest", "--input", str(folder), "--warehouse", warehouse],
                 ["extract", "list", "--warehouse", warehouse],
                 ["report", "annual", "--year", "2024", "--warehouse", warehouse]):
        done = _run(args, tmp_path, capture_output=True, text=True)
        codes.append(done.returncode)
        scan.text(f"{args[0]} stdout", done.stdout)
        scan.text(f"{args[0]} stderr", done.stderr)
    assert codes == [3, 3, 0, 0]
    scan_tree(scan, out, "output")
    assert not scan.report(), "\n".join(scan.report())
