"""A hostile file loses no row: every data line is a row handed on or an unparseable row.

Lines are counted here with a plain split on LF, CRLF and CR (the reader's own rule,
written independently); a line that is empty or only whitespace is not a row. Values
that are not CPR-shaped stand in for CPR numbers wherever a failure could print them.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.cpr import CPR_LIKE
from pipelines.extract_reader import ROW_NUMBER, iter_extract_batches, read_extract
from pipelines.sources import UnreadableExtract
from schemas import EXTRACT_SCHEMAS
from tests.builders import TEST_KEY, cpr_for, new_input, stroke_row, write_extract

STROKE = EXTRACT_SCHEMAS["stroke"]
BOM = b"\xef\xbb\xbf"
LINE_ENDS = ("\n", "\r\n", "\r")


def physical_lines(text: str) -> list[str]:
    """The file's lines after the header, as a person counts them (LF, CRLF or CR end one)."""
    lines = re.split(r"\r\n|\r|\n", text)
    if re.search(r"[\r\n]$", text):
        lines.pop()  # the last line end closes the last line; it does not open another
    return lines[1:]


def is_blank(line: str) -> bool:
    return line.strip(" \t") == ""


def values(i: int, danish: bool) -> dict[str, str | None]:
    """A contract row with unique text; 'cpr' is not CPR-shaped, the reader does not judge it."""
    row = stroke_row(record_id=f"R{i}" + ("æØå" if danish else ""), cpr=f"cpr-{i}")
    return {c: row.get(c) for c in STROKE.names}


def rendered(row: dict[str, str | None]) -> list[str]:
    return ["" if row[c] is None else row[c] for c in STROKE.names]


# What a line of each kind looks like, and whether the reader hands it on (with which values).
def make_line(kind: str, i: int, danish: bool, delimiter: str) -> tuple[str, dict | None]:
    row = values(i, danish)
    fields = rendered(row)
    at = STROKE.names.index("diagnosis")
    if kind == "good":
        return delimiter.join(fields), row
    if kind == "quoted_delimiter":  # a quoted field may hold the delimiter and a doubled quote
        row["record_id"] = f'R{i}{delimiter}x"y'
        fields[0] = f'"R{i}{delimiter}x""y"'
        fields[at] = '"DI63"'
        return delimiter.join(fields), row
    if kind == "literal_quote":  # a quote inside an unquoted field is text
        row["record_id"] = f'R{i}"x'
        fields[0] = row["record_id"]
        return delimiter.join(fields), row
    if kind == "unclosed_quote":
        fields[at] = '"DI63'
        return delimiter.join(fields), None
    if kind == "text_after_quote":
        fields[at] = '"DI"63'
        return delimiter.join(fields), None
    if kind == "extra_field":
        return delimiter.join(fields + ["x"]), None
    if kind == "missing_field":
        return delimiter.join(fields[:-1]), None
    raise AssertionError(kind)


KINDS = ("good", "quoted_delimiter", "literal_quote", "unclosed_quote", "text_after_quote",
         "extra_field", "missing_field", "blank")

file_layouts = st.fixed_dictionaries({
    "delimiter": st.sampled_from([";", ","]),
    "encoding": st.sampled_from(["utf-8", "cp1252"]),
    "bom": st.booleans(),
    "header_end": st.sampled_from(LINE_ENDS),
    "last_end": st.booleans(),  # whether the last line has a line end
})


def whole_and_batched(path, batch_bytes: int):
    """The file read whole, and the same file read in batches, joined."""
    whole = read_extract(path, STROKE)
    batches = list(iter_extract_batches(path, STROKE, batch_bytes=batch_bytes))
    assert all(b.rows_read == b.rows.height + b.unparseable.height for b in batches)
    joined = (pl.concat([b.rows for b in batches]), pl.concat([b.unparseable for b in batches]),
              sum(b.rows_read for b in batches))
    return whole, joined


def write(path, text: str, layout: dict) -> bytes:
    data = text.encode(layout["encoding"])
    if layout["bom"] and layout["encoding"] == "utf-8":
        data = BOM + data
    path.write_bytes(data)
    return data


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layout=file_layouts,
       lines=st.lists(st.tuples(st.sampled_from(KINDS), st.sampled_from(LINE_ENDS),
                                st.booleans(), st.sampled_from(["", "  ", "\t"])),
                      max_size=25),
       batch_fraction=st.floats(0.0, 1.0))
def test_every_line_is_a_row_or_unparseable_and_good_rows_are_unchanged(
        tmp_path_factory, layout, lines, batch_fraction):
    delimiter = layout["delimiter"]
    text = delimiter.join(STROKE.names) + layout["header_end"]
    made = []  # (kind, expected values) of every line written
    for i, (kind, end, danish, blank) in enumerate(lines):
        if kind == "blank":
            line, expected = blank, None
        else:
            line, expected = make_line(kind, i, danish, delimiter)
        last = i == len(lines) - 1
        text += line + ("" if last and not layout["last_end"] else end)
        made.append((kind, expected))
    path = tmp_path_factory.mktemp("hostile") / "stroke_2024-12-31.csv"
    data = write(path, text, layout)

    counted = physical_lines(text)
    rows = [(n, line) for n, line in enumerate(counted, start=2) if not is_blank(line)]
    written = [m for m in made if m[0] != "blank"]
    assert len(rows) == len(written)  # the test's own model of the file holds

    batch_bytes = max(1, int(batch_fraction * len(data)))
    whole, (rows_b, unparseable_b, read_b) = whole_and_batched(path, batch_bytes)
    assert whole.rows_read == len(rows) == read_b
    assert whole.rows.height + whole.unparseable.height == whole.rows_read
    assert whole.rows.equals(rows_b) and whole.unparseable.equals(unparseable_b)

    handed = {r[0]: r for r in whole.rows.iter_rows()}
    unparseable = {r[0]: r[1] for r in whole.unparseable.iter_rows()}
    for number, ((line_number, _), (kind, expected)) in enumerate(zip(rows, written), start=1):
        if expected is None:
            assert unparseable.get(number) == line_number, kind
        else:
            assert handed[number] == (number, *expected.values()), kind


FUZZ = ['"', '""', ";", ",", "\r", "\n", "\r\n", " ", "\t", "æ"]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layout=file_layouts, count=st.integers(0, 20),
       inserts=st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(FUZZ)), max_size=8),
       ends=st.lists(st.sampled_from(LINE_ENDS), min_size=20, max_size=20),
       batch_fraction=st.floats(0.0, 1.0))
def test_random_quotes_delimiters_and_line_ends_lose_no_row(
        tmp_path_factory, layout, count, inserts, ends, batch_fraction):
    delimiter = layout["delimiter"]
    lines = [delimiter.join(rendered(values(i, i % 3 == 0))) for i in range(count)]
    touched = set()
    for position, text in inserts:
        if not lines:
            break
        i = position % len(lines)
        at = (position // len(lines)) % (len(lines[i]) + 1)
        lines[i] = lines[i][:at] + text + lines[i][at:]
        touched.add(i)
    body = "".join(line + ends[i] for i, line in enumerate(lines))
    if lines and not layout["last_end"]:
        body = body[:-len(ends[len(lines) - 1])]
    text = delimiter.join(STROKE.names) + layout["header_end"] + body
    path = tmp_path_factory.mktemp("fuzz") / "stroke_2024-12-31.csv"
    data = write(path, text, layout)

    rows_in_file = sum(not is_blank(line) for line in physical_lines(text))
    whole, (rows_b, unparseable_b, read_b) = whole_and_batched(
        path, max(1, int(batch_fraction * len(data))))
    assert whole.rows_read == rows_in_file == read_b
    numbers = whole.rows["__row_number"].to_list() + whole.unparseable["row_number"].to_list()
    assert sorted(numbers) == list(range(1, rows_in_file + 1))
    assert whole.rows.equals(rows_b) and whole.unparseable.equals(unparseable_b)
    for i in set(range(count)) - touched:
        expected = values(i, i % 3 == 0)
        found = whole.rows.filter(pl.col("record_id") == expected["record_id"])
        assert found.height == 1, i
        assert found.drop("__row_number").row(0) == tuple(expected.values()), i


field_text = st.text(alphabet=["a", "Z", "æ", " ", ";", ",", '"'], max_size=6)


@st.composite
def csv_field(draw, delimiter: str) -> str:
    """A field as a file might hold it: raw, or quoted with its quotes doubled."""
    text = draw(field_text)
    if draw(st.booleans()):
        return '"' + text.replace('"', '""') + '"'
    return text


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), delimiter=st.sampled_from([";", ","]), count=st.integers(1, 12))
def test_a_line_reads_as_pythons_csv_module_reads_it_alone_or_is_unparseable(
        tmp_path_factory, data, delimiter, count):
    """Differential: the csv module (strict) on the line by itself is the reference."""
    import csv

    width = len(STROKE.names)
    lines = []
    for _ in range(count):
        fields = data.draw(st.lists(csv_field(delimiter), min_size=width - 1, max_size=width + 1))
        lines.append(delimiter.join(fields))
    path = tmp_path_factory.mktemp("csv") / "stroke_2024-12-31.csv"
    path.write_text(delimiter.join(STROKE.names) + "\n" + "\n".join(lines) + "\n")
    extract = read_extract(path, STROKE)

    rows = [line for line in lines if line.strip(" ")]
    assert extract.rows_read == len(rows)
    handed = {r[0]: r[1:] for r in extract.rows.iter_rows()}
    unparseable = set(extract.unparseable["row_number"])
    for number, line in enumerate(rows, start=1):
        try:
            record = next(csv.reader([line], delimiter=delimiter, strict=True))
        except csv.Error:
            record = None
        if record is None or len(record) != width:
            assert number in unparseable, number
        else:
            assert handed[number] == tuple(v.strip(" ") or None for v in record), number


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(count=st.integers(1, 15),
       inserts=st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(FUZZ)), max_size=5),
       end=st.sampled_from(LINE_ENDS))
def test_through_ingest_rows_read_are_loaded_or_quarantined(tmp_path_factory, count, inserts,
                                                             end):
    from pipelines.ingest import ingest_directory

    folder = new_input(tmp_path_factory.mktemp("in"))
    rows = [stroke_row(record_id=f"R{i}") for i in range(count)]
    path = write_extract(folder, "stroke", "2024-12-31", rows)
    header, *lines = path.read_text().splitlines()
    for position, text in inserts:
        i = position % len(lines)
        at = (position // len(lines)) % (len(lines[i]) + 1)
        lines[i] = lines[i][:at] + text + lines[i][at:]
    text = header + end + end.join(lines) + end
    path.write_text(text, newline="")
    expected = read_extract(path, STROKE)

    outcome = ingest_directory(folder, folder / "w.duckdb", TEST_KEY).files[0]
    in_file = sum(not is_blank(line) for line in physical_lines(text))
    assert outcome.rows_read == in_file
    assert outcome.rows_read == outcome.rows_loaded + outcome.rows_quarantined
    assert outcome.rules.get("unparseable_row", 0) == expected.unparseable.height
    with duckdb.connect(str(folder / "w.duckdb"), read_only=True) as con:
        values_shown = [v for (v,) in con.sql(
            "SELECT value FROM quarantine WHERE rule = 'unparseable_row'").fetchall()]
    assert all(re.fullmatch(r"line \d+: [a-z0-9 ,()]+", v) for v in values_shown)


def test_a_stray_quote_quarantines_its_own_line_and_nothing_else(input_dir, tmp_path):
    """The tester's file: 200 rows, '"DI63' in row 5; 199 load, row 5 is quarantined."""
    from pipelines.ingest import ingest_directory

    rows = [stroke_row(record_id=f"S{i}") for i in range(1, 201)]
    path = write_extract(input_dir, "stroke", "2024-12-31", rows)
    lines = path.read_text().split("\n")
    lines[5] = lines[5].replace(";DI63;", ';"DI63;')
    path.write_text("\n".join(lines))
    outcome = ingest_directory(input_dir, tmp_path / "w.duckdb", TEST_KEY).files[0]
    assert (outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined) == (200, 199, 1)
    assert outcome.rules == {"unparseable_row": 1}
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        shown = con.sql("SELECT row_number, rule, value FROM quarantine").fetchall()
        loaded = con.sql("SELECT count(*), count(DISTINCT record_id) FROM stroke_history"
                         ).fetchall()[0]
    assert shown == [(5, "unparseable_row", "line 6: a quote that does not close within the line")]
    assert loaded == (199, 199)


def test_a_quoted_field_far_longer_than_the_csv_module_allows_is_no_crash(tmp_path):
    """Lines up to the line limit read (the csv module alone stops at 128 KiB)."""
    header = ";".join(STROKE.names)
    row = rendered(values(1, False))
    row[0] = '"' + "x;" * 100_000 + '"'
    path = tmp_path / "stroke_2024-12-31.csv"
    path.write_text(header + "\n" + ";".join(row) + "\n" + '"' + "y" * 300_000 + "\n")
    extract = read_extract(path, STROKE)
    assert extract.rows["record_id"].to_list() == ["x;" * 100_000]
    assert extract.unparseable.rows() == [(2, 3, "a quote that does not close within the line")]


@pytest.mark.parametrize("batch_bytes", [None, 4096])
def test_a_line_longer_than_the_limit_is_one_unparseable_row(tmp_path, batch_bytes):
    header = ";".join(STROKE.names)
    good = [";".join(rendered(values(i, False))) for i in range(3)]
    path = tmp_path / "stroke_2024-12-31.csv"
    path.write_text(header + "\r\n" + good[0] + "\r\n" + "z" * (3 << 20) + "\r\n"
                    + good[1] + "\r\n" + "\r\n".join([good[2]]), newline="")
    batches = list(iter_extract_batches(path, STROKE, batch_bytes=batch_bytes or 1 << 30))
    rows = pl.concat([b.rows for b in batches])
    unparseable = pl.concat([b.unparseable for b in batches])
    assert sum(b.rows_read for b in batches) == 4
    assert unparseable.rows() == [(2, 3, "longer than 1,048,576 bytes")]
    assert rows["record_id"].to_list() == ["R0", "R1", "R2"]
    assert rows["__row_number"].to_list() == [1, 3, 4]


CPR_VALUES = [cpr_for(__import__("datetime").date(1950 + i, 5, 17), i) for i in range(6)]


@pytest.mark.parametrize("content", [
    # CR-only line ends: read as lines, not as one header full of data
    "\r".join([";".join(STROKE.names)] + [";".join(["S1", c] + [""] * 15) for c in CPR_VALUES]),
    # the same CPR-shaped names twice in the header
    ";".join(["record_id", *CPR_VALUES, *CPR_VALUES]) + "\n",
    # a header line whose quotes do not pair up
    ";".join(STROKE.names) + ';"' + CPR_VALUES[0] + "\n",
    # CPR-shaped names and no known column at all
    ",".join(CPR_VALUES) + "\n" + ",".join(CPR_VALUES) + "\n",
])
def test_messages_and_reports_never_quote_the_file(tmp_path, content):
    path = tmp_path / "stroke_2024-12-31.csv"
    path.write_text(content, newline="")
    try:
        extract = read_extract(path, STROKE)
    except UnreadableExtract as problem:
        said = str(problem)
    else:
        said = " ".join(extract.extra_columns) + " ".join(extract.unparseable["problem"])
        assert extract.rows_read == extract.rows.height + extract.unparseable.height
    leaked = re.search(CPR_LIKE, said) is not None
    assert not leaked, "a CPR-shaped value in a message or report of the reader"


def test_a_cr_only_file_reads_every_row(tmp_path):
    rows = [";".join(rendered(values(i, True))) for i in range(5)]
    path = tmp_path / "stroke_2024-12-31.csv"
    path.write_bytes(("\r".join([";".join(STROKE.names), *rows]) + "\r").encode("cp1252"))
    extract = read_extract(path, STROKE)
    assert (extract.rows_read, extract.unparseable.height) == (5, 0)
    assert extract.rows["record_id"].to_list() == [f"R{i}æØå" for i in range(5)]


def test_when_the_native_reader_disagrees_the_lines_are_split_by_hand(tmp_path, monkeypatch):
    """The fallback used if Polars' reader ever saw more or fewer records than lines."""
    import pipelines.extract_reader as reader

    kinds = ["good", "quoted_delimiter", "literal_quote", "unclosed_quote", "good",
             "extra_field", "text_after_quote", "missing_field", "good"]
    lines = [make_line(kind, i, i % 2 == 0, ";")[0] for i, kind in enumerate(kinds)]
    path = tmp_path / "stroke_2024-12-31.csv"
    path.write_text(";".join(STROKE.names) + "\n" + "\n\n".join(lines) + "\n")
    expected = read_extract(path, STROKE)
    assert (expected.rows.height, expected.unparseable.height) == (5, 4)
    monkeypatch.setattr(reader, "_native", lambda *args, **kwargs: None)
    by_hand = read_extract(path, STROKE)
    assert by_hand.rows.equals(expected.rows)
    assert by_hand.unparseable.equals(expected.unparseable)


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lengths=st.lists(st.sampled_from([0, 2**20 - 1, 2**20, 2**20 + 1, 2**21 + 7]),
                        min_size=1, max_size=3),
       end=st.sampled_from(LINE_ENDS), batch_bytes=st.integers(1024, 3 * 2**20))
def test_long_lines_in_batches_are_the_file_read_whole(tmp_path_factory, lengths, end,
                                                       batch_bytes):
    """Lines around the 1 MiB limit, wherever a batch boundary falls: the same rows."""
    good = ";".join(rendered(values(0, False)))
    lines = [good[:1] + "x" * max(0, n - len(good)) + good[1:] if n else good for n in lengths]
    path = tmp_path_factory.mktemp("long") / "stroke_2024-12-31.csv"
    path.write_text(";".join(STROKE.names) + end + end.join(lines + [good]) + end, newline="")
    whole, (rows, unparseable, read) = whole_and_batched(path, batch_bytes)
    assert whole.rows_read == read == len(lines) + 1
    assert whole.rows.equals(rows) and whole.unparseable.equals(unparseable)
    too_long = [i + 1 for i, line in enumerate(lines) if len(line.encode()) > 2**20]
    assert whole.unparseable["row_number"].to_list() == too_long


# Unicode's White_Space property (PropList.txt), written out here: Python's str.strip() and
# re's \s take U+001C-U+001F as well, so neither can be the oracle. CR and LF end lines.
WHITE_SPACE = "\t\x0b\x0c \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + \
    "\u2028\u2029\u202f\u205f\u3000"
NOT_WHITE_SPACE = "\x1c\x1f\u200b\ufeffx"  # look blank or are stripped by some, not by the rule


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(padded=st.lists(st.tuples(st.text(WHITE_SPACE + NOT_WHITE_SPACE, max_size=3),
                                 st.text("abc" + WHITE_SPACE, max_size=3),
                                 st.text(WHITE_SPACE + NOT_WHITE_SPACE, max_size=3)),
                       min_size=1, max_size=20))
def test_values_lose_exactly_their_surrounding_white_space(tmp_path_factory, padded):
    """Every value is stripped of Unicode White_Space at both ends and nothing else; a value
    of only white space is empty. Checked on a column where some values need it and others
    not, whatever the mix (the reader rewrites a column only when one of its values needs it)."""
    names = STROKE.names
    lines = []
    for i, (before, middle, after) in enumerate(padded):
        row = rendered(values(i, danish=False))
        row[names.index("diagnosis")] = before + middle + after
        lines.append(";".join(row))
    path = tmp_path_factory.mktemp("ws") / "stroke_2024-12-31.csv"
    path.write_bytes((";".join(names) + "\n" + "\n".join(lines) + "\n").encode("utf-8"))
    extract = read_extract(path, STROKE)

    assert extract.unparseable.is_empty()
    expected = [(b + m + a).strip(WHITE_SPACE) or None for b, m, a in padded]
    assert extract.rows.sort(ROW_NUMBER)["diagnosis"].to_list() == expected


PIECES = [b"record_id;cpr\n", b"abc;", b"\r\n", "æøå€".encode("utf-8"), "Ø".encode("cp1252"),
          b"\x81", b"\xc3", b"\xa6", b"\x00"]


@settings(max_examples=400, deadline=None)
@given(pieces=st.lists(st.sampled_from(PIECES), max_size=12), data=st.data())
def test_the_encoding_judged_in_blocks_is_the_encoding_of_the_whole(pieces, data):
    """Differential: the file's bytes decoded whole by Python are the reference, however the
    file is cut into blocks (between pieces, or inside a character) and whichever blocks are
    plain ASCII."""
    from pipelines.extract_reader import FileFormat, _encoding

    ends = [sum(map(len, pieces[:i + 1])) for i in range(len(pieces))]
    cuts = data.draw(st.lists(st.sampled_from(ends) if ends else st.just(0), max_size=6))
    cuts += data.draw(st.lists(st.integers(0, max(ends, default=0)), max_size=2))
    data = b"".join(pieces)
    bounds = sorted({0, len(data), *cuts})
    blocks = [data[a:b] for a, b in zip(bounds, bounds[1:])]

    def whole() -> str | None:
        if b"\x00" in data:
            return None
        for encoding in ("utf-8", "cp1252"):
            try:
                data.decode(encoding)
                return encoding
            except UnicodeDecodeError:
                pass
        return None

    try:
        found = _encoding(Path("stroke_2024-01-31.csv"), lambda: iter(blocks), FileFormat())
    except UnreadableExtract:
        found = None
    assert found == whole()


def test_an_ascii_block_after_half_a_character_is_still_decoded():
    """A UTF-8 lead byte ends a block, ASCII follows in the next: the whole is not UTF-8 even
    though a continuation byte comes later (a reader that skipped ASCII blocks, to save their
    decoding, would pair the two up: tried, 0.15 CPU s at 10M rows, not kept)."""
    from pipelines.extract_reader import FileFormat, _encoding

    blocks = [b"record_id\n\xc3", b"abc;", b"\xa6\n"]
    with pytest.raises(UnicodeDecodeError):
        b"".join(blocks).decode("utf-8")
    assert _encoding(Path("stroke_2024-01-31.csv"), lambda: iter(blocks), FileFormat()) == "cp1252"
