"""The naive way, as a baseline and a cross-check: one DuckDB SQL query per indicator per level.

Definitions are translated to SQL independently of the Polars compiler, so a
test can compare the two implementations row by row.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from pipelines.definitions import (
    All, AnyOf, Criterion, Definition, Linked, Not, OnOrBefore, Within, registry_columns,
)
from pipelines.sources import SOURCES

MICROS_PER_MINUTE = 60_000_000


def _date(column: str, registry: str) -> str:
    return f"CAST({column} AS DATE)"  # a no-op on DATE columns


def criterion_sql(c: Criterion, registry: str) -> str:
    if isinstance(c, str):
        sql = " ".join(c.split())
    elif isinstance(c, Within):
        w = c.within
        if w.days is not None:
            sql = (f"({_date(w.to, registry)} - {_date(w.from_, registry)}) "
                   f"BETWEEN 0 AND {w.days}")
        else:
            minutes = w.minutes if w.minutes is not None else w.hours * 60
            sql = (f"(epoch_us({w.to}) - epoch_us({w.from_})) "
                   f"BETWEEN 0 AND {minutes * MICROS_PER_MINUTE}")
    elif isinstance(c, OnOrBefore):
        b = c.on_or_before
        sql = f"{_date(b.event, registry)} <= {_date(b.anchor, registry)} + {b.days}"
    elif isinstance(c, All):
        sql = " AND ".join(criterion_sql(x, registry) for x in c.all)
    elif isinstance(c, AnyOf):
        sql = " OR ".join(criterion_sql(x, registry) for x in c.any)
    elif isinstance(c, Not):
        sql = f"NOT {criterion_sql(c.not_, registry)}"
    elif isinstance(c, Linked):
        link = c.linked
        sql = (f"EXISTS (SELECT 1 FROM {link.registry} l WHERE l.{link.key} = r.record_id "
               f"AND {criterion_sql(link.where, link.registry)})")
    else:
        raise TypeError(c)
    return f"coalesce(({sql}), false)"


def _period(registry: str) -> str:
    return _date(SOURCES[registry].period_column, registry)


def _unit(level: str, registry: str) -> str:
    by_hospital = SOURCES[registry].hospital_column is not None
    units = SOURCES[registry].unit_columns
    if level == "region" and SOURCES[registry].region_from not in ("hospital", "municipality"):
        return "CAST(unit_region AS VARCHAR)"  # a declared level such as the clinic
    if level not in ("national", "region", "hospital", "municipality"):
        return f"CAST({units[level]} AS VARCHAR)"
    return {"national": "'DK'",
            "region": "CAST(hospital_region AS VARCHAR)" if by_hospital
            else "CAST(municipality_region AS VARCHAR)",
            "hospital": "hospital_code",
            "municipality": "CAST(municipality_code AS VARCHAR)"}[level]


def flags_sql(d: Definition, cutoff: dt.date) -> str:
    """One row per counted record with its period date, den/num/missing flags and units."""
    r = d.registry
    parts = [criterion_sql(d.population, r)] + [criterion_sql(x, r) for x in d.denominator]
    parts += [f"NOT {criterion_sql(x, r)}" for x in d.exclusions]
    if d.follow_up:
        parts.append(f"{_date(d.follow_up.from_, r)} + {d.follow_up.days} <= DATE '{cutoff}'")
    value = "NULL"
    if d.median_minutes:
        value = (f"(epoch_us({d.median_minutes.to}) - epoch_us({d.median_minutes.from_}))"
                 f" / {MICROS_PER_MINUTE}")
        parts.append(f"{value} IS NOT NULL")
    numerator = criterion_sql(d.numerator, r) if d.numerator is not None else "false"
    missing = "false"
    if d.missing_field:
        f = d.missing_field
        missing = f"({f} IS NULL" + (f" OR lower({f}) = 'uoplyst')"
                                     if registry_columns(r)[f] == pl.String else ")")
    hospital = "h.region_code AS hospital_region," if SOURCES[r].hospital_column else ""
    hospital_join = ("LEFT JOIN hospitals h ON h.hospital_code = r.hospital_code"
                     if SOURCES[r].hospital_column else "")
    source = SOURCES[r]
    if source.region_from not in ("hospital", "municipality"):  # e.g. clinic, via a level
        from schemas.declarations import LEVELS

        hospital += " u.region AS unit_region,"
        hospital_join += (f" LEFT JOIN ({LEVELS.region_sql(source.region_from)}) AS u(code, "
                          f"region) ON u.code = CAST(r.{source.region_column} AS VARCHAR)")
    return f"""
        SELECT r.*, {_period(r)} AS period_date, {hospital}
               m.region_code AS municipality_region,
               {" AND ".join(parts)} AS den, {numerator} AS num, {missing} AS mis,
               {value} AS value
        FROM {r} r {hospital_join}
        LEFT JOIN municipalities m ON m.municipality_code = r.municipality_code
        WHERE {_period(r)} <= DATE '{cutoff}'"""


def completeness_flags_sql(d: Definition, cutoff: dt.date) -> str:
    m = d.completeness
    same = " AND ".join(f"s.{c} = c.{c}" for c in m.same)
    return f"""
        WITH contacts AS (
            SELECT DISTINCT {", ".join(m.same)}, CAST(admission_at AS DATE) AS period_date
            FROM lpr WHERE {criterion_sql(d.population, "lpr")}
              AND CAST(admission_at AS DATE) <= DATE '{cutoff}')
        SELECT c.*, h.region_code AS hospital_region, NULL AS municipality_region,
               NULL AS municipality_code, true AS den, false AS mis, NULL AS value,
               EXISTS (SELECT 1 FROM {m.registry} s WHERE {same}
                       AND abs({_date(SOURCES[m.registry].period_column, m.registry)}
                               - c.period_date) <= {m.days}) AS num
        FROM contacts c LEFT JOIN hospitals h ON h.hospital_code = c.hospital_code"""


def query(d: Definition, level: str, cutoff: dt.date) -> str:
    flags = completeness_flags_sql(d, cutoff) if d.completeness else flags_sql(d, cutoff)
    registry = "lpr" if d.completeness else d.registry
    median = "median(value) FILTER (WHERE den)" if d.median_minutes else "NULL"
    return f"""
        WITH flagged AS ({flags})
        SELECT '{d.id}' AS indicator_id,
               CASE WHEN month IS NULL THEN 'year' ELSE 'month' END AS period_type,
               coalesce(month, year) AS period, '{level}' AS level, unit_code,
               count(*) FILTER (WHERE den AND num) AS numerator,
               count(*) FILTER (WHERE den) AS denominator,
               count(*) FILTER (WHERE den AND mis) AS missing,
               {median} AS median
        FROM (SELECT *, {_unit(level, registry)} AS unit_code,
                     strftime(period_date, '%Y-%m') AS month,
                     strftime(period_date, '%Y') AS year FROM flagged)
        GROUP BY GROUPING SETS ((unit_code, month), (unit_code, year))
        HAVING count(*) FILTER (WHERE den) > 0"""


def compute(con, definitions: list[Definition], cutoff: dt.date) -> pl.DataFrame:
    frames = []
    for d in definitions:
        for level in d.levels:
            frames.append(pl.from_arrow(con.sql(query(d, level, cutoff)).to_arrow_table()))
    return pl.concat(frames, how="vertical_relaxed")
