"""Published artefacts: suppression everywhere, numbers equal to indicator_results,
every chart's data beside it, a unit's delivery holding only its own records."""

from __future__ import annotations

from html.parser import HTMLParser

import duckdb
import polars as pl
import pytest

from reports.excel import read_back
from reports.labels import percent

CHART_TABLES = ["caterpillar", "funnel_units", "funnel_limits", "run_chart_points",
                "run_chart_signals"]


def published_files(folder):
    return [p for p in folder.rglob("*") if p.is_file()]


class Tables(HTMLParser):
    """Rows of the HTML tables, as lists of cell texts, with their header row."""

    def __init__(self):
        super().__init__()
        self.tables, self._row, self._cell, self._in = [], None, None, False

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell, self._in = "", True

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None:
            self._row.append(self._cell.strip())
            self._in = False
        elif tag == "tr" and self._row is not None:
            self.tables[-1].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._in:
            self._cell += data


def small(value) -> bool:
    text = str(value).replace("\u00a0", "").strip()
    return text.isdigit() and 1 <= int(text) <= 4


def test_no_published_cell_shows_a_denominator_of_1_to_4(sample_reports):
    results = pl.read_parquet(sample_reports["output"] / "indicator_results.parquet")
    assert results.filter(pl.col("denominator").is_between(1, 4)).height > 100  # they exist
    checked = 0
    for path in published_files(sample_reports["annual"]):
        if path.suffix == ".parquet":
            frame = pl.read_parquet(path)
            if "denominator" in frame.columns and frame.schema["denominator"].is_numeric():
                assert not frame["denominator"].is_between(1, 4).any(), path.name
                checked += 1
        elif path.suffix == ".csv":
            frame = pl.read_csv(path, infer_schema=False)
            assert not frame["denominator"].map_elements(small, return_dtype=pl.Boolean).any()
            assert (frame["denominator"] == "<5").any()
            checked += 1
        elif path.suffix == ".xlsx":
            for title, rows in read_back(path).items():
                assert not any(small(r["denominator"]) for r in rows), title
                checked += 1
        elif path.suffix == ".html":
            parser = Tables()
            parser.feed(path.read_text(encoding="utf-8"))
            for table in parser.tables:
                header = table[0]
                if "Nævner" in header:
                    column = header.index("Nævner")
                    assert not any(small(r[column]) for r in table[1:] if len(r) > column)
                    checked += 1
    assert checked > 50


def test_every_chart_has_its_data_beside_it(sample_reports):
    for registry in ("stroke", "hipfracture", "cardiac_rehab"):
        folder = sample_reports["annual"] / registry
        for name in CHART_TABLES:
            assert (folder / f"{name}.parquet").exists(), (registry, name)
        assert (folder / "annual_report.html").stat().st_size > 4_000_000  # plotly inlined
    assert (sample_reports["annual"] / "stroke" / "oe_funnel_units.parquet").exists()


def test_report_numbers_equal_indicator_results(sample_reports):
    results = pl.read_parquet(sample_reports["output"] / "indicator_results.parquet").filter(
        pl.col("period") == "2025")
    folder = sample_reports["annual"] / "stroke"
    caterpillar = pl.read_parquet(folder / "caterpillar.parquet")
    joined = caterpillar.join(results, on=["indicator_id", "level", "unit_code"], suffix="_r")
    assert joined.height == caterpillar.height > 50
    for column in ("numerator", "denominator", "proportion", "ci_low", "ci_high"):
        assert (joined[column] == joined[f"{column}_r"]).all(), column
    funnel = pl.read_parquet(folder / "funnel_units.parquet").join(
        results.filter(pl.col("level") == "hospital"), on=["indicator_id", "unit_code"])
    assert (funnel["numerator"] == funnel["numerator_right"]).all()
    national = results.filter(pl.col("indicator_id") == "STROKE_01",
                              pl.col("level") == "national").row(0, named=True)
    page = (folder / "annual_report.html").read_text(encoding="utf-8")
    assert percent(national["proportion"], "da") in page


def test_funnel_and_run_chart_tables_follow_the_methods(sample_reports):
    from reports.funnel import limits
    from reports.run_chart import anhoej

    folder = sample_reports["annual"] / "stroke"
    curves = pl.read_parquet(folder / "funnel_limits.parquet").filter(
        pl.col("indicator_id") == "STROKE_01")
    p = curves["national_proportion"][0]
    assert curves["lower_95"].to_list() == pytest.approx(
        limits(p, curves["n"].to_numpy())["lower_95"].tolist())
    points = pl.read_parquet(folder / "run_chart_points.parquet").filter(
        pl.col("indicator_id") == "STROKE_01", pl.col("unit_code") == "DK").sort("period")
    signals = pl.read_parquet(folder / "run_chart_signals.parquet").filter(
        pl.col("indicator_id") == "STROKE_01", pl.col("unit_code") == "DK").row(0, named=True)
    result = anhoej(points["value"].to_numpy())
    assert (signals["longest_run"], signals["crossings"]) == (result.longest_run, result.crossings)
    published = pl.read_parquet(folder / "indicator_results_published.parquet")
    shown_months = published.filter(  # of the report year; the run chart has three years
        pl.col("indicator_id") == "STROKE_01", pl.col("level") == "national",
        pl.col("period_type") == "month", ~pl.col("suppressed"))
    assert 30 <= points.height <= 36
    assert set(shown_months["period"]) <= set(points["period"])


def test_a_units_delivery_holds_only_its_own_records(sample_reports):
    folder = sample_reports["monthly"]
    units = sorted(p.name for p in folder.iterdir() if p.is_dir())
    assert len(units) > 100
    with duckdb.connect(str(sample_reports["output"] / "kvalitet.duckdb"), read_only=True) as con:
        owners = pl.from_arrow(con.sql("""
            SELECT record_id, hospital_code, CAST(municipality_code AS VARCHAR) AS municipality_code FROM stroke
            UNION ALL SELECT record_id, hospital_code, CAST(municipality_code AS VARCHAR) FROM hipfracture
            UNION ALL SELECT record_id, hospital_code, CAST(municipality_code AS VARCHAR) FROM cardiac_rehab_hospital
            UNION ALL SELECT record_id, NULL, CAST(municipality_code AS VARCHAR) FROM cardiac_rehab_municipal
        """).to_arrow_table())
    listed_anything = 0
    for name in units:
        level, code = name.split("_", 1)
        key = "hospital_code" if level == "hospital" else "municipality_code"
        unit = folder / name
        records = pl.read_csv(unit / "records_not_meeting.csv", infer_schema=False)
        if records.height:
            listed_anything += 1
            mine = records.join(owners, on="record_id", how="left")
            assert (mine[key] == code).all(), name
            assert set(records.columns) == {"indicator_id", "record_id", "period", "reason"}
            assert records["reason"].is_not_null().all()
        rejected = pl.read_csv(unit / "quarantined_rows.csv", infer_schema=False)
        if rejected.height:
            assert (rejected["unit_code"] == code).all()
        results = pl.read_parquet(unit / "results.parquet")
        own_level = results.filter(pl.col("level") == level)
        assert own_level["unit_code"].unique().to_list() == [code]
        assert set(results["level"]) <= {level, "region", "national"}
        assert results.filter(pl.col("level") == "region")["unit_code"].n_unique() <= 1
    assert listed_anything > 50


def test_a_units_own_small_numbers_are_not_suppressed(sample_reports):
    unit = sample_reports["monthly"] / "hospital_H401"
    results = pl.read_parquet(unit / "results.parquet")
    own = results.filter(pl.col("level") == "hospital")
    assert own["denominator"].is_between(1, 4).any()
    comparison = results.filter(pl.col("level") != "hospital")
    assert not comparison["denominator"].is_between(1, 4).any()
