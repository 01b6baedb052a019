"""A unit's monthly page: its figures against region, nation and standard, run charts with
gaps and signals, its records with the reason in words, its rejected rows with the fix."""

from __future__ import annotations

import json
import re
from html import unescape

import duckdb
import numpy as np
import polars as pl

from reports import figures
from reports.labels import TEXT


def unit(sample_reports, name="hospital_H401"):
    return sample_reports["monthly"] / name


def test_the_page_is_rendered_from_the_folder_alone(sample_reports, tmp_path):
    """The portal serves the same page: rendering a copy of the folder gives the same HTML."""
    import shutil

    from reports.unit_page import render

    copy = tmp_path / "copy"
    shutil.copytree(unit(sample_reports), copy)
    assert render(copy) == (unit(sample_reports) / "index.html").read_text(encoding="utf-8")


def test_the_page_compares_month_year_to_date_and_12_months(sample_reports):
    folder = unit(sample_reports)
    results = pl.read_parquet(folder / "results.parquet")
    summary = pl.read_parquet(folder / "summary.parquet")
    meta = json.loads((folder / "unit.json").read_text(encoding="utf-8"))
    own = results.filter(pl.col("level") == "hospital", pl.col("median").is_null())
    checked = 0
    for (indicator,), rows in own.group_by(["indicator_id"]):
        for window, months in (("last_12_months", meta["months"]),
                               ("year_to_date", [m for m in meta["months"] if m[:4] == "2025"]),
                               ("month", ["2025-06"])):
            part = rows.filter(pl.col("period").is_in(months))
            got = summary.filter(pl.col("indicator_id") == indicator, pl.col("role") == "unit",
                                 pl.col("window") == window).row(0, named=True)
            if part.is_empty():
                assert got["numerator"] is None
                continue
            assert got["numerator"] == part["numerator"].sum()
            assert got["denominator"] == part["denominator"].sum()
            checked += 1
    assert checked > 20
    page = unescape((folder / "index.html").read_text(encoding="utf-8"))
    for heading in ("Måneden", "År til dato", "Seneste 12 måneder", "Region Hovedstaden",
                    "Danmark", "95 % CI"):
        assert heading in page
    assert re.search(r"\d+,\d\u00a0%", page)  # Danish decimal comma


def test_a_comparison_window_with_a_hidden_month_is_hidden(sample_reports):
    hidden = 0
    for folder in sorted(p for p in sample_reports["monthly"].iterdir() if p.is_dir())[:40]:
        results = pl.read_parquet(folder / "results.parquet").filter(
            pl.col("level").is_in(["region", "national"]))
        summary = pl.read_parquet(folder / "summary.parquet").filter(pl.col("role") != "unit")
        for row in summary.filter(pl.col("window") == "last_12_months").iter_rows(named=True):
            months = results.filter(pl.col("indicator_id") == row["indicator_id"],
                                    pl.col("unit_name") == row["unit_name"])
            if months["suppressed"].any():
                assert row["hidden"] in ("<5", "..") and row["numerator"] is None
                assert row["denominator"] is None
                hidden += 1
    assert hidden > 0


def test_run_charts_leave_gaps_and_mark_signals():
    months = [f"{y}-{m:02d}" for y in (2024, 2025) for m in range(1, 13)]
    low = [0.30, 0.32, 0.31, 0.33, 0.30, 0.34, 0.31, 0.32, 0.30, 0.33, 0.31, 0.32]
    values = low[:3] + [None] + low[3:] + [0.8 + i / 100 for i in range(11)]
    series = pl.DataFrame({"unit_name": ["A"] * 24, "period": months, "value": values})
    spec = figures.run_chart_spec(series.filter(pl.col("value").is_not_null()), months, "t",
                                  "da", colours={"A": "#123456"})
    line = spec["data"][0]
    assert line["y"][3] is None and line["connectgaps"] is False
    assert line["line"]["color"] == "#123456"
    centre, rings = spec["data"][1], spec["data"][2]
    assert centre["line"]["color"] == figures.SIGNAL and centre["line"]["dash"] == "dash"
    assert rings["marker"]["symbol"] == "circle-open" and len(rings["x"]) >= 7
    assert spec["layout"]["separators"][0] == ","
    assert spec["layout"]["xaxis"]["ticktext"][:2] == ["jan 2024", "apr 2024"]
    calm = figures.run_chart_spec(pl.DataFrame({"unit_name": ["B"] * 24, "period": months,
                                                "value": np.tile([0.4, 0.6], 12).tolist()}),
                                  months, "t", "da")
    assert calm["data"][1]["line"]["dash"] == "dot" and len(calm["data"]) == 2


def test_records_not_meeting_say_why_in_words(sample_reports):
    folder = sample_reports["monthly"]
    records = pl.concat([pl.read_csv(p / "records_not_meeting.csv", infer_schema=False)
                         for p in folder.iterdir() if p.is_dir()])
    hip = records.filter(pl.col("indicator_id") == "HIP_01")
    timed = hip.filter(pl.col("reason").str.starts_with("opereret efter"))
    assert timed.height > 5
    with duckdb.connect(str(sample_reports["output"] / "kvalitet.duckdb"), read_only=True) as con:
        hours = dict(con.sql("SELECT record_id, date_diff('minute', admission_at, surgery_at) / 60 "
                             "FROM hipfracture").fetchall())
    for record, reason in timed.select("record_id", "reason").rows():
        shown = float(re.search(r"efter ([\d,]+) timer", reason).group(1).replace(",", "."))
        assert abs(shown - hours[record]) < 0.05 and shown > 24
    words = {r for r in records["reason"]}
    assert any(w.endswith("mangler") for w in words)
    deaths = records.filter(pl.col("indicator_id") == "STROKE_06")
    assert deaths.height and deaths["reason"].str.starts_with("død ").all()  # the events


def test_rejected_rows_carry_the_rule_and_how_to_correct_it(sample_reports):
    folder = sample_reports["monthly"]
    rejected = [p for p in folder.iterdir() if p.is_dir()
                and pl.read_csv(p / "quarantined_rows.csv", infer_schema=False).height]
    assert rejected
    page = unescape((rejected[0] / "index.html").read_text(encoding="utf-8"))
    rows = pl.read_csv(rejected[0] / "quarantined_rows.csv", infer_schema=False)
    for rule in set(rows["rule"]):
        assert TEXT["da"]["rules"][rule]["what"] in page
        assert TEXT["da"]["rules"][rule]["fix"] in page
    assert TEXT["da"]["how_to_correct"] in page


def test_each_language_of_a_delivery_is_its_own_file(input_dir, tmp_path):
    from typer.testing import CliRunner

    from pipelines.cli import app
    from tests.builders import TEST_KEY, stroke_row, write_extract

    write_extract(input_dir, "stroke", "2024-06-30", [
        stroke_row(record_id=f"R{i}", admission_at="2024-03-10 10:00",
                   stroke_unit_at="2024-03-12 15:00" if i % 2 else None) for i in range(6)])
    env = {"KVALITET_PSEUDONYM_KEY": TEST_KEY.decode(), "KVALITET_WAREHOUSE": "",
           "KVALITET_RUN_DATE": "2024-07-01"}
    runner, output = CliRunner(), tmp_path / "out"
    assert runner.invoke(app, ["run", "--input", str(input_dir), "--output", str(output)],
                         env=env).exit_code == 0
    for language in ("da", "en"):
        done = runner.invoke(app, ["report", "monthly", "--month", "2024-03", "--output",
                                   str(output), "--language", language], env=env)
        assert done.exit_code == 0, done.output
    folder = output / "reports" / "monthly" / "2024-03" / "hospital_H401"
    danish = unescape((folder / "index.html").read_text(encoding="utf-8"))
    english = unescape((folder / "index.en.html").read_text(encoding="utf-8"))
    assert "indlagt på apopleksiafsnit efter 53 timer" in danish
    assert "tidspunkt for indlæggelse på apopleksiafsnit mangler" in danish
    assert "admitted to a stroke unit after 53 hours" in english
    assert "admitted to" not in danish and "indlagt" not in english
    assert '<html lang="da">' in danish and '<html lang="en">' in english
