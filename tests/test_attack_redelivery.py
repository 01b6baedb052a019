"""Attack: re-deliveries in any order must leave the spec's current rows ("the record from the
latest extract wins"), whatever the order and grouping in which the extracts arrive.

Current rows are kept at ingest (sql/records/store.sql) and unchanged re-deliveries are not
stored again, so the current view depends on the load history unless that bookkeeping is
right. These tests compare it with the rule worked out by hand, and with one fresh load of the
same final input folder.
"""

from __future__ import annotations

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.ingest import ingest_directory
from tests.builders import TEST_KEY, new_input, stroke_row, write_extract

DATES = ["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30", "2024-05-31"]
RECORDS = ["R0", "R1", "R2"]
# A record in an extract: absent, a valid version (its thrombolysis answer), or a version that
# breaks a rule (quarantined: the version already current stays).
VERSIONS = st.sampled_from([None, "ja", "nej", "uoplyst", "broken"])


def current_answers(path) -> dict[str, str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return dict(con.sql("SELECT record_id, thrombolysis FROM stroke").fetchall())


def write(folder, date: str, versions: dict[str, str | None], name: str | None = None) -> None:
    rows = [stroke_row(record_id=rid, thrombolysis=v if v != "broken" else "ja",
                       admission_at="2024-01-10 10:00",
                       sex="X" if v == "broken" else "M")
            for rid, v in versions.items() if v is not None]
    write_extract(folder, "stroke", date, rows, name=name)


def latest_valid(extracts: dict[str, dict[str, str | None]]) -> dict[str, str]:
    """The rule by hand: per record, the valid version of the latest extract date holding one."""
    want = {}
    for date in sorted(extracts):
        for rid, v in extracts[date].items():
            if v is not None and v != "broken":
                want[rid] = v
    return want


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(contents=st.lists(st.fixed_dictionaries({r: VERSIONS for r in RECORDS}),
                         min_size=len(DATES), max_size=len(DATES)),
       arrival=st.permutations(range(len(DATES))),
       cuts=st.sets(st.integers(1, len(DATES) - 1), max_size=3))
def test_current_rows_follow_the_latest_extract_whatever_the_arrival(tmp_path_factory, contents,
                                                                     arrival, cuts):
    """A → B → A, corrections back and forth, older extracts arriving after newer ones, runs
    of one or several extracts: the current rows are the latest valid version by extract date,
    and equal one fresh load of the final folder."""
    base = tmp_path_factory.mktemp("redelivery")
    folder = new_input(base / "input")
    extracts = {DATES[i]: contents[i] for i in range(len(DATES))}
    bounds = [0, *sorted(cuts), len(DATES)]
    for start, end in zip(bounds, bounds[1:]):  # each run adds the extracts that arrived since
        for i in arrival[start:end]:
            write(folder, DATES[i], extracts[DATES[i]])
        ingest_directory(folder, base / "incremental.duckdb", TEST_KEY)
    ingest_directory(folder, base / "fresh.duckdb", TEST_KEY)
    want = latest_valid(extracts)
    assert current_answers(base / "incremental.duckdb") == want
    assert current_answers(base / "fresh.duckdb") == want


def test_the_same_extract_under_another_name_changes_nothing(input_dir, tmp_path):
    write(input_dir, "2024-03-31", {"R0": "ja", "R1": "nej"})
    ingest_directory(input_dir, tmp_path / "w.duckdb", TEST_KEY)
    copy = input_dir / "stroke" / "stroke_copy_2024-03-31.csv"
    copy.write_bytes((input_dir / "stroke" / "stroke_2024-03-31.csv").read_bytes())
    summary = ingest_directory(input_dir, tmp_path / "w.duckdb", TEST_KEY)
    assert [f.status for f in summary.files] == ["already_loaded", "already_loaded"]
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM stroke_history").fetchall() == [(2,)]


def test_same_date_extracts_give_the_same_current_rows_fresh_and_incremental(input_dir, tmp_path):
    """Two extracts of one date: the later file name wins, whichever was loaded first."""
    write(input_dir, "2024-03-31", {"R0": "ja"}, name="stroke_b_2024-03-31.csv")
    ingest_directory(input_dir, tmp_path / "incremental.duckdb", TEST_KEY)
    write(input_dir, "2024-03-31", {"R0": "nej"}, name="stroke_a_2024-03-31.csv")
    ingest_directory(input_dir, tmp_path / "incremental.duckdb", TEST_KEY)
    ingest_directory(input_dir, tmp_path / "fresh.duckdb", TEST_KEY)
    assert current_answers(tmp_path / "fresh.duckdb") == {"R0": "ja"}  # later name, as the oracle
    assert current_answers(tmp_path / "incremental.duckdb") == current_answers(
        tmp_path / "fresh.duckdb")


def test_a_retraction_rebuilds_current_rows_with_the_same_tie_rule(input_dir, tmp_path,
                                                                   monkeypatch):
    """After a retraction the current rows are rebuilt from history: for one extract date the
    later file name wins there too, whichever file was loaded first."""
    monkeypatch.setenv("KVALITET_PSEUDONYM_KEY", TEST_KEY.decode())
    warehouse = tmp_path / "w.duckdb"
    write(input_dir, "2024-03-31", {"R0": "ja"}, name="stroke_b_2024-03-31.csv")
    ingest_directory(input_dir, warehouse, TEST_KEY)
    write(input_dir, "2024-03-31", {"R0": "nej"}, name="stroke_a_2024-03-31.csv")
    write(input_dir, "2024-04-30", {"R0": "uoplyst"}, name="stroke_c_2024-04-30.csv")
    ingest_directory(input_dir, warehouse, TEST_KEY)
    assert current_answers(warehouse) == {"R0": "uoplyst"}
    done = CliRunner().invoke(app, ["extract", "retract", "stroke_c_2024-04-30.csv",
                                    "--warehouse", str(warehouse), "--by", "test"])
    assert done.exit_code == 0, done.output
    assert current_answers(warehouse) == {"R0": "ja"}  # stroke_b, the later name


# -- a later reference table that no longer lists a unit already loaded records name ---------

def _two_runs_with_a_hospital_dropped(input_dir, tmp_path, monkeypatch, moved=False):
    """Records at H401 and H201 loaded; then H401 left out of hospitals.csv (``moved``: a later
    extract first moves every H401 record to H201, so only history still names H401)."""
    monkeypatch.setenv("KVALITET_PSEUDONYM_KEY", TEST_KEY.decode())
    monkeypatch.setenv("KVALITET_WAREHOUSE", "")
    write_extract(input_dir, "stroke", "2024-06-30",
                  [stroke_row(record_id=f"S{i}", hospital_code="H401" if i % 2 else "H201")
                   for i in range(6)])
    out = tmp_path / "out"
    args = ["run", "--input", str(input_dir), "--output", str(out)]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output[-2000:]
    if moved:
        write_extract(input_dir, "stroke", "2024-07-31",
                      [stroke_row(record_id=f"S{i}", hospital_code="H201") for i in range(6)])
    hospitals = input_dir / "reference" / "hospitals.csv"
    lines = hospitals.read_text(encoding="utf-8").splitlines()
    hospitals.write_text("\n".join(line for line in lines if not line.startswith("H401,")) + "\n",
                         encoding="utf-8")
    second = CliRunner().invoke(app, args)
    return out, second


def test_a_reference_without_a_loaded_unit_stops_the_run_with_a_clear_message(
        input_dir, tmp_path, monkeypatch):
    """Records loaded earlier name hospital H401; the new hospitals.csv does not list it. The
    run stops naming the registry, column and table (not DuckDB's NOT NULL constraint), and the results
    published before stay as they were (no row without a unit)."""
    out, second = _two_runs_with_a_hospital_dropped(input_dir, tmp_path, monkeypatch)
    assert second.exit_code == 1
    assert "Constraint Error" not in second.output
    assert "no longer list" in second.output and "stroke.hospital_code: 1 code(s) not in hospitals" in second.output
    results = pl.read_parquet(out / "indicator_results.parquet")
    assert results.height and results.filter(pl.col("unit_code").is_null()).is_empty()


def test_a_unit_only_earlier_versions_name_may_leave_the_reference(input_dir, tmp_path,
                                                                   monkeypatch):
    """Only current records must be placed: H401 named by superseded versions alone is no
    reason to stop."""
    out, second = _two_runs_with_a_hospital_dropped(input_dir, tmp_path, monkeypatch, moved=True)
    assert second.exit_code == 0, second.output[-2000:]
    results = pl.read_parquet(out / "indicator_results.parquet")
    assert "H401" not in set(results["unit_code"]) and "H201" in set(results["unit_code"])


def test_a_failed_results_write_leaves_the_parquet_and_the_warehouse_alike(tmp_path):
    """The Parquet file is renamed into place only after the warehouse committed."""
    from pipelines import warehouse
    from pipelines.engine import RESULT_SCHEMA
    from pipelines.results import write_results

    def rows(unit_code, numerator):
        given = {"indicator_id": ["STROKE_01"], "period_type": ["year"], "period": ["2024"],
                 "level": ["region"], "unit_code": [unit_code], "unit_name": ["Hovedstaden"],
                 "numerator": [numerator], "denominator": [5], "missing": [0]}
        return pl.DataFrame(given).select(
            [pl.col(c).cast(t) if c in given else pl.lit(None, t).alias(c)
             for c, t in RESULT_SCHEMA.items()])

    path = tmp_path / "w.duckdb"
    with warehouse.connect(path) as con:
        write_results(con, rows("1084", 3), tmp_path)
        with pytest.raises(duckdb.Error):  # unit_code is NOT NULL in the warehouse table
            write_results(con, rows(None, 4), tmp_path)
        table = pl.from_arrow(con.sql("SELECT numerator FROM indicator_results").to_arrow_table())
    parquet = pl.read_parquet(tmp_path / "indicator_results.parquet")
    assert table["numerator"].to_list() == [3]
    assert parquet["numerator"].to_list() == table["numerator"].to_list()
