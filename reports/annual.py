"""The annual report: one self-contained HTML page per registry, and its tables.

Everything published here passes the small-number rule and complementary
suppression (reports/suppression.py), applied once to the report year and the
two before it, so the page, its tables and every chart's data hide the same
cells. Each chart's data is written beside it as Parquet so any point can be
checked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import plotly.offline
import polars as pl
import xlsxwriter
from jinja2 import Environment, PackageLoader, select_autoescape

from pipelines.catalogue import facts
from pipelines.definitions import Definition
from reports import figures
from reports.funnel import funnel_table
from reports.labels import TEXT, count, number, percent
from reports.portal.audit_round import mark_report
from reports.run_chart import anhoej
from reports.suppression import PRIMARY, Hierarchy, SmallNumberRule, as_text

log = logging.getLogger("kvalitet.reports")

REGISTRY_TITLES = {
    "stroke": {"da": "Apopleksi", "en": "Stroke"},
    "hipfracture": {"da": "Hoftebrud", "en": "Hip fracture"},
    "cardiac_rehab": {"da": "Hjerterehabilitering", "en": "Cardiac rehabilitation"},
}
SOURCES_OF = {"stroke": ["stroke"], "hipfracture": ["hipfracture"],
              "cardiac_rehab": ["cardiac_rehab_hospital", "cardiac_rehab_municipal"]}


def report_group(d: Definition) -> str:
    """Which registry's report an indicator belongs to."""
    if d.completeness:
        return d.completeness.registry
    return "cardiac_rehab" if d.registry.startswith("cardiac_rehab") else d.registry


def unit_level(d: Definition) -> str:
    return "hospital" if "hospital" in d.levels else "municipality"


@dataclass
class ChartData:
    caterpillar: list[pl.DataFrame]
    funnel_units: list[pl.DataFrame]
    funnel_limits: list[pl.DataFrame]
    run_points: list[pl.DataFrame]
    run_signals: list[pl.DataFrame]
    oe_units: list[pl.DataFrame]

    @classmethod
    def empty(cls) -> "ChartData":
        return cls([], [], [], [], [], [])

    def write(self, folder: Path) -> None:
        for name, frames in (("caterpillar", self.caterpillar), ("funnel_units", self.funnel_units),
                             ("funnel_limits", self.funnel_limits),
                             ("run_chart_points", self.run_points),
                             ("run_chart_signals", self.run_signals),
                             ("oe_funnel_units", self.oe_units)):
            if frames:
                pl.concat(frames, how="diagonal_relaxed").write_parquet(folder / f"{name}.parquet")


def _display(rows: pl.DataFrame, d: Definition, rule: SmallNumberRule, language: str) -> list[dict]:
    """Table rows as text; hidden cells show '<5' (small) or '..' (complementary)."""
    t = TEXT[language]
    out = []
    for r in rows.iter_rows(named=True):
        small = r.get("suppressed")
        hidden = rule.shown_as if r.get("suppression") == PRIMARY else rule.complementary_shown_as
        ci = (f"{percent(r['ci_low'], language)} – {percent(r['ci_high'], language)}"
              if r.get("ci_low") is not None else "–")
        out.append({
            "unit": r["unit_name"], "code": r["unit_code"],
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
        })
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
        return rule.shown_as if row.get("suppression") == PRIMARY else rule.complementary_shown_as
    if d.type == "median":
        return number(row["median"], language)
    return percent(row["proportion"], language)


def indicator_section(d: Definition, published: pl.DataFrame, year: int, rule: SmallNumberRule,
                      language: str, charts: ChartData) -> dict:
    """``published``: results after suppression (see build)."""
    t = TEXT[language]
    mine = published.filter(pl.col("indicator_id") == d.id)
    this_year = mine.filter(pl.col("period_type") == "year", pl.col("period") == str(year))
    national = this_year.filter(pl.col("level") == "national").to_dicts()
    national = national[0] if national else None
    level = unit_level(d)
    units = this_year.filter(pl.col("level") == level)
    shown = units.filter(~pl.col("suppressed"))
    section = {
        "id": d.id, "title": d.title.da if language == "da" else d.title.en,
        "standard": _standard_text(d, language), "national": _value(national, d, language, rule),
        "national_ci": (f"{percent(national['ci_low'], language)} – "
                        f"{percent(national['ci_high'], language)}"
                        if national and national.get("ci_low") is not None else ""),
        "tables": {lvl: _display(this_year.filter(pl.col("level") == lvl).sort(
            pl.col("proportion" if d.type != "median" else "median"), descending=True,
            nulls_last=True), d, rule, language)
            for lvl in d.levels if lvl != "national"},
        "is_median": d.type == "median", "risk_adjusted": d.risk_adjustment is not None,
        "figures": [],
    }
    met = shown.filter(pl.col("standard_met"))
    section["units_meeting"] = f"{met.height} / {shown.height}"
    p = national["proportion"] if national else None
    if d.type != "median" and shown.height and p is not None:
        charts.caterpillar.append(shown.select(
            pl.lit(d.id).alias("indicator_id"), "level", "unit_code", "unit_name", "numerator",
            "denominator", "proportion", "ci_low", "ci_high",
            pl.lit(p).alias("national_proportion"), pl.lit(d.standard.value).alias("standard")))
        section["figures"].append(figures.caterpillar(
            shown.filter(pl.col("level") == level), p, d.standard.value,
            f"{d.id}: {t['caterpillar']} {year}", language))
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
    return section


def run_chart_section(d: Definition, mine: pl.DataFrame, year: int, rule: SmallNumberRule,
                      language: str, charts: ChartData) -> dict:
    """Monthly national and regional values over the report year and the two before it."""
    value = "median" if d.type == "median" else "proportion"
    months = mine.filter(
        pl.col("period_type") == "month", pl.col("level").is_in(["national", "region"]),
        pl.col("period").str.slice(0, 4).cast(pl.Int32).is_between(year - 2, year))
    months = months.filter(~pl.col("suppressed")).select(
        "level", "unit_code", "unit_name", "period", pl.col(value).alias("value"))
    signals, centres = [], {}
    for (code, name), series in months.sort("period").group_by(["unit_code", "unit_name"],
                                                                maintain_order=True):
        result = anhoej(series["value"].to_numpy())
        centres[name] = result.centre
        signals.append({"indicator_id": d.id, "unit_code": code, "unit_name": name,
                        "centre": result.centre, "points": result.useful_points,
                        "longest_run": result.longest_run, "longest_run_max": result.longest_run_max,
                        "crossings": result.crossings, "crossings_min": result.crossings_min,
                        "shift": result.shift, "too_few_crossings": result.too_few_crossings})
    if months.is_empty():
        return {"figure": None, "signals": []}
    charts.run_points.append(months.with_columns(pl.lit(d.id).alias("indicator_id")))
    charts.run_signals.append(pl.DataFrame(signals))
    figure = figures.run_chart(months, centres, f"{d.id}: {TEXT[language]['run_chart']}",
                               language, percent_axis=value == "proportion")
    return {"figure": figure, "signals": signals}


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


def validation_by_hospital(con, group: str) -> list[dict]:
    sources = SOURCES_OF[group]
    loaded = " UNION ALL ".join(
        f"SELECT {'hospital_code' if s != 'cardiac_rehab_municipal' else 'CAST(municipality_code AS VARCHAR)'}"
        f" AS unit_code FROM {s}" for s in sources)
    rows = con.sql(f"""
        WITH loaded AS (SELECT unit_code, count(*) AS rows_loaded FROM ({loaded}) GROUP BY 1),
        rejected AS (
            SELECT coalesce(hospital_code, municipality_code) AS unit_code,
                   count(DISTINCT (file_id, row_number)) AS rows_quarantined
            FROM quarantine WHERE source IN ({', '.join(repr(s) for s in sources)}) GROUP BY 1)
        SELECT coalesce(l.unit_code, r.unit_code) AS unit_code,
               coalesce(rows_loaded, 0) AS rows_loaded, coalesce(rows_quarantined, 0) AS rows_quarantined
        FROM loaded l FULL JOIN rejected r ON l.unit_code = r.unit_code
        ORDER BY unit_code""").fetchall()
    return [{"unit_code": u, "rows_loaded": a, "rows_quarantined": b} for u, a, b in rows]


def write_tables(folder: Path, definitions: list[Definition], published: pl.DataFrame, year: int,
                 rule: SmallNumberRule) -> pl.DataFrame:
    """The published tables of the year: Parquet (hidden numbers null, ``suppression``
    saying why), CSV and an Excel sheet per indicator (hidden numbers as '<5' or '..')."""
    ids = [d.id for d in definitions]
    published = published.filter(pl.col("indicator_id").is_in(ids),
                                 pl.col("period").str.slice(0, 4) == str(year))
    published.write_parquet(folder / "indicator_results_published.parquet")
    text = as_text(published, rule)
    text.write_csv(folder / "indicator_results_published.csv")
    with xlsxwriter.Workbook(folder / "indicator_results.xlsx") as workbook:
        for indicator in ids:
            sheet = text.filter(pl.col("indicator_id") == indicator)
            sheet.write_excel(workbook=workbook, worksheet=indicator[:31], autofit=True)
    return published


def publishable(con, results: pl.DataFrame, definitions: list[Definition], year: int,
                rule: SmallNumberRule) -> pl.DataFrame:
    """The report year and the two before it (their months feed the run charts), after
    the small-number rule and complementary suppression: one pattern for all artefacts."""
    ids = [d.id for d in definitions]
    years = [str(y) for y in range(year - 2, year + 1)]
    return rule.suppress(results.filter(pl.col("indicator_id").is_in(ids),
                                        pl.col("period").str.slice(0, 4).is_in(years)),
                         Hierarchy.from_warehouse(con))


def build(con, results: pl.DataFrame, definitions: list[Definition], year: int, output: Path,
          language: str = "da", rule: SmallNumberRule = SmallNumberRule()) -> list[Path]:
    """One folder per registry under ``output``; returns the HTML reports."""
    env = Environment(loader=PackageLoader("reports", "templates"),
                      autoescape=select_autoescape(["html"]))
    template = env.get_template("annual_report.html.j2")
    plotly_js = plotly.offline.get_plotlyjs()
    written = []
    groups: dict[str, list[Definition]] = {}
    for d in sorted(definitions, key=lambda d: d.id):
        groups.setdefault(report_group(d), []).append(d)
    published = publishable(con, results, definitions, year, rule)
    for group, members in groups.items():
        folder = output / group
        folder.mkdir(parents=True, exist_ok=True)
        charts = ChartData.empty()
        sections = {d.id: indicator_section(d, published, year, rule, language, charts)
                    for d in members}
        for section in sections.values():
            section["figure_html"] = [
                f.to_html(full_html=False, include_plotlyjs=False,
                          div_id=f"{section['id']}-{i}", config={"displaylogo": False})
                for i, f in enumerate(section.pop("figures"))]
            section["run_chart"].pop("figure", None)
        charts.write(folder)
        write_tables(folder, members, published, year, rule)
        page = template.render(
            t=TEXT[language], language=language, year=year,
            registry=REGISTRY_TITLES[group][language],
            overview=overview(members, published, year, rule, language, sections),
            sections=[sections[d.id] for d in members],
            validation=validation_by_hospital(con, group),
            appendix=[facts(d) for d in members], plotly_js=plotly_js,
            years=(year, year - 1, year - 2), small_note=TEXT[language]["suppressed_note"],
            complementary_note=TEXT[language]["complementary_note"])
        page = mark_report(page, year, [d.id for d in members])  # audit round (issue #15)
        path = folder / "annual_report.html"
        path.write_text(page, encoding="utf-8")
        log.info("annual report %s %d: %s", group, year, path)
        written.append(path)
    return written
