"""The published workbook: a sheet per indicator that calculates, and "Om tallene".

Counts, proportions, intervals and ratios are stored as numbers (proportions with
a percent format of one decimal), so a reader can sort, filter and compute; a
hidden number is the text '<5' or '..' in its cell. Headers are in the report's
language, the header row is frozen and filtered. The sheet about the figures
says what they are: definitions, the interval method and the small-number rule.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import xlsxwriter

from pipelines.definitions import Definition
from reports.appendix import appendix_facts
from reports.labels import TEXT, languages
from reports.suppression import PRIMARY, SmallNumberRule

COLUMNS = ["indicator_id", "period_type", "period", "level", "unit_code", "unit_name",
           "numerator", "denominator", "missing", "proportion", "ci_low", "ci_high",
           "standard", "standard_met", "median", "expected", "oe_ratio", "oe_low", "oe_high",
           "adjusted_proportion", "adjusted_low", "adjusted_high", "smoothed_proportion"]
COUNTS = {"numerator", "denominator", "missing"}
PERCENT = {"proportion", "ci_low", "ci_high", "standard", "adjusted_proportion",
           "adjusted_low", "adjusted_high", "smoothed_proportion"}
ALWAYS = {"indicator_id", "period_type", "period", "level", "unit_code", "unit_name",
          "denominator", "missing"}
HIDDEN = COUNTS | PERCENT | {"median", "expected", "oe_ratio", "oe_low", "oe_high",
                             "standard_met"} - {"standard"}
ABOUT = "about_sheet"


def _columns(rows: pl.DataFrame, d: Definition) -> list[str]:
    """The columns an indicator uses: always its keys and counts, the rest where a shown
    row has a value (a median has no numerator or proportion)."""
    used = []
    for c in COLUMNS:
        if c in ALWAYS or (c in ("numerator", "proportion", "ci_low", "ci_high", "standard")
                           and d.type != "median"):
            used.append(c)
        elif c in rows.columns and rows[c].is_not_null().any():
            used.append(c)
    return used


def write_workbook(path: Path, definitions: list[Definition], published: pl.DataFrame,
                   rule: SmallNumberRule, language: str, ci_method: str) -> None:
    t = TEXT[language]
    headers = t["excel_columns"]
    with xlsxwriter.Workbook(path) as book:
        head = book.add_format({"bold": True, "bg_color": "#F3F5F7", "bottom": 1,
                                "text_wrap": True, "valign": "top"})
        formats = {"count": book.add_format({"num_format": "#,##0"}),
                   "percent": book.add_format({"num_format": "0.0%"}),
                   "ratio": book.add_format({"num_format": "0.00"}),
                   "decimal": book.add_format({"num_format": "0.0"}),
                   "hidden": book.add_format({"align": "right", "font_color": "#555555"}),
                   "wrap": book.add_format({"text_wrap": True, "valign": "top"})}
        about = book.add_worksheet(t["excel_about_sheet"][:31])
        _about(about, definitions, rule, language, ci_method, head, formats["wrap"])
        for d in definitions:
            rows = published.filter(pl.col("indicator_id") == d.id).sort(
                "period_type", "period", "level", "unit_name", descending=[True, False, False,
                                                                           False])
            columns = _columns(rows, d)
            sheet = book.add_worksheet(d.id[:31])
            for j, c in enumerate(columns):
                sheet.write_string(0, j, headers[c], head)
                sheet.set_column(j, j, 24 if c == "unit_name" else 12)
            for i, r in enumerate(rows.iter_rows(named=True), start=1):
                hidden = r.get("suppression")
                for j, c in enumerate(columns):
                    value = r.get(c)
                    if hidden and c in HIDDEN:
                        marker = rule.shown_as if hidden == PRIMARY else rule.complementary_shown_as
                        sheet.write_string(i, j, marker, formats["hidden"])
                    elif value is None:
                        sheet.write_blank(i, j, None)
                    elif c == "level":
                        sheet.write_string(i, j, t["level_names"].get(value, value))
                    elif c == "period_type":
                        sheet.write_string(i, j, t["period_types"][value])
                    elif c == "standard_met":
                        sheet.write_string(i, j, t["yes"] if value else t["no"])
                    elif c in COUNTS:
                        sheet.write_number(i, j, value, formats["count"])
                    elif c in PERCENT:
                        sheet.write_number(i, j, value, formats["percent"])
                    elif c in ("oe_ratio", "oe_low", "oe_high"):
                        sheet.write_number(i, j, value, formats["ratio"])
                    elif c in ("median", "expected"):
                        sheet.write_number(i, j, value, formats["decimal"])
                    else:
                        sheet.write_string(i, j, str(value))
            sheet.freeze_panes(1, 0)
            sheet.autofilter(0, 0, max(rows.height, 1), len(columns) - 1)


def _about(sheet, definitions, rule, language, ci_method, head, wrap) -> None:
    t = TEXT[language]
    a = t["excel_about"]
    sheet.set_column(0, 0, 28)
    sheet.set_column(1, 1, 110)
    lines = [(a["what"], a["what_text"]),
             (a["interval"], a["interval_text"].format(method=t["ci_methods"][ci_method])),
             (a["small_numbers"], a["small_numbers_text"].format(
                 shown_as=rule.shown_as, minimum=rule.minimum, maximum=rule.maximum,
                 complementary=rule.complementary_shown_as)),
             (a["numbers"], a["numbers_text"])]
    sheet.write_string(0, 0, a["topic"], head)
    sheet.write_string(0, 1, a["text"], head)
    row = 1
    for topic, text in lines:
        sheet.write_string(row, 0, topic, wrap)
        sheet.write_string(row, 1, text, wrap)
        row += 1
    for d in definitions:
        f = appendix_facts(d, language)
        parts = [f["title"], f"{t['standard']}: {f['standard']}",
                 f"{a['population']}: {f['population']}"]
        parts += [f"{t['denominator']}: {c}" for c in f["denominator"]]
        parts += [f"{t['appendix_excluded']}: {c}" for c in f["exclusions"]]
        for key, label in (("follow_up", t["appendix_follow_up"]), ("numerator", t["numerator"]),
                           ("median", t["median"]), ("completeness", t["numerator"])):
            if f[key]:
                parts.append(f"{label}: {f[key]}")
        sheet.write_string(row, 0, d.id, wrap)
        sheet.write_string(row, 1, "\n".join(parts), wrap)
        row += 1
    sheet.freeze_panes(1, 0)


def read_back(path: Path) -> dict[str, list[dict]]:
    """The indicator sheets as rows keyed by the machine column names, with level and
    period type as codes (for checks and tests); numbers as openpyxl reads them, markers
    as text."""
    import openpyxl

    names, codes = {}, {}
    for language in languages():
        t = TEXT[language]
        names.update({v: k for k, v in t["excel_columns"].items()})
        codes.update({v: k for k, v in t["level_names"].items()})
        codes.update({v: k for k, v in t["period_types"].items()})
    about = {TEXT[lang]["excel_about_sheet"][:31] for lang in languages()}
    out = {}
    for sheet in openpyxl.load_workbook(path, read_only=True).worksheets:
        if sheet.title in about:
            continue
        rows = list(sheet.iter_rows(values_only=True))
        header = [names[h] for h in rows[0]]
        out[sheet.title] = [
            {k: codes.get(v, v) if k in ("level", "period_type") else v
             for k, v in zip(header, r)} for r in rows[1:]]
    return out
