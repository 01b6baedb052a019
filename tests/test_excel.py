"""The published workbook calculates: numbers as numbers, percent formats, Danish headers,
a frozen and filtered header, and a sheet about the figures."""

from __future__ import annotations

import openpyxl
import polars as pl

from reports.excel import read_back
from reports.labels import TEXT


def workbook(sample_reports, registry="stroke"):
    return sample_reports["annual"] / registry / "indicator_results.xlsx"


def test_numbers_are_numbers_with_percent_formats(sample_reports):
    book = openpyxl.load_workbook(workbook(sample_reports))
    sheet = book["STROKE_01"]
    header = [c.value for c in sheet[1]]
    h = TEXT["da"]["excel_columns"]
    assert header[:3] == [h["indicator_id"], h["period_type"], h["period"]]
    columns = {name: i for i, name in enumerate(header)}
    counts = proportions = 0
    for row in sheet.iter_rows(min_row=2):
        denominator = row[columns[h["denominator"]]]
        proportion = row[columns[h["proportion"]]]
        if isinstance(denominator.value, str):
            assert denominator.value in ("<5", "..")
            continue
        assert isinstance(denominator.value, int)
        counts += 1
        if proportion.value is not None:
            assert isinstance(proportion.value, (int, float)) and 0 <= proportion.value <= 1
            assert proportion.number_format == "0.0%"
            proportions += 1
    assert counts > 100 and proportions > 100
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref and sheet.auto_filter.ref.startswith("A1:")


def test_the_workbook_equals_the_published_table(sample_reports):
    published = pl.read_parquet(sample_reports["annual"] / "stroke" /
                                "indicator_results_published.parquet")
    rows = read_back(workbook(sample_reports))["STROKE_04"]
    shown = {(r["period"], r["level"], str(r["unit_code"])): r for r in rows}
    checked = 0
    for r in published.filter(pl.col("indicator_id") == "STROKE_04",
                              ~pl.col("suppressed")).iter_rows(named=True):
        got = shown[(r["period"], r["level"], r["unit_code"])]
        assert got["numerator"] == r["numerator"] and got["denominator"] == r["denominator"]
        assert abs(got["proportion"] - r["proportion"]) < 1e-12
        checked += 1
    assert checked > 100


def test_the_sheet_about_the_figures(sample_reports):
    book = openpyxl.load_workbook(workbook(sample_reports))
    assert book.sheetnames[0] == "Om tallene"
    text = "\n".join(str(c.value) for row in book["Om tallene"].iter_rows() for c in row
                     if c.value)
    assert "Wilson" in text and "'<5'" in text and "1–4" in text
    assert "STROKE_01" in text and TEXT["da"]["indicators"]["STROKE_01"]["title"] in text
