"""What a unit page shows, as tables of text: the page, its CSV files and its Excel
workbook are built from the same tables, so a download holds exactly what the page shows.

Tables: this month, year to date, the last 12 months against region, nation and
standard (also drawn as run charts), the unit's records not meeting each indicator
(with the indicator as the reason) and its own rejected rows. Region and nation
values are the delivery's (small-number rule and complementary suppression applied
by the pipeline); a hidden value shows as '<5' or '..'.
"""

from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import yaml

from reports.portal.published import Delivery, Unit
from reports.portal.scrub import scrub

TOO_FEW = 5  # a year-to-date denominator below this is "too few" to judge the standard
HIDDEN = {"small": "<5", "complementary": "..", "omitted": ".."}
PREFIX = "page_"  # the page's own tables as CSV: page_this_month.csv ...
TABLES = {
    "this_month": "Denne måned",
    "year_to_date": "År til dato",
    "last_12_months": "Seneste 12 måneder",
    "records_not_meeting": "Egne forløb der ikke opfylder indikatoren",
    "rejected_rows": "Egne afviste rækker",
}
# Columns a download never carries, whatever a future delivery holds.
NEVER = {"cpr", "pseudonym", "patient_id", "person_id"}


@dataclass(frozen=True)
class Indicator:
    id: str
    title: str
    is_median: bool
    standard: float | None
    lower_is_better: bool


@functools.lru_cache(maxsize=4)
def indicators(folder: Path | None = None) -> dict[str, Indicator]:
    """Titles, type and standard from the indicator definitions (YAML, read only)."""
    from pipelines.settings import INDICATORS_DIR

    out = {}
    for path in sorted(Path(folder or INDICATORS_DIR).rglob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        if not isinstance(data, dict) or "id" not in data:
            continue
        title = data.get("title") or {}
        standard = data.get("standard") or {}
        out[str(data["id"])] = Indicator(
            id=str(data["id"]), title=str(title.get("da") or title.get("en") or data["id"]),
            is_median=data.get("type") == "median",
            standard=standard.get("value"),
            lower_is_better=standard.get("direction") == "lower_is_better")
    return out


def _title(indicator_id: str) -> str:
    found = indicators().get(indicator_id)
    return found.title if found else indicator_id


def number(value, decimals: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{decimals}f}".replace(",", "\u00a0").replace(".", ",")


def percent(value) -> str:
    return "–" if value is None else f"{number(value * 100)}\u00a0%"


def shown(row: dict | None, is_median: bool) -> str:
    """A result's value as the page shows it."""
    if row is None:
        return "–"
    if row.get("suppressed"):
        return HIDDEN.get(row.get("suppression") or "", "..")
    return number(row.get("median")) if is_median else percent(row.get("proportion"))


def standard_text(indicator: Indicator | None) -> str:
    if indicator is None or indicator.standard is None:
        return "–"
    sign = "≤" if indicator.lower_is_better else "≥"
    value = number(indicator.standard, 0) + " min" if indicator.is_median else percent(
        indicator.standard)
    return f"{sign} {value}"


def met_text(met) -> str:
    return "–" if met is None else ("ja" if met else "nej")


def meets(value: float | None, indicator: Indicator | None) -> bool | None:
    if value is None or indicator is None or indicator.standard is None:
        return None
    return value <= indicator.standard if indicator.lower_is_better else (
        value >= indicator.standard)


def _rows(delivery: Delivery, level: str, period: str) -> dict[str, dict]:
    frame = delivery.results
    if frame.is_empty():
        return {}
    if level == delivery.unit.level:
        frame = frame.filter(pl.col("level") == level, pl.col("unit_code") == delivery.unit.code)
    else:
        frame = frame.filter(pl.col("level") == level)
    frame = frame.filter(pl.col("period_type") == "month", pl.col("period") == period)
    return {r["indicator_id"]: r for r in frame.iter_rows(named=True)}


def indicator_ids(delivery: Delivery) -> list[str]:
    if delivery.results.is_empty():
        return []
    own = delivery.results.filter(pl.col("level") == delivery.unit.level)
    return sorted(own["indicator_id"].unique().to_list())


def year_to_date(delivery: Delivery, level: str) -> dict[str, dict]:
    """Numerator and denominator summed over the months of the year up to the delivery
    month; None where a month is hidden (a sum must not undo the suppression)."""
    frame = delivery.results
    if frame.is_empty():
        return {}
    year = delivery.month[:4]
    frame = frame.filter(pl.col("period_type") == "month", pl.col("level") == level,
                         pl.col("period").str.slice(0, 4) == year,
                         pl.col("period") <= delivery.month)
    if level == delivery.unit.level:
        frame = frame.filter(pl.col("unit_code") == delivery.unit.code)
    out = {}
    for (indicator_id,), rows in frame.group_by(["indicator_id"]):
        hidden = bool(rows["suppressed"].any()) if "suppressed" in rows.columns else False
        numerator, denominator = rows["numerator"].sum(), rows["denominator"].sum()
        out[indicator_id] = {"hidden": hidden, "numerator": None if hidden else numerator,
                             "denominator": None if hidden else denominator,
                             "proportion": None if hidden or not denominator
                             else numerator / denominator}
    return out


def status(delivery: Delivery) -> dict[str, str]:
    """Per indicator for the overviews: 'met', 'not_met' or 'too_few' (year to date;
    for a median indicator, the delivery month)."""
    info = indicators()
    ytd = year_to_date(delivery, delivery.unit.level)
    month = _rows(delivery, delivery.unit.level, delivery.month)
    out = {}
    for indicator_id in indicator_ids(delivery):
        indicator = info.get(indicator_id)
        if indicator is not None and indicator.is_median:
            row = month.get(indicator_id)
            if row is None or (row.get("denominator") or 0) < TOO_FEW:
                out[indicator_id] = "too_few"
            else:
                out[indicator_id] = "met" if row.get("standard_met") else "not_met"
            continue
        total = ytd.get(indicator_id)
        if total is None or (total["denominator"] or 0) < TOO_FEW:
            out[indicator_id] = "too_few"
            continue
        met = meets(total["proportion"], indicator)
        out[indicator_id] = "too_few" if met is None else ("met" if met else "not_met")
    return out


def tables(delivery: Delivery) -> dict[str, pl.DataFrame]:
    """Every table the unit page shows, as text, in page order (cached per delivery)."""
    if "tables" in delivery.cache:
        return delivery.cache["tables"]
    info = indicators()
    unit, month = delivery.unit, delivery.month
    ids = indicator_ids(delivery)
    own, region, nation = (_rows(delivery, unit.level, month), _rows(delivery, "region", month),
                           _rows(delivery, "national", month))
    this_month = []
    for i in ids:
        d, r = info.get(i), own.get(i)
        median = bool(d and d.is_median)
        this_month.append({
            "indikator": i, "titel": _title(i),
            "tæller": "–" if r is None or median else number(r["numerator"], 0),
            "nævner": "–" if r is None else number(r["denominator"], 0),
            "resultat": shown(r, median),
            "95 % CI": "–" if r is None or r.get("ci_low") is None else
            f"{percent(r['ci_low'])} – {percent(r['ci_high'])}",
            "standard": standard_text(d),
            "standard opfyldt": met_text(None if r is None else r.get("standard_met")),
            "region": shown(region.get(i), median), "landsplan": shown(nation.get(i), median)})
    ytd_own, ytd_region, ytd_nation = (year_to_date(delivery, unit.level),
                                       year_to_date(delivery, "region"),
                                       year_to_date(delivery, "national"))

    def ytd_text(total: dict | None, median: bool) -> str:
        if median or total is None:
            return "–"
        return ".." if total["hidden"] else percent(total["proportion"])

    year_rows = []
    for i in ids:
        d, t = info.get(i), ytd_own.get(i)
        median = bool(d and d.is_median)
        year_rows.append({
            "indikator": i, "titel": _title(i),
            "tæller": "–" if t is None or median else number(t["numerator"], 0),
            "nævner": "–" if t is None or median else number(t["denominator"], 0),
            "resultat": ytd_text(t, median), "standard": standard_text(d),
            "standard opfyldt": "–" if t is None or median else met_text(
                meets(t["proportion"], d)),
            "region": ytd_text(ytd_region.get(i), median),
            "landsplan": ytd_text(ytd_nation.get(i), median)})
    series = []
    months = sorted(delivery.results.filter(pl.col("period_type") == "month")["period"]
                    .unique().to_list()) if not delivery.results.is_empty() else []
    for i in ids:
        median = bool(info.get(i) and info[i].is_median)
        for m in months:
            series.append({"indikator": i, "måned": m,
                           "enhed": shown(_rows_cached(delivery, unit.level, m).get(i), median),
                           "region": shown(_rows_cached(delivery, "region", m).get(i), median),
                           "landsplan": shown(_rows_cached(delivery, "national", m).get(i),
                                              median),
                           "standard": standard_text(info.get(i))})
    records = delivery.records.drop([c for c in delivery.records.columns if c.lower() in NEVER])
    if records.height and "indicator_id" in records.columns and "reason" not in records.columns:
        records = records.with_columns(
            pl.col("indicator_id").replace_strict({i: f"opfylder ikke: {_title(i)}"
                                                   for i in records["indicator_id"].unique()},
                                                  default="").alias("reason"))
    rejected = delivery.rejected.drop([c for c in delivery.rejected.columns
                                       if c.lower() in NEVER])
    out = {"this_month": _frame(this_month), "year_to_date": _frame(year_rows),
           "last_12_months": _frame(series), "records_not_meeting": _scrubbed(records),
           "rejected_rows": _scrubbed(rejected)}
    delivery.cache["tables"] = out
    return out


def _rows_cached(delivery: Delivery, level: str, period: str) -> dict[str, dict]:
    key = ("rows", level, period)
    if key not in delivery.cache:
        delivery.cache[key] = _rows(delivery, level, period)
    return delivery.cache[key]


def _frame(rows: list[dict]) -> pl.DataFrame:
    return _scrubbed(pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame())


def _scrubbed(frame: pl.DataFrame) -> pl.DataFrame:
    if frame.is_empty():
        return frame
    return frame.with_columns(
        pl.col(c).cast(pl.String).map_elements(scrub, return_dtype=pl.String)
        for c in frame.columns).rename({c: scrub(c) for c in frame.columns})


def chart_data(delivery: Delivery) -> list[dict]:
    """Per indicator the run chart's traces (unit, region, nation, standard) and signals,
    from the same rows as the 12-month table (hidden values left out)."""
    if "charts" in delivery.cache:
        return delivery.cache["charts"]
    info = indicators()
    unit = delivery.unit
    charts = []
    frame = delivery.results.filter(pl.col("period_type") == "month") if not \
        delivery.results.is_empty() else pl.DataFrame()
    signals = ({r["indicator_id"]: r for r in delivery.signals.iter_rows(named=True)}
               if not delivery.signals.is_empty() else {})
    for i in indicator_ids(delivery):
        d = info.get(i)
        value = "median" if d and d.is_median else "proportion"
        scale = 1 if value == "median" else 100
        traces = []
        for level, label in ((unit.level, unit.name), ("region", "Region"),
                             ("national", "Landsplan")):
            rows = frame.filter(pl.col("indicator_id") == i, pl.col("level") == level)
            if level == unit.level:
                rows = rows.filter(pl.col("unit_code") == unit.code)
            if "suppressed" in rows.columns:
                rows = rows.filter(~pl.col("suppressed").fill_null(False))
            rows = rows.sort("period")
            if rows.height:
                label = rows["unit_name"][0] if level != unit.level else label
            traces.append({"name": scrub(label), "x": rows["period"].to_list(),
                           "y": [None if v is None else round(v * scale, 2)
                                 for v in rows[value].to_list()]})
        signal = signals.get(i) or {}
        words = [w for w, on in (("forskydning", signal.get("shift")),
                                 ("for få krydsninger", signal.get("too_few_crossings"))) if on]
        charts.append({"id": i, "title": scrub(f"{i}: {_title(i)}"), "traces": traces,
                       "standard": None if not d or d.standard is None else
                       round(d.standard * scale, 2),
                       "unit": "min" if value == "median" else "%",
                       "signal": ", ".join(words) or "intet"})
    delivery.cache["charts"] = charts
    return charts


def csv_bytes(frame: pl.DataFrame) -> bytes:
    out = io.BytesIO()
    frame.write_csv(out)
    return out.getvalue()


def xlsx_bytes(delivery: Delivery) -> bytes:
    """The page's tables, one sheet each, in page order."""
    import xlsxwriter

    if "xlsx" in delivery.cache:
        return delivery.cache["xlsx"]
    out = io.BytesIO()
    with xlsxwriter.Workbook(out, {"in_memory": True}) as workbook:
        for name, frame in tables(delivery).items():
            sheet = workbook.add_worksheet(name[:31])
            for col, header in enumerate(frame.columns):
                sheet.write_string(0, col, header)
            for row_number, row in enumerate(frame.iter_rows(), start=1):
                for col, value in enumerate(row):
                    sheet.write_string(row_number, col, "" if value is None else str(value))
    delivery.cache["xlsx"] = out.getvalue()
    return delivery.cache["xlsx"]


def workbook_name(unit: Unit, month: str) -> str:
    return f"kvalitet_{unit.level}_{unit.code}_{month}.xlsx"
