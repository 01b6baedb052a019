"""The annual report: one self-contained HTML page per registry, and its tables.

Everything published here passes the small-number rule and complementary
suppression (reports/suppression.py), applied once to the report year and the
two before it, so the page, its tables and every chart's data hide the same
cells. Each chart's data is written beside it as Parquet so any point can be
checked.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import plotly.offline
import polars as pl
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from pipelines.definitions import Definition
from reports import excel, figures, releases
from reports.appendix import appendix_facts
from reports.funnel import funnel_table
from reports.labels import (REFERENCE_LANGUAGE, TEXT, count, indicator_title, number, percent)
from reports.portal.audit_round import mark_report
from reports.run_chart import anhoej
from reports.suppression import (PRIMARY, Hierarchy, SmallNumberRule, as_text,
                                 shared_counts)
from pipelines.sources import SOURCES
from schemas.declarations import LEVELS, REGISTRIES

log = logging.getLogger("kvalitet.reports")

# Registries and their reports as declared in schemas/registries/*.yaml (``report:`` groups
# several registries, e.g. the hospital and municipal parts of cardiac rehabilitation).
SOURCES_OF: dict[str, list[str]] = {}
for _r in REGISTRIES.values():
    SOURCES_OF.setdefault(_r.report_group, []).append(_r.name)
REGISTRY_TITLES = {group: REGISTRIES[names[0]].title for group, names in SOURCES_OF.items()}


def registry_title(group: str, language: str) -> str:
    """A report's title: the language's catalogue, else the registry's own declaration (a
    registry added as data reads well before a translator has named it)."""
    named = TEXT[language].get("registries", {}).get(group)
    if named:
        return named
    titles = REGISTRY_TITLES[group]
    return titles.get(language, titles["en"])


COMPLETENESS_FLAG = 0.90  # completeness against LPR below this is flagged beside the results


def report_group(d: Definition) -> str:
    """Which registry's report an indicator belongs to."""
    if d.completeness:
        return REGISTRIES[d.completeness.registry].report_group
    return REGISTRIES[d.registry].report_group


UNIT_LEVELS = tuple(LEVELS.levels)  # the declared unit levels, in reporting order


def unit_level(d: Definition) -> str:
    """The level a registry's units are compared at: the one its region comes from."""
    return SOURCES[d.registry].region_from


def file_name(stem: str, suffix: str, language: str) -> str:
    """Each language its own file: Danish (the reference) keeps the plain name."""
    return f"{stem}{suffix}" if language == REFERENCE_LANGUAGE else f"{stem}.{language}{suffix}"


def interval_method(results: pl.DataFrame) -> str:
    """The interval method the results were computed with, read back from the numbers
    (Wilson and Clopper-Pearson differ for every n > 0), so a note never names another."""
    from pipelines.intervals import clopper_pearson, wilson

    rows = results.filter(pl.col("ci_low").is_not_null(), pl.col("denominator") > 0,
                          pl.col("numerator").is_not_null()).head(50)
    if rows.is_empty():
        return "wilson"
    x, n = rows["numerator"].to_numpy(), rows["denominator"].to_numpy()
    low = rows["ci_low"].to_numpy()
    w = np.abs(wilson(x, n)[0] - low).max()
    c = np.abs(clopper_pearson(x, n)[0] - low).max()
    return "wilson" if w <= c else "clopper-pearson"


def follow_up_complete(d: Definition, year: int, cutoff: dt.date | None) -> bool:
    """Every record of the year has had its follow-up by the data cutoff."""
    if d.follow_up is None or cutoff is None:
        return True
    return dt.date(year, 12, 31) + dt.timedelta(days=d.follow_up.days) <= cutoff


@dataclass
class ChartData:
    caterpillar: list[pl.DataFrame]
    funnel_units: list[pl.DataFrame]
    funnel_limits: list[pl.DataFrame]
    run_points: list[pl.DataFrame]
    run_signals: list[pl.DataFrame]
    oe_units: list[pl.DataFrame]
    p_prime: list[pl.DataFrame]

    @classmethod
    def empty(cls) -> "ChartData":
        return cls([], [], [], [], [], [], [])

    def write(self, folder: Path) -> None:
        for name, frames in (("caterpillar", self.caterpillar), ("funnel_units", self.funnel_units),
                             ("funnel_limits", self.funnel_limits),
                             ("run_chart_points", self.run_points),
                             ("run_chart_signals", self.run_signals),
                             ("oe_funnel_units", self.oe_units),
                             ("p_prime_chart", self.p_prime)):
            if frames:
                pl.concat(frames, how="diagonal_relaxed").write_parquet(folder / f"{name}.parquet")


def hidden_marker(row: dict, rule: SmallNumberRule) -> str:
    return rule.shown_as if row.get("suppression") == PRIMARY else rule.complementary_shown_as


def _display(rows: pl.DataFrame, d: Definition, rule: SmallNumberRule, language: str,
             completeness: dict[str, dict] | None = None) -> list[dict]:
    """Table rows as text; hidden cells show '<5' (small) or '..' (complementary)."""
    t = TEXT[language]
    out = []
    for r in rows.iter_rows(named=True):
        small = r.get("suppressed")
        hidden = hidden_marker(r, rule)
        ci = (f"{percent(r['ci_low'], language)} – {percent(r['ci_high'], language)}"
              if r.get("ci_low") is not None else "–")
        row = {
            "unit": r["unit_name"], "code": r["unit_code"], "hidden": bool(small),
            "numerator": hidden if small else count(r["numerator"], language),
            "denominator": hidden if small else count(r["denominator"], language),
            "proportion": hidden if small else (
                number(r["median"], language) if d.type == "median"
                else percent(r["proportion"], language)),
            "ci": hidden if small else ci,
            "standard_met": "" if small or r["standard_met"] is None
            else (t["yes"] if r["standard_met"] else t["no"]),
            "missing": hidden if small else count(r["missing"], language),
            "oe": None if small or r.get("oe_ratio") is None else
            f"{number(r['oe_ratio'], language, 2)} ({number(r['oe_low'], language, 2)}–"
            f"{number(r['oe_high'], language, 2)})",
            "adjusted": None if small or r.get("adjusted_proportion") is None
            else percent(r["adjusted_proportion"], language),
            "smoothed": None if small or r.get("smoothed_proportion") is None
            else percent(r["smoothed_proportion"], language),
        }
        if completeness is not None:
            row["completeness"] = completeness.get(r["unit_code"])
        out.append(row)
    return out


def completeness_cells(published: pl.DataFrame, definitions: list[Definition], year: int,
                       rule: SmallNumberRule, language: str) -> dict[str, dict]:
    """Each hospital's completeness against LPR in the year, flagged below 90 %."""
    ids = [d.id for d in definitions if d.type == "completeness"]
    rows = published.filter(pl.col("indicator_id").is_in(ids), pl.col("level") == "hospital",
                            pl.col("period_type") == "year", pl.col("period") == str(year))
    out = {}
    for r in rows.iter_rows(named=True):
        if r["suppressed"]:
            out[r["unit_code"]] = {"text": hidden_marker(r, rule), "low": False}
        else:
            out[r["unit_code"]] = {"text": percent(r["proportion"], language),
                                   "low": r["proportion"] is not None
                                   and r["proportion"] < COMPLETENESS_FLAG}
    return out


def _standard_text(d: Definition, language: str) -> str:
    sign = "≤" if d.standard.lower_is_better else "≥"
    if d.type == "median":
        return f"{sign} {number(d.standard.value, language, 0)} {TEXT[language]['minutes']}"
    return f"{sign} {percent(d.standard.value, language, 0)}"


def _value(row: dict | None, d: Definition, language: str, rule: SmallNumberRule) -> str:
    if row is None:
        return "–"
    if row.get("suppressed"):
        return hidden_marker(row, rule)
    if d.type == "median":
        return number(row["median"], language)
    return percent(row["proportion"], language)


def indicator_section(d: Definition, published: pl.DataFrame, year: int, rule: SmallNumberRule,
                      language: str, charts: ChartData, cutoff: dt.date | None = None,
                      ci_note: str = "", completeness: dict | None = None,
                      comment: str | None = None) -> dict:
    """``published``: results after suppression (see build)."""
    t = TEXT[language]
    mine = published.filter(pl.col("indicator_id") == d.id)
    this_year = mine.filter(pl.col("period_type") == "year", pl.col("period") == str(year))
    national = this_year.filter(pl.col("level") == "national").to_dicts()
    national = national[0] if national else None
    level = unit_level(d)
    units = this_year.filter(pl.col("level") == level)
    shown = units.filter(~pl.col("suppressed"))
    tables = {}
    hidden_tables = {}
    for lvl in d.levels:
        if lvl == "national":
            continue
        rows = _display(this_year.filter(pl.col("level") == lvl).sort(
            pl.col("proportion" if d.type != "median" else "median"), descending=True,
            nulls_last=True), d, rule, language,
            completeness if lvl == "hospital" and d.type != "completeness" else None)
        if not rows:
            continue
        if all(r["hidden"] for r in rows):
            hidden_tables[lvl] = len(rows)  # nothing to read in such a table: one sentence
        else:
            tables[lvl] = rows
    notes = []
    if not follow_up_complete(d, year, cutoff):
        key = "follow_up_incomplete" if national is None else "follow_up_partial"
        notes.append(t[key].format(days=d.follow_up.days, year=year, cutoff=cutoff.isoformat()))
    elif national is None:
        notes.append(t["no_results_year"].format(year=year))
    if d.risk_adjustment is not None:
        notes.append(t["standard_crude_note"])
    section = {
        "id": d.id, "title": indicator_title(d.id, language),
        "standard": _standard_text(d, language), "national": _value(national, d, language, rule),
        "national_ci": (f"{percent(national['ci_low'], language)} – "
                        f"{percent(national['ci_high'], language)}"
                        if national and national.get("ci_low") is not None else ""),
        "tables": tables, "hidden_tables": hidden_tables,
        "is_median": d.type == "median", "risk_adjusted": d.risk_adjustment is not None,
        "with_completeness": completeness is not None and d.type != "completeness"
        and "hospital" in d.levels,
        "figures": [], "notes": notes, "comment": comment,
    }
    met = shown.filter(pl.col("standard_met"))
    if shown.height:
        section["units_meeting"] = t["units_meeting_value"].format(
            met=met.height, shown=shown.height)
        if units.height > shown.height:
            section["units_meeting"] += " " + t["units_not_shown"].format(
                hidden=units.height - shown.height)
    elif units.height:
        section["units_meeting"] = t["units_all_hidden"].format(units=units.height)
    else:
        section["units_meeting"] = t["units_none"]
    p = national["proportion"] if national else None
    if d.type != "median" and shown.height and p is not None:
        charts.caterpillar.append(shown.select(
            pl.lit(d.id).alias("indicator_id"), "level", "unit_code", "unit_name", "numerator",
            "denominator", "proportion", "ci_low", "ci_high",
            pl.lit(p).alias("national_proportion"), pl.lit(d.standard.value).alias("standard")))
        section["figures"].append(figures.caterpillar(
            shown.filter(pl.col("level") == level), p, d.standard.value,
            f"{d.id}: {t['caterpillar_' + level]} {year}", language, ci_note))
        labelled, curves, dispersion = funnel_table(
            shown.select("unit_code", "unit_name", "numerator", "denominator"), p)
        charts.funnel_units.append(labelled.with_columns(
            pl.lit(d.id).alias("indicator_id"), pl.lit(str(year)).alias("period"),
            pl.lit(p).alias("national_proportion"), pl.lit(dispersion["phi"]).alias("phi"),
            pl.lit(dispersion["tau2"]).alias("tau2")))
        charts.funnel_limits.append(curves.with_columns(pl.lit(d.id).alias("indicator_id"),
                                                        pl.lit(str(year)).alias("period")))
        section["figures"].append(figures.funnel(labelled, curves, f"{d.id}: {t['funnel']} {year}",
                                                 language))
        section["funnel_labels"] = labelled.select("unit_name", "label").sort("label").to_dicts()
        section["overdispersion"] = dispersion
    if d.risk_adjustment and shown.height:
        oe = shown.filter(pl.col("oe_ratio").is_not_null())
        if oe.height:
            charts.oe_units.append(oe.select(pl.lit(d.id).alias("indicator_id"), "unit_code",
                                             "unit_name", "numerator", "expected", "oe_ratio",
                                             "oe_low", "oe_high", "adjusted_proportion",
                                             "smoothed_proportion"))
            section["figures"].append(figures.oe_funnel(oe, f"{d.id}: {t['oe']} {year}", language))
    section["run_chart"] = run_chart_section(d, mine, year, rule, language, charts)
    if section["run_chart"]["figure"] is not None:
        section["figures"].append(section["run_chart"]["figure"])
    if d.type != "median":
        section["figures"].extend(p_prime_section(d, mine, year, language, charts))
    return section


def year_months(year: int, years: int = 3) -> list[str]:
    return [f"{y}-{m:02d}" for y in range(year - years + 1, year + 1) for m in range(1, 13)]


def run_chart_section(d: Definition, mine: pl.DataFrame, year: int, rule: SmallNumberRule,
                      language: str, charts: ChartData) -> dict:
    """Monthly national and regional values over the report year and the two before it;
    a hidden or missing month is a gap in the line."""
    value = "median" if d.type == "median" else "proportion"
    months = mine.filter(
        pl.col("period_type") == "month", pl.col("level").is_in(["national", "region"]),
        pl.col("period").str.slice(0, 4).cast(pl.Int32).is_between(year - 2, year))
    months = months.filter(~pl.col("suppressed")).select(
        "level", "unit_code", "unit_name", "period", pl.col(value).alias("value"))
    grid = year_months(year)
    signals = []
    for (code, name), series in months.sort("level", "unit_code", "period").group_by(
            ["unit_code", "unit_name"], maintain_order=True):
        values = pl.DataFrame({"period": grid}).join(series, on="period", how="left",
                                                     maintain_order="left")["value"]
        result = anhoej(values.cast(pl.Float64).to_numpy())
        signals.append({"indicator_id": d.id, "unit_code": code, "unit_name": name,
                        "centre": result.centre, "points": result.useful_points,
                        "longest_run": result.longest_run, "longest_run_max": result.longest_run_max,
                        "crossings": result.crossings, "crossings_min": result.crossings_min,
                        "shift": result.shift, "too_few_crossings": result.too_few_crossings})
    if months.is_empty():
        return {"figure": None, "signals": []}
    charts.run_points.append(months.with_columns(pl.lit(d.id).alias("indicator_id")))
    charts.run_signals.append(pl.DataFrame(signals))
    nation = months.filter(pl.col("level") == "national")["unit_name"].unique().to_list()
    figure = figures.run_chart(months.sort("level", "unit_code"), grid,
                               f"{d.id}: {TEXT[language]['run_chart']}", language,
                               percent_axis=value == "proportion",
                               colours={n: figures.ROLE_COLOURS["national"] for n in nation})
    return {"figure": figure, "signals": signals}


def p_prime_section(d: Definition, mine: pl.DataFrame, year: int, language: str,
                    charts: ChartData) -> list:
    """Laney P′ charts of the report year's months: the nation, and every unit of the
    indicator's unit level in one chart with a menu (hidden months are gaps)."""
    t = TEXT[language]
    grid = year_months(year, 1)
    level = unit_level(d)
    months = mine.filter(pl.col("period_type") == "month", pl.col("period").is_in(grid),
                         pl.col("level").is_in(["national", level]))
    national, units = [], []
    for (lvl, code, name), series in months.sort("level", "unit_name").group_by(
            ["level", "unit_code", "unit_name"], maintain_order=True):
        visible = series.with_columns(
            pl.when(pl.col("suppressed")).then(None).otherwise(pl.col("numerator"))
            .alias("numerator"),
            pl.when(pl.col("suppressed")).then(None).otherwise(pl.col("denominator"))
            .alias("denominator")).select("period", "numerator", "denominator")
        if (visible["denominator"].drop_nulls().sum() or 0) == 0:
            continue
        if lvl == "national":
            figure, data = figures.p_prime_chart(visible, grid,
                                                 f"{d.id}: {t['p_prime']} – {name}", language)
            national.append(figure)
        else:
            data = figures.p_prime_traces(visible, grid, language)[1]
            units.append((name, visible))
        charts.p_prime.append(data.with_columns(
            pl.lit(d.id).alias("indicator_id"), pl.lit(lvl).alias("level"),
            pl.lit(code).alias("unit_code"), pl.lit(name).alias("unit_name")))
    if units:
        national.append(figures.p_prime_selector(units, grid, f"{d.id}: {t['p_prime']}",
                                                 language))
    return national


def overview(definitions: list[Definition], published: pl.DataFrame, year: int,
             rule: SmallNumberRule, language: str, sections: dict) -> list[dict]:
    rows = []
    for d in definitions:
        national = {}
        for y in (year, year - 1, year - 2):
            found = published.filter(pl.col("indicator_id") == d.id,
                                     pl.col("level") == "national",
                                     pl.col("period_type") == "year", pl.col("period") == str(y))
            national[y] = found.to_dicts()[0] if found.height else None
        rows.append({"id": d.id, "title": sections[d.id]["title"],
                     "value": _value(national[year], d, language, rule),
                     "ci": sections[d.id]["national_ci"], "standard": sections[d.id]["standard"],
                     "units_meeting": sections[d.id]["units_meeting"],
                     "previous": [_value(national[year - 1], d, language, rule),
                                  _value(national[year - 2], d, language, rule)]})
    return rows


def at_a_glance(definitions: list[Definition], published: pl.DataFrame, year: int,
                rule: SmallNumberRule, language: str, completeness: dict | None) -> dict:
    """Units × indicators of the year: standard met, not met, too few (hidden), no data."""
    t = TEXT[language]
    shown_defs = [d for d in definitions if d.type != "completeness"]
    levels = sorted({unit_level(d) for d in shown_defs}, key=UNIT_LEVELS.index)
    tables = []
    for level in levels:
        members = [d for d in shown_defs if unit_level(d) == level]
        rows = published.filter(pl.col("indicator_id").is_in([d.id for d in members]),
                                pl.col("level") == level, pl.col("period_type") == "year",
                                pl.col("period") == str(year))
        cells: dict[str, dict[str, dict]] = {}
        names = {}
        for r in rows.iter_rows(named=True):
            names[r["unit_code"]] = r["unit_name"]
            if r["suppressed"]:  # '..': hidden so that a small neighbour stays hidden
                cell = {"class": "few", "text": t["glance_too_few"]
                        if r.get("suppression") == PRIMARY else rule.complementary_shown_as}
            elif r["standard_met"] is None:
                cell = {"class": "none", "text": "–"}
            elif r["standard_met"]:
                cell = {"class": "met", "text": t["glance_met"]}
            else:
                cell = {"class": "notmet", "text": t["glance_not_met"]}
            cells.setdefault(r["unit_code"], {})[r["indicator_id"]] = cell
        body = []
        for code in sorted(names, key=lambda c: names[c]):
            row = {"unit": names[code], "cells": [cells[code].get(d.id, {"class": "none",
                                                                         "text": "–"})
                                                  for d in members]}
            if completeness is not None and level == "hospital":
                row["completeness"] = completeness.get(code, {"text": "–", "low": False})
            body.append(row)
        if body:
            tables.append({"level": level, "indicators": [d.id for d in members], "rows": body,
                           "with_completeness": completeness is not None and level == "hospital"})
    return {"tables": tables}


def validation_by_unit(con, group: str, language: str) -> list[dict]:
    """Rows loaded and rejected per hospital (or clinic, or municipality), by name; rows
    whose unit code is missing or unknown are one row saying so."""
    t = TEXT[language]
    sources = SOURCES_OF.get(group, [group])
    loaded = " UNION ALL ".join(
        f"SELECT CAST({SOURCES[s].region_column} AS VARCHAR) AS unit_code FROM {s}"
        for s in sources)
    first = LEVELS.levels[SOURCES[sources[0]].region_from].code
    unit = ", ".join([first, *(lv.code for lv in LEVELS.units if lv.code != first)])
    tables = {r[0] for r in con.sql("SELECT table_name FROM information_schema.tables").fetchall()}
    names = " UNION ALL ".join(
        f"SELECT CAST({lv.code} AS VARCHAR) AS code, {lv.name} AS name FROM {lv.table}"
        for lv in LEVELS.units if lv.table in tables)
    rows = con.sql(f"""
        WITH loaded AS (SELECT unit_code, count(*) AS rows_loaded FROM ({loaded}) GROUP BY 1),
        rejected AS (
            SELECT coalesce({unit}) AS unit_code,
                   count(DISTINCT (file_id, row_number)) AS rows_quarantined
            FROM quarantine WHERE source IN ({', '.join(repr(s) for s in sources)}) GROUP BY 1),
        names AS ({names})
        SELECT n.name, coalesce(l.unit_code, r.unit_code) AS unit_code,
               sum(coalesce(rows_loaded, 0)), sum(coalesce(rows_quarantined, 0))
        FROM loaded l FULL JOIN rejected r ON l.unit_code = r.unit_code
        LEFT JOIN names n ON n.code = coalesce(l.unit_code, r.unit_code)
        GROUP BY ALL ORDER BY n.name NULLS LAST, unit_code NULLS LAST""").fetchall()
    out, unknown = [], [0, 0]
    for name, code, loaded_rows, rejected_rows in rows:
        if name is None:  # no or an unknown unit code: the rows cannot be placed
            unknown[0] += loaded_rows
            unknown[1] += rejected_rows
            continue
        out.append({"unit": name, "rows_loaded": count(loaded_rows, language),
                    "rows_quarantined": count(rejected_rows, language)})
    if any(unknown):
        out.append({"unit": t["no_unit_code"], "rows_loaded": count(unknown[0], language),
                    "rows_quarantined": count(unknown[1], language)})
    return out


def write_tables(folder: Path, definitions: list[Definition], published: pl.DataFrame, year: int,
                 rule: SmallNumberRule, language: str = REFERENCE_LANGUAGE,
                 ci_method: str = "wilson") -> pl.DataFrame:
    """The published tables of the year: Parquet (hidden numbers null, ``suppression``
    saying why), CSV, and a workbook that calculates (hidden numbers as '<5' or '..')."""
    ids = [d.id for d in definitions]
    published = published.filter(pl.col("indicator_id").is_in(ids),
                                 pl.col("period").str.slice(0, 4) == str(year))
    published.write_parquet(folder / "indicator_results_published.parquet")
    as_text(published, rule).write_csv(folder / "indicator_results_published.csv")
    excel.write_workbook(folder / file_name("indicator_results", ".xlsx", language),
                         definitions, published, rule, language, ci_method)
    return published


def publishable(con, results: pl.DataFrame, definitions: list[Definition], year: int,
                rule: SmallNumberRule) -> pl.DataFrame:
    """The report year and the two before it (their months feed the run charts), after
    the small-number rule and complementary suppression: one pattern for all artefacts,
    kept where earlier releases published the same counts, and recorded for later ones."""
    ids = [d.id for d in definitions]
    years = [str(y) for y in range(year - 2, year + 1)]
    mine = results.filter(pl.col("indicator_id").is_in(ids),
                          pl.col("period").str.slice(0, 4).is_in(years))
    published = rule.suppress(mine, Hierarchy.from_warehouse(con), shared_counts(definitions),
                              releases.earlier(con))
    releases.record(con, f"annual {year}", mine, published)
    return published


def commentary(comments: Path | None, year: int, indicator: str) -> str | None:
    """The steering group's comment on an indicator (comments/<year>/<indicator>.md) as
    HTML; raw HTML in it is shown as text, never run, and anything shaped like a CPR number
    is masked (the comment is written by people, who may paste one)."""
    if comments is None:
        return None
    path = comments / str(year) / f"{indicator}.md"
    if not path.is_file():
        return None
    import markdown

    md = markdown.Markdown(extensions=["tables", "sane_lists"])
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    from pipelines.privacy import mask

    return md.convert(mask(path.read_text(encoding="utf-8")))


def template_env() -> Environment:
    return Environment(loader=PackageLoader("reports", "templates"),
                       autoescape=select_autoescape(["html", "j2"]), undefined=StrictUndefined)


def build(con, results: pl.DataFrame, definitions: list[Definition], year: int, output: Path,
          language: str = "da", rule: SmallNumberRule = SmallNumberRule(),
          cutoff: dt.date | None = None, comments: Path | None = None, pdf: bool = False
          ) -> list[Path]:
    """One folder per registry under ``output`` and a landing page; returns the HTML
    reports. Each language writes its own files (Danish: annual_report.html, others
    annual_report.<language>.html)."""
    env = template_env()
    template = env.get_template("annual_report.html.j2")
    plotly_js = plotly.offline.get_plotlyjs()
    t = TEXT[language]
    method = interval_method(results)
    ci_note = t["ci_note"].format(method=t["ci_methods"][method])
    written = []
    groups: dict[str, list[Definition]] = {}
    for d in sorted(definitions, key=lambda d: d.id):
        groups.setdefault(report_group(d), []).append(d)
    published = publishable(con, results, definitions, year, rule)
    delivered = set(results["indicator_id"].unique())
    reported: list[str] = []
    for group, members in groups.items():
        if not delivered & {d.id for d in members}:  # declared, but never delivered: no report
            log.info("annual report %s %d: no results for its indicators, not written", group,
                     year)
            continue
        folder = output / group
        folder.mkdir(parents=True, exist_ok=True)
        charts = ChartData.empty()
        has_completeness = any(d.type == "completeness" for d in members)
        completeness = (completeness_cells(published, members, year, rule, language)
                        if has_completeness else None)
        sections = {d.id: indicator_section(d, published, year, rule, language, charts, cutoff,
                                            ci_note, completeness,
                                            commentary(comments, year, d.id))
                    for d in members}
        for section in sections.values():
            section["figure_html"] = [
                f.to_html(full_html=False, include_plotlyjs=False,
                          div_id=f"{section['id']}-{i}", config={"displaylogo": False})
                for i, f in enumerate(section.pop("figures"))]
            section["run_chart"].pop("figure", None)
        charts.write(folder)
        write_tables(folder, members, published, year, rule, language, method)
        context = dict(
            t=t, language=language, year=year, registry=registry_title(group, language),
            overview=overview(members, published, year, rule, language, sections),
            glance=at_a_glance(members, published, year, rule, language, completeness),
            completeness_flag=percent(COMPLETENESS_FLAG, language, 0),
            sections=[sections[d.id] for d in members],
            validation=validation_by_unit(con, group, language),
            appendix=[appendix_facts(d, language) for d in members], plotly_js=plotly_js,
            years=(year, year - 1, year - 2), ci_note=ci_note,
            small_note=t["suppressed_note"].format(shown_as=rule.shown_as,
                                                   minimum=rule.minimum, maximum=rule.maximum),
            complementary_note=t["complementary_note"].format(
                shown_as=rule.shown_as, complementary=rule.complementary_shown_as),
            workbook=file_name("indicator_results", ".xlsx", language),
            landing=file_name("index", ".html", language))
        path = folder / file_name("annual_report", ".html", language)
        ids = [d.id for d in members]  # the audit round's banner and comments (portal)
        path.write_text(mark_report(template.render(**context, printing=False), year, ids),
                        encoding="utf-8")
        if pdf:
            from reports.pdf import print_pdf

            printable = folder / f".{path.stem}.print.html"
            printable.write_text(mark_report(template.render(**context, printing=True), year, ids),
                                 encoding="utf-8")
            try:
                print_pdf(printable, path.with_suffix(".pdf"))
            finally:
                printable.unlink(missing_ok=True)
        log.info("annual report %s %d: %s", group, year, path)
        written.append(path)
        reported.append(group)
    landing = output / file_name("index", ".html", language)
    landing.write_text(env.get_template("annual_index.html.j2").render(
        t=t, language=language, year=year,
        reports=[{"title": registry_title(g, language), "href": f"{g}/{p.name}",
                  "pdf": f"{g}/{p.with_suffix('.pdf').name}" if pdf else None,
                  "workbook": f"{g}/{file_name('indicator_results', '.xlsx', language)}",
                  "indicators": [indicator_title(d.id, language) for d in groups[g]]}
                 for g, p in zip(reported, written)]), encoding="utf-8")
    return written
