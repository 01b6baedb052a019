"""The validation report: what was read, loaded and quarantined, per file, per rule, per unit.

Built from the warehouse (so it describes the data the results rest on) plus
this run's outcomes (files that failed or were already loaded).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from jinja2 import Environment, PackageLoader, select_autoescape

from pipelines.ingest import IngestSummary
from schemas.columns import RULES


def file_table(con) -> pl.DataFrame:
    return con.sql("""
        SELECT source, file_name, extract_date, rows_read, rows_loaded, rows_quarantined,
               encoding, delimiter, extra_columns, absent_columns
        FROM extract_files ORDER BY source, extract_date, file_name""").pl()


def rule_table(con) -> pl.DataFrame:
    return con.sql("""
        SELECT source, file_name, rule, count(*) AS broken, count(DISTINCT row_number) AS rows
        FROM quarantine GROUP BY ALL ORDER BY source, file_name, rule""").pl()


def unit_rejections(con) -> pl.DataFrame:
    """Each quarantined row under every reporting unit it belongs to (treating hospital,
    municipality of residence or delivery)."""
    return con.sql("""
        SELECT 'hospital' AS level, hospital_code AS unit_code, * EXCLUDE (file_id)
        FROM quarantine WHERE hospital_code IN (SELECT hospital_code FROM hospitals)
        UNION ALL
        SELECT 'municipality', municipality_code, * EXCLUDE (file_id)
        FROM quarantine
        WHERE TRY_CAST(municipality_code AS INTEGER) IN (SELECT municipality_code FROM municipalities)
        ORDER BY level, unit_code, source, file_name, row_number""").pl()


def build(con, summary: IngestSummary | None) -> dict:
    files = file_table(con)
    rules = rule_table(con)
    run_files = summary.as_dict()["files"] if summary else []
    return {
        "totals": {
            "files": files.height,
            "rows_read": int(files["rows_read"].sum()),
            "rows_loaded": int(files["rows_loaded"].sum()),
            "rows_quarantined": int(files["rows_quarantined"].sum()),
            "files_failed": sum(1 for f in run_files if f["status"] == "failed"),
        },
        "files": files.with_columns(pl.col("extract_date").cast(pl.String)).to_dicts(),
        "rules": rules.to_dicts(),
        "rule_descriptions": RULES,
        "this_run": run_files,
        "unrecognised": summary.unrecognised if summary else [],
    }


def write(con, summary: IngestSummary | None, folder: Path) -> dict:
    """validation_report.json/.md/.html and units/<level>_<code>_rejected.csv."""
    folder.mkdir(parents=True, exist_ok=True)
    report = build(con, summary)
    (folder / "validation_report.json").write_text(
        json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    env = Environment(loader=PackageLoader("reports", "templates"),
                      autoescape=select_autoescape(["html"]))
    for suffix in ("md", "html"):
        template = env.get_template(f"validation_report.{suffix}.j2")
        (folder / f"validation_report.{suffix}").write_text(template.render(**report),
                                                           encoding="utf-8")
    units = folder / "units"
    units.mkdir(exist_ok=True)
    for old in units.glob("*_rejected.csv"):
        old.unlink()
    rejected = unit_rejections(con)
    for (level, code), rows in rejected.group_by(["level", "unit_code"]):
        rows.drop("level", "unit_code").write_csv(units / f"{level}_{code}_rejected.csv")
    return report
