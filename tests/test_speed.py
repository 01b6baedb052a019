"""The speed work keeps results as they were: each shortcut is checked against the long way."""

from __future__ import annotations

import hashlib

import polars as pl
from hypothesis import given, settings, strategies as st

from pipelines.extract_reader import content_hash, known_hash

KEY = b"speed-test-key-0123456789"


def test_known_hash_reuses_ingests_hash_and_sees_a_changed_file(tmp_path, monkeypatch):
    path = tmp_path / "stroke_2025-01-31.csv"
    path.write_bytes(b"a;b\n1;2\n")
    first = content_hash(path)
    opened = []
    real_open = type(path).open

    def counting_open(self, *args, **kwargs):
        opened.append(self.name)
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(type(path), "open", counting_open)
    assert known_hash(path) == first and opened == []  # the manifest does not read it again
    path.write_bytes(b"a;b\n1;2\n3;4\n")
    assert known_hash(path) == hashlib.sha256(path.read_bytes()).hexdigest() != first


# -- validation: every check in one pass gives Pandera's own failures ---------------------
import datetime as dt  # noqa: E402

from pipelines.extract_reader import ROW_NUMBER  # noqa: E402
from pipelines.validation import check_failures, pandera_failures  # noqa: E402
from schemas import EXTRACT_SCHEMAS  # noqa: E402
from schemas.columns import ValidationContext  # noqa: E402
from tests.builders import cpr_for  # noqa: E402

CONTEXT = ValidationContext(dt.date(2025, 12, 31), frozenset({"H401", "H402"}),
                            frozenset({101, 147}))
GOOD_CPR = cpr_for(dt.date(1950, 3, 4))
TEXTS = st.sampled_from([
    None, "", " ", "x", "ja", "NEJ", "uoplyst", "M", "f", "H401", "h402", "H999", "101", "147",
    "999", "1O1", "-3", "58", "59", "2.5", "DI63", "DI62", "2025-03-01", "2025-02-30",
    "2026-01-05", "2025-03-01 10:00", "2025-03-01T09:59:59", "2025-02-28 24:00",
    "2024-12-31 23:00", GOOD_CPR, GOOD_CPR[:6] + "-" + GOOD_CPR[6:], "3102801234", "12345",
    "S-1", "S-1", "S-2"])


@settings(max_examples=40, deadline=None)
@given(source=st.sampled_from(sorted(EXTRACT_SCHEMAS)), data=st.data())
def test_one_pass_checks_equal_pandera(source, data):
    schema = EXTRACT_SCHEMAS[source]
    height = data.draw(st.integers(0, 12))
    rows = pl.DataFrame({ROW_NUMBER: list(range(1, height + 1)),
                         **{c: data.draw(st.lists(TEXTS, min_size=height, max_size=height))
                            for c in schema.names}},
                        schema={ROW_NUMBER: pl.Int64, **{c: pl.String for c in schema.names}})
    typed = schema.typed(rows).with_columns(rows[ROW_NUMBER])
    contract = schema.pandera(CONTEXT)
    expected = pandera_failures(typed, contract, "f.csv")
    got = check_failures(typed, contract, "f.csv")
    assert got.to_dicts() == expected.to_dicts()


# -- orchestration: Prefect when a server is configured, else direct -----------------------
import pytest  # noqa: E402

from pipelines.cli import orchestration  # noqa: E402


@pytest.mark.parametrize("told, url, profile_url, expected", [
    ("direct", "http://x/api", None, "direct"), ("prefect", None, None, "prefect"),
    (None, None, None, "direct"), ("auto", "http://x/api", None, "prefect"),
    (None, None, "http://y/api", "prefect"), ("", "", None, "direct"),
])
def test_orchestration_follows_a_configured_server(monkeypatch, tmp_path, told, url,
                                                   profile_url, expected):
    for name, value in (("KVALITET_ORCHESTRATION", told), ("PREFECT_API_URL", url)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("PREFECT_PROFILE", raising=False)
    monkeypatch.delenv("PREFECT_PROFILES_PATH", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    if profile_url:
        (tmp_path / "profiles.toml").write_text(
            f'active = "local"\n[profiles.local]\nPREFECT_API_URL = "{profile_url}"\n')
    assert orchestration() == expected


# -- current rows kept at ingest: the latest delivered extract wins, as the anti-join had it ---
from pipelines import warehouse as wh  # noqa: E402

DATES = [dt.date(2024, m, 28) for m in (1, 2, 3, 4)]
LOADS = st.lists(st.tuples(
    st.sampled_from(DATES),
    st.dictionaries(st.sampled_from("ABCDE"), st.sampled_from(["M", "F"]), max_size=5),
    st.booleans()), min_size=1, max_size=6)


def _history_rows(con, file_id: int, day: dt.date, records: dict[str, str]) -> pl.DataFrame:
    """History-shaped rows of one extract: every column typed as the table has it."""
    empty = con.sql("SELECT * FROM stroke_history LIMIT 0").pl()
    n = len(records)
    values = {"file_id": [file_id] * n, "row_number": list(range(1, n + 1)),
              "extract_date": [day] * n, "record_id": list(records), "sex": list(records.values()),
              "pseudonym": ["p" * 64] * n, "age": [70] * n, "municipality_code": [101] * n,
              "hospital_code": ["H401"] * n, "admission_at": [dt.datetime(2024, 1, 5, 10)] * n,
              "diagnosis": ["DI63"] * n, "thrombolysis": ["nej"] * n}
    return pl.DataFrame({c: values.get(c, [None] * n) for c in empty.columns},
                        schema=empty.schema)


@settings(max_examples=40, deadline=None)
@given(loads=LOADS)
def test_current_rows_equal_the_latest_delivered_extract(tmp_path_factory, loads):
    path = tmp_path_factory.mktemp("w") / "w.duckdb"
    deliveries = []  # (date, file_id, record, sex) of every row delivered
    retracted = set()
    with wh.connect(path) as con:
        for file_id, (day, records, retract) in enumerate(loads, start=1):
            con.execute("BEGIN TRANSACTION")
            con.execute("INSERT INTO extract_files (file_id, source, file_name, extract_date, "
                        "content_hash, rows_read, rows_loaded, rows_quarantined, loaded_at) "
                        "VALUES (?, 'stroke', ?, ?, ?, 0, 0, 0, now()::TIMESTAMP)",
                        [file_id, f"f{file_id:03d}", day, str(file_id)])
            if records:
                wh.store_rows(con, "stroke", _history_rows(con, file_id, day, records), file_id,
                              day, f"f{file_id:03d}")
            con.execute("COMMIT")
            deliveries += [(day, file_id, r, sex) for r, sex in records.items()]
            if retract:  # as `kvalitet extract retract` does
                con.execute("UPDATE extract_files SET retracted_at = now()::TIMESTAMP "
                            "WHERE file_id = ?", [file_id])
                wh.refresh_current(con, "stroke")
                retracted.add(file_id)
        got = sorted(con.sql("SELECT record_id, sex, extract_date FROM stroke").fetchall())
        stored = con.sql("SELECT count(*) FROM stroke_history").fetchall()[0][0]
    latest = {}
    for day, file_id, record, sex in sorted(deliveries):
        if file_id not in retracted:
            latest[record] = (record, sex, day)
    assert got == sorted(latest.values())
    assert stored <= len(deliveries)


def test_an_unchanged_redelivery_is_not_stored_again(tmp_path):
    with wh.connect(tmp_path / "w.duckdb") as con:
        for file_id, (day, records) in enumerate(
                [(DATES[0], {"A": "M", "B": "F"}), (DATES[1], {"A": "M", "B": "M"}),
                 (DATES[2], {"A": "M", "B": "M"})], start=1):
            wh.refresh_current(con, "stroke")  # its fingerprints match what ingest computes
            con.execute("INSERT INTO extract_files (file_id, source, file_name, extract_date, "
                        "content_hash, rows_read, rows_loaded, rows_quarantined, loaded_at) "
                        "VALUES (?, 'stroke', ?, ?, ?, 0, 0, 0, now()::TIMESTAMP)",
                        [file_id, f"f{file_id}", day, str(file_id)])
            wh.store_rows(con, "stroke", _history_rows(con, file_id, day, records), file_id, day,
                          f"f{file_id}")
        history = con.sql("SELECT record_id, sex, file_id FROM stroke_history ORDER BY ALL"
                          ).fetchall()
        again = con.sql("SELECT file_id, version_file_id FROM stroke_redelivered").fetchall()
        now = con.sql("SELECT record_id, sex, extract_date FROM stroke ORDER BY 1").fetchall()
    assert history == [("A", "M", 1), ("B", "F", 1), ("B", "M", 2)]
    assert sorted(again) == [(2, 1), (3, 1), (3, 2)]
    assert now == [("A", "M", DATES[2]), ("B", "M", DATES[2])]


def test_a_connection_reapplies_the_sql_only_when_it_changed(tmp_path, monkeypatch):
    applied = []
    real = wh.apply_sql
    monkeypatch.setattr(wh, "apply_sql", lambda con, folder: (applied.append(folder),
                                                              real(con, folder)))
    path = tmp_path / "w.duckdb"
    with wh.connect(path):
        pass
    assert applied == ["warehouse", "current", "results"]
    with wh.connect(path):
        pass
    assert len(applied) == 3  # the same SQL: nothing to re-create
    monkeypatch.setattr(wh, "sql_fingerprint", lambda: "changed")
    with wh.connect(path) as con:
        assert con.sql("SELECT count(*) FROM stroke").fetchall() == [(0,)]
    assert len(applied) == 6
