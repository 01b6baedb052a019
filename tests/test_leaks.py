"""No CPR number leaves the door: not planted ones around the `cpr` column, not the sample's.

The real CLI runs in a subprocess on a hostile input (tests/leak_fixture.py), directly and
under Prefect, followed by the annual and monthly reports; then every byte it produced is
read: the warehouse's tables, Parquet columns, CSV, xlsx XML, HTML, JSON, Markdown, stdout
and stderr, the working and temporary folders, and Prefect's database. A failure lists
locations and masked forms with counts, never a number.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
import xlsxwriter
from hypothesis import given, settings, strategies as st

from tests.builders import TEST_KEY
from tests.leak_fixture import (
    COLUMNS, FORMS, MASKS, CprMaker, Scan, birth_date, build_leak_input, century,
    find_numbers, masked, scan_tree, written,
)

ROOT = Path(__file__).resolve().parent.parent
# Files each registry reads before its overflow file (read last): their planted rows must be
# in the warehouse's file list, or the scan would prove nothing about rows and quarantine.
READ_FILES = ("stroke_2025-12-31.csv", "hipfracture_2025-12-31.csv", "hipfracture_2025-06-30.csv",
              "cardiac_rehab_hospital_2025-12-31.csv", "cardiac_rehab_hospital_2025-09-30.csv",
              "cardiac_rehab_municipal_2025-12-31.csv", "lpr_2025-12-31.csv",
              "lpr_2025-06-30.parquet")


@pytest.fixture(scope="module")
def leak_input(tmp_path_factory):
    return build_leak_input(tmp_path_factory.mktemp("leaks") / "input")


# -- the fixture itself ------------------------------------------------------------------
def test_every_planted_number_is_in_the_input(leak_input):
    """The scanner finds every planted and sample number in the input, so its silence on the
    output means something. (Only counts are asserted: pytest would print a set's members.)"""
    planted = set(leak_input.planted)
    assert len(leak_input.sample) > 1000 and len(planted) > 300
    shared = len(planted & leak_input.sample)
    assert shared == 0
    invalid = sum(birth_date(d) is None for d in planted)
    assert invalid == 0  # all valid by the century rule
    scan = Scan(leak_input.targets)
    scan_tree(scan, leak_input.folder, "input")
    unseen_planted, unseen_sample = len(planted - scan.found), len(leak_input.sample - scan.found)
    assert unseen_planted == 0 and unseen_sample == 0
    forms = {leak.form for leak in scan.leaks if leak.origin != "sample cpr"}
    assert forms == {"plain", "hyphen", "space"}
    # every non-cpr column of every registry holds a number, in every form
    for source, columns in COLUMNS.items():
        for column in columns:
            for form in FORMS:
                planted_here = [w for w in leak_input.planted.values()
                                if w.startswith(source + "_") and f" {column} (" in w
                                and form in w.split(f" {column} (")[1]]
                assert planted_here, f"nothing planted in {source}.{column} ({form})"
    wheres = " | ".join(leak_input.planted.values())
    for special in ("header name", "CR-only", "day 31", "day 5", "int64", "free text",
                    "column name", "ragged", ".parquet"):
        assert special in wheres


# -- running the real CLI ----------------------------------------------------------------
class CliRun:
    """What the commands printed (kept out of reprs: pytest shows a failing frame's
    arguments) and the folders they could write to."""

    FOLDERS = ("output", "prefect_home", "cwd", "tmp")

    def __init__(self, base: Path):
        self.runs: dict[str, tuple[int, str, str]] = {}  # command -> exit code, stdout, stderr
        for name in self.FOLDERS:
            (base / name).mkdir(parents=True)
            setattr(self, name, base / name)

    def __repr__(self) -> str:
        return f"CliRun({ {name: code for name, (code, _, _) in self.runs.items()} })"


def run_everything(leak_input, base: Path, orchestration: str) -> CliRun:
    """`run`, `report annual` and `report monthly` as a user runs them, in fresh folders."""
    run = CliRun(base)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({
        "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "KVALITET_PSEUDONYM_KEY": TEST_KEY.decode(), "KVALITET_WAREHOUSE": "",
        "KVALITET_ORCHESTRATION": orchestration, "PREFECT_HOME": str(run.prefect_home),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120", "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "TMPDIR": str(run.tmp),
    })
    warehouse = str(run.output / "kvalitet.duckdb")
    commands = {
        "run": ["run", "--input", str(leak_input.folder), "--output", str(run.output),
                "--verbose"],
        "report annual": ["report", "annual", "--year", "2025", "--warehouse", warehouse],
        "report monthly": ["report", "monthly", "--month", "2025-06", "--warehouse", warehouse],
    }
    for name, args in commands.items():
        done = subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=run.cwd,
                              env=env, capture_output=True)
        run.runs[name] = (done.returncode, done.stdout.decode("utf-8", "replace"),
                          done.stderr.decode("utf-8", "replace"))
    return run


def scan_everything(leak_input, run: CliRun) -> Scan:
    scan = Scan(leak_input.targets)
    for name, (_, stdout, stderr) in run.runs.items():
        scan.text(f"`{name}` stdout", stdout)
        scan.text(f"`{name}` stderr", stderr)
    for label in CliRun.FOLDERS:
        scan_tree(scan, getattr(run, label), label)
    return scan


def check_no_leaks(leak_input, run: CliRun, scan: Scan) -> None:
    code, _, stderr = run.runs["run"]
    assert code in (0, 3), f"`run` ended with {code}:\n{masked(stderr[-3000:])}"
    assert (run.output / "indicator_results.parquet").exists()
    for name in ("report annual", "report monthly"):
        code, _, stderr = run.runs[name]
        assert code == 0, f"`{name}` ended with {code}:\n{masked(stderr[-3000:])}"
    # The planted rows went in: their files were read, row for row.
    with duckdb.connect(str(run.output / "kvalitet.duckdb"), read_only=True) as con:
        read = dict(con.sql("SELECT file_name, rows_read FROM extract_files").fetchall())
    for name in READ_FILES:
        assert read.get(name) == leak_input.data_rows[name], name
    # The scan read what there is to read.
    assert scan.read["duckdb table"] >= 10 and scan.read["parquet file"] >= 100
    assert scan.read["xlsx member"] >= 10 and scan.read["file"] >= 100
    assert not [k for k in scan.read if k.startswith("unreadable")], masked(str(scan.read))
    leaks = scan.report()
    assert not leaks, (f"CPR numbers found in {len(scan.places())} places "
                       f"({sum(scan.leaks.values())} times):\n" + "\n".join(leaks))


def test_no_cpr_leaves_a_direct_run(leak_input, tmp_path):
    run = run_everything(leak_input, tmp_path, "direct")
    check_no_leaks(leak_input, run, scan_everything(leak_input, run))


@pytest.mark.slow
def test_no_cpr_leaves_a_prefect_run(leak_input, tmp_path):
    """Prefect's temporary server keeps logs, task results and artifacts in its database."""
    run = run_everything(leak_input, tmp_path, "prefect")
    scan = scan_everything(leak_input, run)
    databases = list(run.prefect_home.rglob("*.db"))
    assert databases, "Prefect wrote no database under PREFECT_HOME"
    assert scan.read["sqlite rows log"] > 0 and scan.read["sqlite rows artifact"] > 0
    check_no_leaks(leak_input, run, scan)


# -- the scanner on synthetic files ------------------------------------------------------
_SYNTHETIC = CprMaker(avoid=set(), seed=11)
NUMBER = _SYNTHETIC.new(day=31)  # 31DDMM...: overflows a 32-bit integer
LEADING_ZERO = _SYNTHETIC.new(day=5)  # 05....: an integer column would drop the zero
OTHER = _SYNTHETIC.new()  # valid, but not looked for


def _numbers() -> dict[str, str]:
    return {NUMBER: "planted: a", LEADING_ZERO: "planted: b"}


def _html(path: Path) -> None:
    path.write_text(f"<html><td>{written(NUMBER, 'hyphen')}</td><p>id&nbsp;"
                    f"{written(LEADING_ZERO, 'space')}</p></html>", encoding="utf-8")


def _xlsx(path: Path) -> None:
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet("x")
        sheet.write_string(0, 0, written(NUMBER, "space"))  # a shared string
        sheet.write_number(1, 0, int(LEADING_ZERO))  # a number cell: the zero is gone


def _duckdb(path: Path) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE q (v VARCHAR, n BIGINT, l VARCHAR[])")
        con.execute("INSERT INTO q VALUES ('x', ?, ['a', ?])",
                    [int(LEADING_ZERO), written(NUMBER, "plain")])


def _prefect_like_sqlite(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE log (id TEXT, message TEXT)")
    con.execute("CREATE TABLE artifact (id TEXT, data BLOB)")
    con.execute("INSERT INTO log VALUES ('1', ?)", [f"FAILED: column(s) {NUMBER}, 0"])
    con.execute("INSERT INTO artifact VALUES ('2', ?)",
                [f'{{"markdown": "{written(LEADING_ZERO, "hyphen")}"}}'.encode()])
    con.commit()
    con.close()


def _parquet(path: Path) -> None:
    pl.DataFrame({"ok": ["a"], "hospital_code": [written(NUMBER, "space")],
                  "code": [int(LEADING_ZERO)]}).write_parquet(path)


def _raw(path: Path) -> None:
    path.write_bytes(b"\x00\x01" + f"x{NUMBER}7".encode() + b"\xff")


SYNTHETIC = {
    "report.html": (_html, {("report.html", "hyphen"), ("report.html", "space")}),
    "book.xlsx": (_xlsx, {("book.xlsx!xl/sharedStrings.xml", "space"),
                          ("book.xlsx!xl/worksheets/sheet1.xml", "number")}),
    "w.duckdb": (_duckdb, {("w.duckdb table q.n", "number"), ("w.duckdb table q.l", "plain")}),
    "prefect.db": (_prefect_like_sqlite, {("prefect.db table log.message", "plain"),
                                          ("prefect.db table artifact.data", "hyphen")}),
    "t.parquet": (_parquet, {("t.parquet column hospital_code", "space"),
                             ("t.parquet column code", "number")}),
    "blob.bin": (_raw, {("blob.bin (raw bytes)", "plain")}),
}


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_the_scanner_finds_numbers_inside(name, tmp_path):
    """Each kind of file, each form: found where it is, reported masked."""
    make, expected = SYNTHETIC[name]
    make(tmp_path / name)
    scan = Scan(_numbers())
    scan_tree(scan, tmp_path, "t")
    found = {(leak.where.removeprefix("t/"), leak.form) for leak in scan.leaks}
    assert expected <= found
    assert not [k for k in scan.read if k.startswith("unreadable")]
    report = "\n".join(scan.report())
    shows_digits = NUMBER[:6] in report or LEADING_ZERO[1:7] in report
    assert not shows_digits


def test_the_scanner_finds_a_number_in_a_file_name(tmp_path):
    (tmp_path / f"hospital_{NUMBER}").mkdir()
    scan = Scan(_numbers())
    scan_tree(scan, tmp_path, "t")
    assert {leak.form for leak in scan.leaks} == {"plain"}


def test_the_scanner_leaves_other_numbers_alone():
    """Dates, fractions, hashes, other people's numbers and short codes are not hits."""
    short = LEADING_ZERO[1:]
    text = (f"2025-06-30 0.{NUMBER} H401 101 abc{short}def {NUMBER[:8]} {OTHER} {short}a "
            f"1{short} {NUMBER[:6]}_{NUMBER[6:]} {NUMBER[:6]}--{NUMBER[6:]}")
    hits = sum(find_numbers(text, _numbers()).values())  # a count: never print a number
    assert hits == 0


# Hypothesis draws a number's parts, so a failing example never prints a CPR-shaped value.
@settings(max_examples=300)
@given(born=st.dates(min_value=dt.date(1858, 1, 1), max_value=dt.date(2057, 12, 31)),
       pick=st.integers(0, 9), serial=st.integers(0, 999), form=st.sampled_from(FORMS),
       before=st.text(alphabet="ab <>;,\"'\n-", max_size=5),
       digits_before=st.text(alphabet="0123456789", max_size=4),
       after=st.text(alphabet="ab <>;,\"'\n-", max_size=5))
def test_any_written_number_is_found(born, pick, serial, form, before, digits_before, after):
    """A valid number in any form, in any surroundings (the plain form also at the end of a
    longer digit run), is found in that form, and the report shows only its mask."""
    yy = born.year % 100
    sevenths = [s for s in range(10) if century(s, yy) + yy == born.year]
    digits = f"{born:%d%m}{yy:02d}{sevenths[pick % len(sevenths)]}{serial:03d}"
    valid = birth_date(digits) == born
    assert valid
    if form != "plain":
        digits_before = ""
    text = before + digits_before + written(digits, form) + after
    hits = find_numbers(text, {digits: "planted: x"})[form, digits]
    assert hits >= 1
    scan = Scan({digits: "planted: x"})
    scan.text("f", text)
    report = "\n".join(scan.report())
    assert scan.leaks and not re.search(r"[0-9]{4}", report)  # counts and line numbers only
    assert all(MASKS[leak.form] in str(leak) for leak in scan.leaks)
