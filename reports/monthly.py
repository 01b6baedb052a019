"""Monthly deliveries: a folder per reporting unit with its own results and records.

A unit sees only its own patients: its results (not suppressed: they are its
own), its region and the nation for comparison (small-number rule and
complementary suppression applied, with the pattern of the whole year, the same
as in the annual report), run charts over the last 12 months, its own records
that do not meet each indicator with the reason in words, and its own
quarantined rows with the rule and how to correct it. No CPR, no pseudonym.

Each folder's ``index.html`` (``index.<language>.html`` for another language than
Danish, with ``records_not_meeting.<language>.csv``) is rendered from the folder's own files by
``reports.unit_page.render`` (the portal serves the same page); the delivery's
``index.html`` links every unit's page.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import plotly.offline
import polars as pl

from pipelines import validation_report
from pipelines.definitions import Definition
from pipelines.engine import denominator_records
from pipelines.intervals import with_intervals
from reports import releases, unit_page
from reports.annual import _standard_text, file_name, interval_method
from reports.reasons import listed, reasons
from reports.run_chart import anhoej
from reports.suppression import (Hierarchy, SmallNumberRule, as_text, shared_counts,
                                 without_hidden_national)
from schemas.declarations import LEVELS

log = logging.getLogger("kvalitet.reports")

WINDOWS = ("month", "year_to_date", "last_12_months")


def last_months(month: str, count: int = 12) -> list[str]:
    year, number = int(month[:4]), int(month[5:7])
    out = []
    for _ in range(count):
        out.append(f"{year:04d}-{number:02d}")
        year, number = (year - 1, 12) if number == 1 else (year, number - 1)
    return sorted(out)


def _share_plotly(shared: Path, folder: Path) -> None:
    """Each folder is self-contained; a hard link costs no disk where the system allows it."""
    target = folder / "plotly.min.js"
    target.unlink(missing_ok=True)
    try:
        os.link(shared, target)
    except OSError:
        shutil.copyfile(shared, target)


def comparison_rows(con, results: pl.DataFrame, months: list[str],
                    rule: SmallNumberRule, linked: list[tuple[str, str]] = ()) -> pl.DataFrame:
    """National and regional months of the window, suppressed with the pattern of their
    whole years (every level and month), so they hide what the annual report hides."""
    years = sorted({m[:4] for m in months})
    mine = results.filter(pl.col("period").str.slice(0, 4).is_in(years))
    whole = rule.suppress(mine, Hierarchy.from_warehouse(con), linked, releases.earlier(con))
    shown = whole.filter(pl.col("period_type") == "month", pl.col("period").is_in(months),
                         pl.col("level").is_in(["national", "region"]))
    releases.record(con, f"monthly {months[-1]}", mine, shown)
    return shown


def window_months(month: str, months: list[str]) -> dict[str, list[str]]:
    return {"month": [month], "year_to_date": [m for m in months if m[:4] == month[:4]],
            "last_12_months": months}


def summary(table: pl.DataFrame, month: str, months: list[str], method: str,
            rule: SmallNumberRule) -> pl.DataFrame:
    """Per indicator, role (unit, region, national) and window (this month, year to date,
    last 12 months): counts, proportion and interval. A window of the region or nation
    that holds a hidden month is hidden too (else its sum less the shown months would
    give the hidden one); a median is not summed over months."""
    rows = []
    for (indicator, role, name), group in table.group_by(["indicator_id", "role", "unit_name"],
                                                         maintain_order=True):
        is_median = group["median"].is_not_null().any()
        for window, members in window_months(month, months).items():
            part = group.filter(pl.col("period").is_in(members))
            row = {"indicator_id": indicator, "role": role, "unit_name": name, "window": window,
                   "numerator": None, "denominator": None, "missing": None, "median": None,
                   "hidden": None}
            if part.is_empty():
                rows.append(row)
                continue
            hidden = part.filter(pl.col("suppressed"))
            if hidden.height:
                small = (hidden["suppression"] == "small").all() and part.height == 1
                row["hidden"] = rule.shown_as if small else rule.complementary_shown_as
            elif is_median:
                if window == "month":
                    row.update(denominator=int(part["denominator"].sum()),
                               median=part["median"][0])
            else:
                row.update(numerator=int(part["numerator"].sum()),
                           denominator=int(part["denominator"].sum()),
                           missing=int(part["missing"].sum()))
            rows.append(row)
    frame = pl.DataFrame(rows, schema={"indicator_id": pl.String, "role": pl.String,
                                       "unit_name": pl.String, "window": pl.String,
                                       "numerator": pl.Int64, "denominator": pl.Int64,
                                       "missing": pl.Int64, "median": pl.Float64,
                                       "hidden": pl.String})
    frame = frame.with_columns(
        pl.when(pl.col("denominator") > 0).then(pl.col("numerator") / pl.col("denominator"))
        .alias("proportion"))
    return with_intervals(frame.with_columns(pl.col("denominator").fill_null(0)), method) \
        .with_columns(pl.when(pl.col("hidden").is_null() & (pl.col("numerator").is_not_null()
                                                             | pl.col("median").is_not_null()))
                      .then(pl.col("denominator")).alias("denominator"))


def indicator_facts(definitions: list[Definition], language: str) -> list[dict]:
    return [{"id": d.id, "standard": d.standard.value, "standard_text": _standard_text(d, language),
             "lower_is_better": d.standard.lower_is_better, "is_median": d.type == "median"}
            for d in definitions]


def build(con, results: pl.DataFrame, definitions: list[Definition], month: str, cutoff,
          output: Path, language: str = "da", rule: SmallNumberRule | None = None
          ) -> list[Path]:
    """The month is written to a hidden folder beside ``output`` and renamed into place
    (reports/publish.py): the portal never sees half a month."""
    from reports.publish import publish_atomically

    def write(staging: Path) -> list[Path]:
        folders = _build(con, results, definitions, month, cutoff, staging, language, rule)
        _keep_other_languages(output, staging, language)
        return folders

    folders = publish_atomically(output, write)
    log.info("monthly deliveries %s: %d units in %s", month, len(folders), output)
    return [output / folder.name for folder in folders]


def _keep_other_languages(published: Path, staging: Path, language: str) -> None:
    """Each language is its own file (index.en.html beside index.html): a delivery written in
    one language keeps the files of the others already published for the same units (a unit
    no longer delivered goes, with all its files)."""
    from reports.labels import REFERENCE_LANGUAGE, languages

    if not published.is_dir():
        return
    others = set(languages()) - {language}
    for path in published.rglob("*"):
        relative = path.relative_to(published)
        target = staging / relative
        if not path.is_file() or target.exists() or not target.parent.is_dir():
            continue
        infix = path.suffixes[-2][1:] if len(path.suffixes) >= 2 else None
        mine = infix == language or (infix not in others and language == REFERENCE_LANGUAGE)
        if not mine:
            shutil.copy2(path, target)


def _build(con, results: pl.DataFrame, definitions: list[Definition], month: str, cutoff,
           output: Path, language: str = "da", rule: SmallNumberRule | None = None
           ) -> list[Path]:
    rule = rule or SmallNumberRule.from_environment()
    months = last_months(month)
    method = interval_method(results)
    output.mkdir(parents=True, exist_ok=True)
    shared = output / "plotly.min.js"
    shared.write_text(plotly.offline.get_plotlyjs(), encoding="utf-8")
    window = results.filter(pl.col("period_type") == "month", pl.col("period").is_in(months))
    comparison = comparison_rows(
        con, results.filter(pl.col("indicator_id").is_in([d.id for d in definitions])), months,
        rule, shared_counts(definitions))
    records = listed(denominator_records(con, definitions, cutoff, month), definitions)
    records = reasons(con, definitions, records, language)  # once, not per unit
    rejected = validation_report.unit_rejections(con)
    regions = {level: dict(con.sql(LEVELS.region_sql(level)).fetchall())
               for level in LEVELS.levels}
    region_names = dict(con.sql("SELECT CAST(region_code AS VARCHAR), region_name FROM regions")
                        .fetchall())
    facts = indicator_facts(definitions, language)
    folders, units = [], []
    for level in LEVELS.levels:  # every declared unit level: hospital, municipality, clinic
        own_level = window.filter(pl.col("level") == level)
        for (code,), own in own_level.group_by(["unit_code"], maintain_order=True):
            folder = output / f"{level}_{code}"
            folder.mkdir(exist_ok=True)
            for old in ("run_charts.html",):  # the page before index.html
                (folder / old).unlink(missing_ok=True)
            region = regions[level].get(code)
            context = comparison.filter(
                pl.col("indicator_id").is_in(own["indicator_id"].unique().implode()),
                (pl.col("level") == "national")
                | ((pl.col("level") == "region") & (pl.col("unit_code") == region)))
            own = without_hidden_national(own, comparison)
            table = pl.concat([own.with_columns(pl.lit(False).alias("suppressed"),
                                                pl.lit(None, pl.String).alias("suppression")),
                               context], how="diagonal_relaxed").sort("indicator_id", "period",
                                                                      "level")
            table.write_parquet(folder / "results.parquet")
            as_text(table, rule).write_csv(folder / "results.csv")
            roles = table.with_columns(pl.col("level").replace({level: "unit"}).alias("role"))
            summary(roles, month, months, method, rule).write_parquet(folder / "summary.parquet")
            value = pl.coalesce("median", "proportion")
            series = roles.filter(~pl.col("suppressed")).select(
                "indicator_id", "period", "unit_name", "role", value.alias("value"))
            signals = []
            for (indicator,), points in series.filter(pl.col("role") == "unit").group_by(
                    ["indicator_id"], maintain_order=True):
                values = pl.DataFrame({"period": months}).join(
                    points, on="period", how="left", maintain_order="left")["value"]
                result = anhoej(values.cast(pl.Float64).to_numpy())
                signals.append({"indicator_id": indicator, "centre": result.centre,
                                "points": result.useful_points, "longest_run": result.longest_run,
                                "longest_run_max": result.longest_run_max,
                                "crossings": result.crossings, "crossings_min": result.crossings_min,
                                "shift": result.shift, "too_few_crossings": result.too_few_crossings})
            pl.DataFrame(signals).write_parquet(folder / "run_chart_signals.parquet")
            series.write_parquet(folder / "run_chart_points.parquet")
            key = LEVELS.levels[level].code
            mine = (records.filter(pl.col(key) == code) if not records.is_empty()
                    else pl.DataFrame(schema={"indicator_id": pl.String, "record_id": pl.String,
                                              "month": pl.String, "reason": pl.String}))
            (mine.select("indicator_id", "record_id", pl.col("month").alias("period"), "reason")
             .sort("indicator_id", "record_id")
             .write_csv(folder / file_name("records_not_meeting", ".csv", language)))
            (rejected.filter(pl.col("level") == level, pl.col("unit_code") == code)
             .drop("level").write_csv(folder / "quarantined_rows.csv"))
            name = own["unit_name"][0]
            meta = {"level": level, "code": code, "name": name, "month": month,
                    "months": months, "region": region_names.get(region),
                    "language": language, "interval_method": method,
                    "small_number_rule": {"minimum": rule.minimum, "maximum": rule.maximum,
                                          "shown_as": rule.shown_as,
                                          "complementary_shown_as": rule.complementary_shown_as},
                    "indicators": [f for f in facts if f["id"] in
                                   set(own["indicator_id"].to_list())]}
            (folder / "unit.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1),
                                              encoding="utf-8")
            _share_plotly(shared, folder)
            page = file_name("index", ".html", language)
            (folder / page).write_text(unit_page.render(folder, language), encoding="utf-8")
            folders.append(folder)
            units.append({"level": level, "name": name, "href": f"{folder.name}/{page}",
                          "region": region_names.get(region) or ""})
    shared.unlink()
    (output / file_name("index", ".html", language)).write_text(
        unit_page.render_landing(units, month, language), encoding="utf-8")
    return folders
