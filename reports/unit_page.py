"""A unit's page of its monthly delivery (``index.html``), rendered from the folder's files.

``render(folder)`` reads only what the delivery folder holds (unit.json,
summary.parquet, run_chart_points.parquet, records_not_meeting.csv,
quarantined_rows.csv) and returns the page, so the delivery on disk and the
portal serving it show the same thing. The page loads ``plotly.min.js`` from its
own folder: it opens offline.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from reports import figures
from reports.labels import TEXT, count, indicator_title, number, percent


def _cell(row: dict | None, fact: dict, language: str) -> dict:
    """One window of one role: the value, its interval and n, or the hidden marker."""
    if row is None or (row["denominator"] is None and row["hidden"] is None):
        return {"value": "–", "ci": "", "n": "", "met": None}
    if row["hidden"]:
        return {"value": row["hidden"], "ci": "", "n": "", "met": None}
    if fact["is_median"]:
        if row["median"] is None:
            return {"value": "–", "ci": "", "n": count(row["denominator"], language),
                    "met": None}
        met = (row["median"] <= fact["standard"]) if fact["lower_is_better"] \
            else (row["median"] >= fact["standard"])
        return {"value": f"{number(row['median'], language)} {TEXT[language]['minutes']}",
                "ci": "", "n": count(row["denominator"], language), "met": met}
    p = row["proportion"]
    met = None if p is None else (p <= fact["standard"] if fact["lower_is_better"]
                                  else p >= fact["standard"])
    return {"value": percent(p, language),
            "ci": (f"{percent(row['ci_low'], language)} – {percent(row['ci_high'], language)}"
                   if row["ci_low"] is not None else ""),
            "n": f"{count(row['numerator'], language)} / {count(row['denominator'], language)}",
            "met": met}


def _records(path: Path) -> pl.DataFrame:
    if not path.exists() or path.stat().st_size == 0:
        return pl.DataFrame(schema={"indicator_id": pl.String, "record_id": pl.String,
                                    "period": pl.String, "reason": pl.String})
    return pl.read_csv(path, infer_schema=False)


def render(folder: Path, language: str | None = None) -> str:
    """The unit page of one delivery folder (in the language it was delivered in, unless
    another is asked for)."""
    from reports.annual import file_name, template_env

    meta = json.loads((folder / "unit.json").read_text(encoding="utf-8"))
    language = language or meta["language"]
    months = meta["months"]
    t = TEXT[language]
    summary = pl.read_parquet(folder / "summary.parquet")
    points = pl.read_parquet(folder / "run_chart_points.parquet")
    listed = folder / file_name("records_not_meeting", ".csv", language)
    if not listed.exists():  # delivered in another language only: its words, not none
        listed = folder / file_name("records_not_meeting", ".csv", meta["language"])
    records = _records(listed)
    rejected = _records(folder / "quarantined_rows.csv")
    indicators = []
    for fact in meta["indicators"]:
        mine = summary.filter(pl.col("indicator_id") == fact["id"])
        roles = []
        for role in ("unit", "region", "national"):
            rows = {r["window"]: r for r in mine.filter(pl.col("role") == role)
                    .iter_rows(named=True)}
            if not rows:
                continue
            name = next(iter(rows.values()))["unit_name"]
            roles.append({"role": role, "name": name,
                          "cells": [_cell(rows.get(w), fact, language) for w in
                                    ("month", "year_to_date", "last_12_months")]})
        series = points.filter(pl.col("indicator_id") == fact["id"])
        figure_html = None
        if series["value"].drop_nulls().len():
            colours = {r["name"]: figures.ROLE_COLOURS[r["role"]] for r in roles}
            order = {r["name"]: i for i, r in enumerate(roles)}
            spec = figures.run_chart_spec(
                series.sort(pl.col("unit_name").replace_strict(order, default=9)), months,
                f"{fact['id']}: {indicator_title(fact['id'], language)}", language,
                percent_axis=not fact["is_median"], colours=colours)
            figure_html = figures.spec_html(spec, f"chart-{fact['id']}")
        own_records = records.filter(pl.col("indicator_id") == fact["id"])
        indicators.append({
            "id": fact["id"], "title": indicator_title(fact["id"], language),
            "standard": fact["standard_text"], "roles": roles, "figure": figure_html,
            "records": own_records.sort("period", "record_id").to_dicts(),
            "lower_is_better": fact["lower_is_better"]})
    rules = t["rules"]
    rejected_rows = [{**r, "what": rules[r["rule"]]["what"] if r["rule"] in rules else r["rule"],
                      "fix": rules[r["rule"]]["fix"] if r["rule"] in rules else ""}
                     for r in rejected.to_dicts()]
    rule = meta["small_number_rule"]
    return template_env().get_template("unit_page.html.j2").render(
        t=t, language=language, unit=meta, indicators=indicators, rejected=rejected_rows,
        landing=f"../{file_name('index', '.html', language)}",
        month_label=f"{t['month_names'][int(meta['month'][5:7]) - 1]} {meta['month'][:4]}",
        level=t["level_names"][meta["level"]],
        ci_note=t["ci_note"].format(method=t["ci_methods"][meta["interval_method"]]),
        small_note=t["suppressed_note"].format(shown_as=rule["shown_as"],
                                               minimum=rule["minimum"], maximum=rule["maximum"]),
        complementary_note=t["complementary_note"].format(
            shown_as=rule["shown_as"], complementary=rule["complementary_shown_as"]))


def render_landing(units: list[dict], month: str, language: str) -> str:
    """The delivery's front page: every unit's page, by level and region."""
    from reports.annual import template_env

    t = TEXT[language]
    groups: dict[tuple[str, str], list[dict]] = {}
    for u in sorted(units, key=lambda u: (u["level"], u["region"], u["name"])):
        groups.setdefault((u["level"], u["region"]), []).append(u)
    return template_env().get_template("delivery_index.html.j2").render(
        t=t, language=language, month=month,
        month_label=f"{t['month_names'][int(month[5:7]) - 1]} {month[:4]}",
        groups=[{"level": t["level_names"][level], "region": region, "units": members}
                for (level, region), members in groups.items()])
