"""Reading a file: encodings, delimiters, headers, Parquet; failures are loud and named."""

import polars as pl
import pytest

from pipelines.extract_reader import FileFormat, read_extract
from pipelines.sources import UnreadableExtract
from schemas import EXTRACT_SCHEMAS
from tests.builders import new_input, stroke_row, write_extract

STROKE = EXTRACT_SCHEMAS["stroke"]


def test_semicolon_cp1252_with_danish_letters(tmp_path):
    folder = new_input(tmp_path)
    columns = STROKE.names + ["bemærkning"]
    path = write_extract(folder, "stroke", "2024-12-31", [stroke_row(bemærkning="Ærø, på vej")],
                         delimiter=";", encoding="cp1252", columns=columns)
    extract = read_extract(path, STROKE)
    assert (extract.encoding, extract.delimiter) == ("cp1252", ";")
    assert extract.extra_columns == ["bemærkning"]
    assert extract.rows["record_id"].to_list() == ["S1"]


def test_comma_utf8_with_byte_order_mark_and_any_column_order(tmp_path):
    folder = new_input(tmp_path)
    columns = list(reversed(STROKE.names))
    path = write_extract(folder, "stroke", "2024-12-31", [stroke_row()], delimiter=",",
                         columns=columns)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    extract = read_extract(path, STROKE)
    assert (extract.encoding, extract.delimiter) == ("utf-8", ",")
    assert extract.rows.columns[1:] == STROKE.names
    assert extract.rows["hospital_code"].to_list() == ["H401"]


def test_quoted_fields_take_the_exact_path(tmp_path):
    folder = new_input(tmp_path)
    path = write_extract(folder, "stroke", "2024-12-31", [stroke_row(record_id='"S;1"')])
    assert read_extract(path, STROKE).rows["record_id"].to_list() == ["S;1"]


def test_absent_optional_columns_are_empty_not_fatal(tmp_path):
    folder = new_input(tmp_path)
    required = [c for c in STROKE.names if c in STROKE.required_names]
    path = write_extract(folder, "stroke", "2024-12-31", [stroke_row()], columns=required)
    extract = read_extract(path, STROKE)
    assert "death_date" in extract.absent_optional_columns
    assert extract.rows["death_date"].to_list() == [None]


def test_rows_with_the_wrong_number_of_fields_are_set_aside(tmp_path):
    folder = new_input(tmp_path)
    path = write_extract(folder, "stroke", "2024-12-31", [stroke_row(), stroke_row(record_id="S2")])
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[1] + ";extra", lines[2], "a;b"]) + "\n")
    extract = read_extract(path, STROKE)
    assert extract.unparseable.rows() == [(1, 2, "18 fields, header has 17"),
                                          (3, 4, "2 fields, header has 17")]
    assert extract.rows["__row_number"].to_list() == [2]
    assert extract.rows_read == 3


@pytest.mark.parametrize("content, problem", [
    (b"", "empty file"),
    (b"\x00\x01\x02binary", "binary"),
    (b"record_id;cpr\nS1;0101801234\n", "missing required column(s) sex"),
    (b"foo,bar\n1,2\n", "no known column names"),
    (b"record_id;cpr;sex\n\x81\x8d\x8f\n", "cannot be decoded"),
])
def test_unreadable_files_say_what_is_wrong(tmp_path, content, problem):
    path = tmp_path / "stroke_2024-12-31.csv"
    path.write_bytes(content)
    with pytest.raises(UnreadableExtract) as error:
        read_extract(path, STROKE)
    assert problem in str(error.value) and "stroke_2024-12-31.csv" in str(error.value)


def test_ambiguous_delimiter_fails_unless_told(tmp_path):
    path = tmp_path / "stroke_2024-12-31.csv"
    header = "record_id;cpr,sex"
    path.write_text(header + "\n")
    with pytest.raises(UnreadableExtract, match="ambiguous"):
        read_extract(path, STROKE)


def test_a_wrong_encoding_told_fails_loudly(tmp_path):
    folder = new_input(tmp_path)
    path = write_extract(folder, "stroke", "2024-12-31", [stroke_row(record_id="Æ1")],
                         encoding="cp1252")
    with pytest.raises(UnreadableExtract, match="utf-8"):
        read_extract(path, STROKE, FileFormat(encoding="utf-8"))


def test_file_name_must_end_in_a_real_extract_date(tmp_path):
    for name in ("stroke.csv", "stroke_2024-02-30.csv", "stroke_2024-12-31.txt"):
        path = tmp_path / name
        path.write_text("x\n")
        with pytest.raises(UnreadableExtract, match="extract date|real date"):
            read_extract(path, STROKE)


def test_parquet_values_are_read_as_the_contract_text(tmp_path):
    import datetime as dt

    frame = pl.DataFrame({
        "record_id": ["S1"], "cpr": ["1705500123"], "sex": ["M"], "municipality_code": [101],
        "hospital_code": ["H401"], "admission_at": [dt.datetime(2024, 3, 10, 10, 0)],
        "diagnosis": ["DI63"], "sss_score": [12.0], "death_date": [dt.date(2024, 3, 20)],
    })
    path = tmp_path / "stroke_2024-12-31.parquet"
    frame.write_parquet(path)
    rows = read_extract(path, STROKE).rows
    assert rows.select("admission_at", "sss_score", "death_date", "municipality_code").row(0) == (
        "2024-03-10 10:00:00", "12", "2024-03-20", "101")


def test_not_a_parquet_file(tmp_path):
    path = tmp_path / "stroke_2024-12-31.parquet"
    path.write_text("record_id;cpr\n")
    with pytest.raises(UnreadableExtract, match="Parquet"):
        read_extract(path, STROKE)


def test_formats_told_in_the_input_folder_are_used_not_guessed(input_dir, tmp_path):
    from pipelines.ingest import ingest_directory
    from tests.builders import TEST_KEY

    write_extract(input_dir, "stroke", "2024-12-31", [stroke_row(record_id="Æ1")],
                  encoding="cp1252")
    (input_dir / "formats.yaml").write_text('stroke: {encoding: "utf-8"}\n')
    summary = ingest_directory(input_dir, tmp_path / "w.duckdb", TEST_KEY)
    assert summary.files[0].status == "failed" and "utf-8" in summary.files[0].problem
    (input_dir / "formats.yaml").write_text('stroke: {encoding: cp1252, delimiter: ";"}\n')
    summary = ingest_directory(input_dir, tmp_path / "w2.duckdb", TEST_KEY)
    assert summary.files[0].rows_loaded == 1
