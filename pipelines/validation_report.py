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
from schemas.declarations import LEVELS


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
    """Each quarantined row under every reporting unit it belongs to (its unit at each
    declared level: treating hospital, municipality of residence or delivery, clinic)."""
    parts = [f"""
        SELECT '{level.level}' AS level, {level.code} AS unit_code, * EXCLUDE (file_id)
        FROM quarantine WHERE {_known(level)}""" for level in LEVELS.units]
    return con.sql(" UNION ALL ".join(parts) +
                   " ORDER BY level, unit_code, source, file_name, row_number").pl()


def _known(level) -> str:
    """The row's delivered text names a unit of the level's reference table (whole numbers
    compared as numbers)."""
    if level.code_type == "integer":
        return (f"TRY_CAST({level.code} AS INTEGER) IN "
                f"(SELECT {level.code} FROM {level.table})")
    return f"{level.code} IN (SELECT {level.code} FROM {level.table})"


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


def _written(path: Path, write) -> None:
    """Write one file of the report; a failure (a full disk) names the file it was writing."""
    try:
        write(path)
    except OSError as problem:
        if problem.filename:
            raise
        raise OSError(problem.errno, problem.strerror, str(path)) from None


def write(con, summary: IngestSummary | None, folder: Path) -> dict:
    """validation_report.json/.md/.html and units/<level>_<code>_rejected.csv."""
    folder.mkdir(parents=True, exist_ok=True)
    report = build(con, summary)
    _written(folder / "validation_report.json", lambda path: path.write_text(
        json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8"))
    env = Environment(loader=PackageLoader("reports", "templates"),
                      autoescape=select_autoescape(["html"]))
    for suffix in ("md", "html"):
        template = env.get_template(f"validation_report.{suffix}.j2")
        _written(folder / f"validation_report.{suffix}",
                 lambda path: path.write_text(template.render(**report), encoding="utf-8"))
    units = folder / "units"
    units.mkdir(exist_ok=True)
    for old in units.glob("*_rejected.csv"):
        old.unlink()
    rejected = unit_rejections(con)
    for (level, code), rows in rejected.group_by(["level", "unit_code"]):
        _written(units / f"{level}_{code}_rejected.csv",
                 rows.drop("level", "unit_code").write_csv)
    return report
