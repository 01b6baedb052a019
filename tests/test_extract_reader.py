"""Reading a file: encodings, delimiters, headers, Parquet; failures are loud and named."""

import polars as pl
import pytest

from pipelines.extract_reader import FileFormat, read_extract
from pipelines.sources import UnreadableExtract
from schemas import EXTRACT_SCHEMAS
from tests.builders import cpr_for, new_input, stroke_row, write_extract

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


# -- Parquet: extra columns of any type, unusable types, time zones, large numbers ---------
def stroke_parquet(path, **columns):
    import datetime as dt

    frame = {
        "record_id": ["S1", "S2"], "cpr": ["cpr-1", "cpr-2"], "sex": ["M", "F"],
        "municipality_code": [101, 101], "hospital_code": ["H401", "H401"],
        "admission_at": [dt.datetime(2024, 3, 10, 10, 0)] * 2, "diagnosis": ["DI63", "DI61"],
    }
    frame.update(columns)
    pl.DataFrame(frame).write_parquet(path)
    return path


def test_parquet_extra_list_and_struct_columns_are_ignored_and_reported(tmp_path):
    path = stroke_parquet(tmp_path / "stroke_2024-12-31.parquet", notes=[[1, 2], []],
                          Visit=[{"a": 1}, {"a": 2}])
    extract = read_extract(path, STROKE)
    assert extract.extra_columns == ["notes", "visit"]
    assert extract.rows["record_id"].to_list() == ["S1", "S2"]
    assert extract.rows_read == 2 and extract.unparseable.height == 0


@pytest.mark.parametrize("value", [[[1], [2]], [{"a": 1}, {"a": 2}], [True, False],
                                   [b"x", b"y"]])
def test_parquet_contract_column_of_an_unusable_type_fails_the_file(tmp_path, value):
    path = stroke_parquet(tmp_path / "stroke_2024-12-31.parquet", admission_at=value)
    with pytest.raises(UnreadableExtract) as error:
        read_extract(path, STROKE)
    message = str(error.value)
    assert "stroke_2024-12-31.parquet" in message and "column admission_at" in message
    assert "\n" not in message


def test_parquet_zoned_timestamps_become_danish_local_time(tmp_path):
    import datetime as dt

    utc = pl.Series([dt.datetime(2025, 3, 31, 22, 30), dt.datetime(2025, 1, 15, 12, 0)]
                    ).dt.replace_time_zone("UTC")
    naive = [dt.datetime(2025, 3, 31, 22, 30), dt.datetime(2025, 1, 15, 12, 0)]
    path = stroke_parquet(tmp_path / "stroke_2025-12-31.parquet", admission_at=utc,
                          discharge_at=naive,
                          imaging_at=utc.dt.convert_time_zone("America/New_York"))
    rows = read_extract(path, STROKE).rows
    # summer time (UTC+2) began on 30 March 2025; January is UTC+1; naive values stay as they are
    assert rows["admission_at"].to_list() == ["2025-04-01 00:30:00", "2025-01-15 13:00:00"]
    assert rows["imaging_at"].to_list() == ["2025-04-01 00:30:00", "2025-01-15 13:00:00"]
    assert rows["discharge_at"].to_list() == ["2025-03-31 22:30:00", "2025-01-15 12:00:00"]


def test_parquet_numbers_too_large_for_their_column_are_quarantined_not_a_crash(tmp_path):
    import datetime as dt

    from pipelines.validation import validate
    from schemas.columns import ValidationContext

    path = stroke_parquet(tmp_path / "stroke_2024-12-31.parquet",
                          cpr=[cpr_for(dt.date(1950, 5, 17))] * 2,
                          municipality_code=[101, 2**40], sss_score=[1e30, 12.0],
                          prestroke_mrs=[2**63 - 1, 1])
    extract = read_extract(path, STROKE)
    assert extract.rows["sss_score"].to_list() == ["1e+30", "12"]
    context = ValidationContext(dt.date(2024, 12, 31), frozenset({"H401"}), frozenset({101}))
    checked = validate(extract, STROKE, context)
    assert checked.rows_quarantined == 2 and checked.valid.height == 0
    broken = set(checked.quarantine.select("row_number", "column_name", "rule").iter_rows())
    assert broken == {(1, "sss_score", "type_integer"), (1, "prestroke_mrs", "type_integer"),
                      (2, "municipality_code", "type_integer")}


def test_parquet_in_batches_is_the_file_read_whole(tmp_path):
    from pipelines.extract_reader import iter_extract_batches

    path = tmp_path / "stroke_2024-12-31.parquet"
    count = 1000
    stroke_parquet(path, record_id=[f"S{i}" for i in range(count)],
                   cpr=[f"c{i}" for i in range(count)], sex=["M"] * count,
                   municipality_code=list(range(count)), hospital_code=["H401"] * count,
                   admission_at=["2024-03-10 10:00"] * count, diagnosis=["DI63"] * count)
    batches = list(iter_extract_batches(path, STROKE, batch_bytes=2000))
    assert len(batches) > 1
    whole = read_extract(path, STROKE)
    assert pl.concat([b.rows for b in batches]).equals(whole.rows)
    assert whole.rows["__row_number"].to_list() == list(range(1, count + 1))


# -- bounded resources -----------------------------------------------------------------
def test_a_header_longer_than_the_limit_fails_without_reading_it_all(tmp_path):
    path = tmp_path / "stroke_2024-12-31.csv"
    path.write_text(";".join(STROKE.names + [f"c{i}" for i in range(40_000)]) + "\n")
    with pytest.raises(UnreadableExtract, match="header line is longer than 65,536 bytes"):
        read_extract(path, STROKE)


def test_more_columns_than_the_limit_fail_the_file(tmp_path):
    path = tmp_path / "stroke_2024-12-31.csv"
    path.write_text(";".join(STROKE.names + [f"c{i}" for i in range(1000)]) + "\n")
    with pytest.raises(UnreadableExtract, match="1,017 columns, more than the 1,000 allowed"):
        read_extract(path, STROKE)


def test_duplicate_column_names_are_counted_not_quoted(tmp_path):
    from pipelines.extract_reader import _header_names

    names = [f"x{i % 499}" for i in range(998)] + ["cpr", "CPR "]
    with pytest.raises(UnreadableExtract) as error:
        _header_names(tmp_path / "stroke_2024-12-31.csv", names, STROKE)
    # Only the contract's columns count (extra ones named twice are told apart, not fatal).
    assert str(error.value).endswith("appear more than once in the header: 1 duplicate(s) "
                                     "(among them cpr)")
    assert _header_names(tmp_path / "x.csv", names[:998], STROKE)[499] == "x0#2"
    # A copy's new name never takes one the header already has.
    assert _header_names(tmp_path / "x.csv", ["note", "note#2", "note", "", "", "#2"], STROKE
                         ) == ["note", "note#2", "note#3", "", "#3", "#2"]


def test_extra_column_names_shaped_like_a_cpr_number_are_hidden(tmp_path):
    path = tmp_path / "stroke_2024-12-31.csv"
    path.write_text(";".join(STROKE.names + ["x1705500123y"]) + "\n")
    assert read_extract(path, STROKE).extra_columns == ["x<cpr hidden>y"]


def test_a_file_too_large_for_the_memory_limit_is_refused_whole_but_read_in_batches(
        tmp_path, monkeypatch):
    from pipelines.extract_reader import WHOLE_FILE_MEMORY_FACTOR, iter_extract_batches

    path = write_extract(tmp_path, "stroke", "2024-12-31",
                         [stroke_row(record_id=f"S{i}") for i in range(50)])
    limit_gib = path.stat().st_size * WHOLE_FILE_MEMORY_FACTOR / 2 / 2**30
    monkeypatch.setenv("KVALITET_MEMORY_LIMIT_GB", f"{limit_gib:.12f}")
    with pytest.raises(UnreadableExtract,
                       match="too large to read whole.*KVALITET_MEMORY_LIMIT_GB"):
        read_extract(path, STROKE)
    batches = list(iter_extract_batches(path, STROKE, batch_bytes=1000))
    assert len(batches) > 1 and sum(b.rows_read for b in batches) == 50
    assert pl.concat([b.rows for b in batches])["record_id"].to_list() == [
        f"S{i}" for i in range(50)]


@pytest.mark.parametrize("setting, expected", [("", 8 * 2**30), ("0.5", 2**29), (" 16 ", 2**34),
                                               ("1.5", 3 * 2**29)])
def test_memory_limit_setting(monkeypatch, setting, expected):
    from pipelines.settings import memory_limit_bytes

    monkeypatch.setenv("KVALITET_MEMORY_LIMIT_GB", setting)
    assert memory_limit_bytes() == expected


def test_batches_fit_the_memory_limit_and_grow_with_it():
    from pipelines.extract_reader import (BATCH_ALLOWANCE_BYTES, BATCH_MEMORY_FACTOR,
                                          MAX_BATCH_BYTES, default_batch_bytes)

    limits = [2**28, 2**30, 1.2 * 2**30, 1.5 * 2**30, 2 * 2**30, 8 * 2**30, 64 * 2**30]
    sizes = [default_batch_bytes(int(limit)) for limit in limits]
    assert sizes == sorted(sizes) and sizes[0] == 1 << 20 and sizes[-1] == MAX_BATCH_BYTES
    for limit, size in zip(limits, sizes):
        if size > 1 << 20:  # the floor aside, a batch's way through ingest stays in the limit
            assert BATCH_ALLOWANCE_BYTES + BATCH_MEMORY_FACTOR * size <= limit


@pytest.mark.parametrize("setting", ["eight", "0", "-1", "nan", "inf"])
def test_a_memory_limit_that_is_not_a_positive_number_is_refused(monkeypatch, setting):
    from pipelines.settings import memory_limit_bytes

    monkeypatch.setenv("KVALITET_MEMORY_LIMIT_GB", setting)
    with pytest.raises(ValueError, match="KVALITET_MEMORY_LIMIT_GB must be a positive number"):
        memory_limit_bytes()


def test_an_encoding_that_is_not_ascii_compatible_is_refused(tmp_path):
    path = tmp_path / "stroke_2024-12-31.csv"
    path.write_bytes(";".join(STROKE.names).encode("utf-16"))
    with pytest.raises(UnreadableExtract, match="utf-16 is not supported"):
        read_extract(path, STROKE, FileFormat(encoding="utf-16"))


def test_a_header_with_quoted_names_is_read(tmp_path):
    path = tmp_path / "stroke_2024-12-31.csv"
    header = ";".join(f'"{n}"' for n in STROKE.names)
    row = ";".join(f'"{v}"' for v in ["S1", "c", "M", "101"] + [""] * 13)
    path.write_text(header + "\r\n" + row + "\r\n")
    extract = read_extract(path, STROKE)
    assert extract.delimiter == ";"
    assert extract.rows.select("record_id", "sex", "municipality_code", "death_date").row(0) == (
        "S1", "M", "101", None)
