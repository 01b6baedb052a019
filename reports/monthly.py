"""Monthly deliveries: a folder per reporting unit with its own results and records.

A unit sees only its own patients: its results (not suppressed: they are its
own), its region and the nation for comparison (small-number rule and
complementary suppression applied, with the pattern of the whole year, the same
as in the annual report),
run charts over the last 12 months, the record_ids of its own records that do
not meet each indicator, and its own quarantined rows. No CPR, no pseudonym.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import plotly.offline
import polars as pl
from plotly.subplots import make_subplots

from pipelines import validation_report
from pipelines.definitions import Definition
from pipelines.engine import denominator_records
from reports.figures import OKABE_ITO
from reports.labels import TEXT
from reports.run_chart import anhoej
from reports.suppression import Hierarchy, SmallNumberRule, as_text

log = logging.getLogger("kvalitet.reports")


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
    try:
        os.link(shared, target)
    except OSError:
        shutil.copyfile(shared, target)


def unit_figure(rows: pl.DataFrame, unit_name: str, titles: dict[str, str], language: str):
    indicators = sorted(rows["indicator_id"].unique().to_list())
    columns = 2
    fig = make_subplots(rows=(len(indicators) + 1) // columns, cols=columns,
                        subplot_titles=[f"{i}: {titles[i]}" for i in indicators],
                        vertical_spacing=0.06)
    for k, indicator in enumerate(indicators):
        r, c = k // columns + 1, k % columns + 1
        for j, (level, group) in enumerate(rows.filter(pl.col("indicator_id") == indicator)
                                           .sort("period").group_by("role", maintain_order=True)):
            fig.add_trace(dict(type="scatter", x=group["period"].to_list(),
                               y=group["value"].to_list(), mode="lines+markers",
                               name=group["unit_name"][0], legendgroup=level[0],
                               showlegend=k == 0, line={"color": OKABE_ITO[j]}), row=r, col=c)
    fig.update_layout(height=300 * ((len(indicators) + 1) // columns), template="plotly_white",
                      title={"text": f"{unit_name}: {TEXT[language]['run_chart']}", "x": 0},
                      legend={"orientation": "h"})
    return fig


def comparison_rows(con, results: pl.DataFrame, months: list[str],
                    rule: SmallNumberRule) -> pl.DataFrame:
    """National and regional months of the window, suppressed with the pattern of their
    whole years (every level and month), so they hide what the annual report hides."""
    years = sorted({m[:4] for m in months})
    whole = rule.suppress(results.filter(pl.col("period").str.slice(0, 4).is_in(years)),
                          Hierarchy.from_warehouse(con))
    return whole.filter(pl.col("period_type") == "month", pl.col("period").is_in(months),
                        pl.col("level").is_in(["national", "region"]))


def build(con, results: pl.DataFrame, definitions: list[Definition], month: str, cutoff,
          output: Path, language: str = "da", rule: SmallNumberRule | None = None
          ) -> list[Path]:
    """The month is written to a hidden folder beside ``output`` and renamed into place
    (reports/publish.py): the portal never sees half a month."""
    from reports.publish import publish_atomically

    folders = publish_atomically(output, lambda staging: _build(
        con, results, definitions, month, cutoff, staging, language, rule))
    return [output / folder.name for folder in folders]


def _build(con, results: pl.DataFrame, definitions: list[Definition], month: str, cutoff,
           output: Path, language: str = "da", rule: SmallNumberRule | None = None
           ) -> list[Path]:
    rule = rule or SmallNumberRule.from_environment()
    months = last_months(month)
    output.mkdir(parents=True, exist_ok=True)
    shared = output / "plotly.min.js"
    shared.write_text(plotly.offline.get_plotlyjs(), encoding="utf-8")
    titles = {d.id: (d.title.da if language == "da" else d.title.en) for d in definitions}
    window = results.filter(pl.col("period_type") == "month", pl.col("period").is_in(months))
    comparison = comparison_rows(
        con, results.filter(pl.col("indicator_id").is_in([d.id for d in definitions])), months,
        rule)
    records = denominator_records(con, definitions, cutoff, month)
    rejected = validation_report.unit_rejections(con)
    regions = {
        "hospital": dict(con.sql("SELECT hospital_code, CAST(region_code AS VARCHAR) FROM hospitals").fetchall()),
        "municipality": dict(con.sql("SELECT CAST(municipality_code AS VARCHAR), "
                                     "CAST(region_code AS VARCHAR) FROM municipalities").fetchall()),
    }
    folders = []
    for level in ("hospital", "municipality"):
        own_level = window.filter(pl.col("level") == level)
        for (code,), own in own_level.group_by(["unit_code"], maintain_order=True):
            folder = output / f"{level}_{code}"
            folder.mkdir(exist_ok=True)
            region = regions[level].get(code)
            context = comparison.filter(
                pl.col("indicator_id").is_in(own["indicator_id"].unique().implode()),
                (pl.col("level") == "national")
                | ((pl.col("level") == "region") & (pl.col("unit_code") == region)))
            table = pl.concat([own.with_columns(pl.lit(False).alias("suppressed"),
                                                pl.lit(None, pl.String).alias("suppression")),
                               context], how="diagonal_relaxed").sort("indicator_id", "period",
                                                                      "level")
            table.write_parquet(folder / "results.parquet")
            as_text(table, rule).write_csv(folder / "results.csv")
            value = pl.coalesce("median", "proportion")
            series = table.filter(~pl.col("suppressed")).select(
                "indicator_id", "period", "unit_name",
                pl.col("level").replace({level: "unit"}).alias("role"), value.alias("value"))
            signals = []
            for (indicator,), points in series.filter(pl.col("role") == "unit").group_by(
                    ["indicator_id"], maintain_order=True):
                result = anhoej(points.sort("period")["value"].to_numpy())
                signals.append({"indicator_id": indicator, "centre": result.centre,
                                "points": result.useful_points, "longest_run": result.longest_run,
                                "longest_run_max": result.longest_run_max,
                                "crossings": result.crossings, "crossings_min": result.crossings_min,
                                "shift": result.shift, "too_few_crossings": result.too_few_crossings})
            pl.DataFrame(signals).write_parquet(folder / "run_chart_signals.parquet")
            series.write_parquet(folder / "run_chart_points.parquet")
            _share_plotly(shared, folder)  # before Plotly, which else writes its own copy
            figure = unit_figure(series, own["unit_name"][0], titles, language)
            figure.write_html(folder / "run_charts.html", include_plotlyjs="directory",
                              config={"displaylogo": False})
            key = "hospital_code" if level == "hospital" else "municipality_code"
            if not records.is_empty():
                (records.filter(pl.col(key) == code, ~pl.col("meets_numerator"))
                 .select("indicator_id", "record_id", pl.col("month").alias("period"))
                 .sort("indicator_id", "record_id")
                 .write_csv(folder / "records_not_meeting.csv"))
            (rejected.filter(pl.col("level") == level, pl.col("unit_code") == code)
             .drop("level").write_csv(folder / "quarantined_rows.csv"))
            folders.append(folder)
    shared.unlink()
    log.info("monthly deliveries %s: %d units in %s", month, len(folders), output)
    return folders
