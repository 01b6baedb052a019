"""Attack: hostile CSVs through ingest with reading ahead: every row of every file accounted
for as the independent oracle counts it, and extra columns ignored as the contract says."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.ingest import ingest_directory
from schemas import EXTRACT_SCHEMAS
from tests.builders import TEST_KEY, cpr_for, stroke_row
from tests.oracle import load

COLUMNS = EXTRACT_SCHEMAS["stroke"].names


def _line(i: int, delimiter: str = ";") -> str:
    row = stroke_row(record_id=f"R{i}", cpr=cpr_for(dt.date(1930 + i % 60, 1 + i % 12, 1 + i % 28), i),
                     admission_at=f"2024-01-{1 + i % 28:02d} 10:00")
    return delimiter.join("" if row.get(c) is None else str(row[c]) for c in COLUMNS)


def test_hostile_files_read_ahead_count_as_the_oracle_counts_them(input_dir, tmp_path):
    """BOM + CRLF with broken quotes and an embedded newline, cp1252 with CR line ends, a
    0-byte file and a binary file between them, a header-only file: per file, rows read =
    loaded + quarantined, equal to the oracle's counts; the failed files fail alone."""
    folder = input_dir / "stroke"
    folder.mkdir()
    lines = [";".join(COLUMNS)] + [_line(i) for i in range(20)]
    lines[3] = lines[3].replace("R2;", '"R2";')  # a quoted field
    lines += [_line(100).replace("R100", 'R"100'),  # a quote inside an unquoted field
              _line(101).replace("R101", '"R1;01"'),  # the delimiter inside quotes
              _line(102).replace("R102", '"R10\n2"'),  # a quoted field across a line end
              _line(103).replace("R103", '"R103'),  # a quote that never closes
              _line(104)[:25]]  # a truncated last line, no line end
    (folder / "stroke_2024-01-31.csv").write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode())
    (folder / "stroke_2024-02-15.csv").write_bytes(b"")
    (folder / "stroke_2024-02-20.csv").write_bytes(b"PK\x03\x04\x00\x00not a csv")
    lines = [";".join([*COLUMNS, "bemærkning"])] + [_line(200 + i) + ";Ærø" for i in range(15)]
    (folder / "stroke_2024-02-29.csv").write_bytes(("\r".join(lines) + "\r").encode("cp1252"))
    (folder / "stroke_2024-03-31.csv").write_bytes(",".join(COLUMNS).encode())
    summary = ingest_directory(input_dir, tmp_path / "w.duckdb", TEST_KEY)
    oracle = {f.file_name: f for f in load(input_dir).files}
    outcomes = {f.file_name: f for f in summary.files}
    assert sorted(f.file_name for f in summary.failed) == ["stroke_2024-02-15.csv",
                                                         "stroke_2024-02-20.csv"]
    assert all(oracle[name].failed for name in ("stroke_2024-02-15.csv", "stroke_2024-02-20.csv"))
    for name, f in outcomes.items():
        if f.status == "failed":
            continue
        assert f.rows_read == f.rows_loaded + f.rows_quarantined, name
        mine = (oracle[name].rows_read, oracle[name].rows_loaded, oracle[name].rows_quarantined)
        assert (f.rows_read, f.rows_loaded, f.rows_quarantined) == mine, name
    assert outcomes["stroke_2024-01-31.csv"].rules == {"unparseable_row": 3}


@pytest.mark.parametrize("extra", [";;", ";note;note"])
def test_repeated_extra_column_names_are_ignored_not_fatal(input_dir, tmp_path, extra):
    """Two extra columns of one name (Excel's trailing ';;' gives two empty names) are extra
    columns, ignored and reported, as the contract says: every row loads."""
    folder = input_dir / "stroke"
    folder.mkdir()
    padding = ";" * (extra.count(";"))
    lines = [";".join(COLUMNS) + extra] + [_line(i) + padding for i in range(5)]
    (folder / "stroke_2024-01-31.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = ingest_directory(input_dir, tmp_path / "w.duckdb", TEST_KEY)
    assert load(input_dir).files[0].rows_loaded == 5  # the oracle reads it
    assert [(f.status, f.rows_loaded) for f in summary.files] == [("loaded", 5)]
