"""The indicator engine: every definition, every reporting unit, level and period.

Per registry one lazy Polars query flags each record for every indicator and
sums the flags at the finest grain (its units at every declared level x month). Levels
and years are roll-ups of that grain, so counts add up by construction;
medians (not additive) are computed from the records of each unit and period.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import polars as pl

from pipelines.criteria import CompiledDefinition, Compiler, compile_definition, link_flags
from pipelines.definitions import Definition, registry_columns
from pipelines.intervals import Method, with_intervals
from pipelines.risk_adjustment import (ModelFit, adjust, canonical_sum,
                                       expected_from_patterns, pattern_counts)
from pipelines.settings import memory_limit_bytes
from pipelines.sources import SOURCES
from pipelines.warehouse import scalar
from schemas.declarations import LEVELS as DECLARED_LEVELS

log = logging.getLogger("kvalitet.engine")

# Reporting levels as schemas/levels.yaml declares them: national, region, then the units.
LEVELS = DECLARED_LEVELS.names
UNIT_LEVELS = DECLARED_LEVELS.units
NATIONAL_CODE, NATIONAL_NAME = DECLARED_LEVELS.national.code, DECLARED_LEVELS.national.name
# A grain cell names its unit at every unit level (null where the registry has no such unit).
UNIT_COLUMNS = [level.code for level in UNIT_LEVELS]
RISK_COLUMNS = ("expected", "oe_ratio", "oe_low", "oe_high", "adjusted_proportion",
                "adjusted_low", "adjusted_high", "smoothed_proportion")
RESULT_SCHEMA: dict[str, pl.DataType] = {
    "indicator_id": pl.String, "period_type": pl.String, "period": pl.String,
    "level": pl.String, "unit_code": pl.String, "unit_name": pl.String,
    "numerator": pl.Int64, "denominator": pl.Int64, "missing": pl.Int64,
    "proportion": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64,
    "standard": pl.Float64, "standard_met": pl.Boolean, "median": pl.Float64,
    **{c: pl.Float64 for c in RISK_COLUMNS},
}
CELL = [*UNIT_COLUMNS, "month"]
GRAIN = ["indicator_id", *CELL]
# Tolerance for standard_met: a proportion equal to the standard in exact arithmetic meets it.
STANDARD_TOLERANCE = 1e-12


@dataclass(frozen=True)
class Tables:
    """Current registry tables and the reference tables (by table name), as Polars frames."""

    registries: dict[str, pl.LazyFrame]
    reference: dict[str, pl.DataFrame]


def columns_used(definitions: list[Definition]) -> dict[str, list[str]]:
    """Per registry, the columns any definition reads (so only those leave the warehouse)."""
    used: dict[str, set[str]] = {}

    def add(registry: str, names) -> None:
        used.setdefault(registry, set()).update(names)

    for d in definitions:
        compiler = Compiler(d.registry)
        c = compile_definition(d, compiler, dt.date.max)
        for expr in (c.denominator, c.numerator, c.missing, c.value):
            if expr is not None:
                add(d.registry, expr.meta.root_names())
        for name, link in compiler.links.items():
            used[d.registry].discard(name)
            linked = Compiler(link.registry)
            linked.columns = {**compiler.columns, **linked.columns}
            own = registry_columns(link.registry)
            for column in linked.compile(link.where, name).meta.root_names():
                add(link.registry if column in own else d.registry, [column])
            add(link.registry, [link.key])
            add(d.registry, ["record_id"])
        if d.risk_adjustment:
            add(d.registry, [v.column for v in d.risk_adjustment.case_mix])
        if d.completeness:
            add(d.completeness.registry, [*d.completeness.same,
                                          SOURCES[d.completeness.registry].period_column])
            add(d.registry, d.completeness.same)
    for registry, names in used.items():
        names |= {SOURCES[registry].period_column, *SOURCES[registry].unit_columns.values()}
    return {r: sorted(names) for r, names in used.items()}


def _selected(column: str, dtype: pl.DataType | None = None) -> str:
    # Pseudonyms only ever meet in equality joins, so the engine carries DuckDB's 64-bit
    # hash of them instead of 64 hex characters: a third of the memory, integer joins.
    # Ten million patients share a hash with probability ~3e-6, and a false match would
    # also need the same hospital and date.
    if column == "pseudonym":
        return "hash(pseudonym) AS pseudonym"
    if dtype == pl.Int32:  # SMALLINT in the warehouse (age, scores): widened, never wraps
        return f"CAST({column} AS INTEGER) AS {column}"
    return column


def _select_list(registry: str, columns: list[str]) -> str:
    types = registry_columns(registry)
    return ", ".join(_selected(c, types.get(c)) for c in columns)


def load_tables(con, columns: dict[str, list[str]], where: dict[str, str] | None = None
                ) -> Tables:
    """Through Arrow: DuckDB hands its columns to Polars without Python objects. ``where``
    narrows a registry's rows in DuckDB (SQL over its columns), before any leaves it."""
    return Tables(load_registries(con, columns, where), load_reference_tables(con))


def _frame(con, sql: str) -> pl.DataFrame:
    return pl.from_arrow(con.sql(sql).to_arrow_table())


def load_registries(con, columns: dict[str, list[str]], where: dict[str, str] | None = None
                    ) -> dict[str, pl.LazyFrame]:
    def rows(registry: str) -> str:
        return f" WHERE {where[registry]}" if where and registry in where else ""

    return {r: _frame(con, f"SELECT {_select_list(r, cols)} FROM {r}{rows(r)}").lazy()
            for r, cols in sorted(columns.items())}


def load_reference_tables(con) -> dict[str, pl.DataFrame]:
    tables = [DECLARED_LEVELS.region.table, *(level.table for level in UNIT_LEVELS)]
    return {t: _frame(con, f"SELECT * FROM {t}") for t in tables}


# -- parts: the engine's memory follows the grain, not the rows ------------------------------
#
# A registry too large to hold at once is counted in parts: its rows split by a hash of the
# key its joins use (record_id and a link's key, the completeness match's columns), so every
# record meets all its linked records in the same part. Everything a part yields is additive
# (counts, records per median value, records and events per covariate pattern), so the parts
# add up to exactly what one pass over all rows gives.

ROW_BYTES = 300  # the engine's peak memory per loaded registry row (measured at 12M rows)
MAX_PARTS = 4096


def rows_per_part() -> int:
    """A quarter of the run's memory limit (KVALITET_MEMORY_LIMIT_GB) for the loaded rows."""
    return max(1, memory_limit_bytes() // 4 // ROW_BYTES)


def part_count(con, registries) -> int:
    """Parts needed so the registries' rows (history: an upper bound of the current rows) fit."""
    rows = sum(scalar(con, f"SELECT count(*) FROM {r}_history") for r in sorted(set(registries)))
    return int(min(MAX_PARTS, max(1, -(-rows // rows_per_part()))))


def in_parts(con, columns: dict[str, list[str]], keys: dict[str, str] | None,
             reference: dict[str, pl.DataFrame]):
    """The registries' rows part by part (``keys``: per registry, the SQL its rows are split
    on; None: they cannot be split and load whole)."""
    parts = part_count(con, columns) if keys else 1
    if parts > 1:
        log.info("counting %s in %d parts", ", ".join(sorted(columns)), parts)
    for part in range(parts):
        where = None if parts == 1 else {
            r: f"hash({keys[r]}) % {parts} = {part}" for r in columns}
        yield Tables(load_registries(con, columns, where), reference)


def split_keys(registry: str, links: dict) -> dict[str, str] | None:
    """What a registry and the registries it links to are split on: a record and the linked
    records naming it land in the same part. None when two links would need different keys
    for one registry (then it loads whole)."""
    keys = {registry: "record_id" if SOURCES[registry].has_record_id else "pseudonym"}
    for link in links.values():
        if keys.get(link.registry, link.key) != link.key:
            return None
        keys[link.registry] = link.key
    return keys


def data_cutoff(con) -> dt.date:
    """The latest extract date in the warehouse."""
    latest = scalar(con, "SELECT max(extract_date) FROM delivered_files")
    if latest is None:
        raise RuntimeError("the warehouse holds no extracts: nothing to compute")
    return latest


def period_date(registry: str) -> pl.Expr:
    column = pl.col(SOURCES[registry].period_column)
    return column.dt.date() if SOURCES[registry].period_column.endswith("_at") else column


def month_key(day: pl.Expr) -> pl.Expr:
    """YYYYMM as an integer: record-level grouping on it is twice as fast as on text."""
    return day.dt.year().cast(pl.Int32) * 100 + day.dt.month().cast(pl.Int32)


def _grain_keys(registry: str) -> list[pl.Expr]:
    """Record-level grain keys: the registry's own units (named as their level's code column)
    and the month, as integers where they can be; ``labelled`` turns them into the output's
    text once the records are counted, and adds the levels the registry has no unit at."""
    units = SOURCES[registry].unit_columns
    return [*(pl.col(units[level.level]).alias(level.code) for level in UNIT_LEVELS
              if level.level in units),
            month_key(period_date(registry)).alias("month")]


def _cell_keys(registry: str) -> list[str]:
    units = SOURCES[registry].unit_columns
    return [level.code for level in UNIT_LEVELS if level.level in units] + ["month"]


def labelled(cells: pl.DataFrame) -> pl.DataFrame:
    """Grain keys as the output writes them: unit codes as text (a level the records have no
    unit at as null), month as YYYY-MM."""
    month = pl.col("month")
    first = [c for c in ("indicator_id",) if c in cells.columns]
    rest = [c for c in cells.columns if c not in first and c not in CELL]
    return cells.with_columns(
        *(pl.col(c).cast(pl.String) if c in cells.columns else pl.lit(None, pl.String).alias(c)
          for c in UNIT_COLUMNS),
        pl.format("{}-{}", month // 100, (month % 100).cast(pl.String).str.zfill(2)).alias("month"),
    ).select(*first, *CELL, *rest)


@dataclass
class Tally:
    """One part's counts at the finest grain (unlabelled keys), all additive over parts:
    proportion counts (wide), records per median value, records and events per pattern."""

    counts: pl.DataFrame | None
    values: list[pl.DataFrame]
    patterns: dict[str, pl.DataFrame]


def registry_counts(con, registry: str, definitions: list[Definition],
                    columns: dict[str, list[str]], reference: dict[str, pl.DataFrame],
                    cutoff: dt.date) -> tuple[pl.DataFrame, pl.DataFrame, list[ModelFit]]:
    """Counts at the finest grain for the registry's proportion indicators (one query per
    part), records per value of its median indicators, and its risk models."""
    compiler = Compiler(registry)
    compiled = [compile_definition(d, compiler, cutoff) for d in definitions]
    needed = {registry, *(link.registry for link in compiler.links.values())}
    tallies = []
    for tables in in_parts(con, {r: columns[r] for r in needed},
                           split_keys(registry, compiler.links), reference):
        tallies.append(_tally(registry, compiled, compiler, tables, cutoff))
        del tables  # before the next part loads, not after
    keys = _cell_keys(registry)
    wide = [t.counts for t in tallies if t.counts is not None]
    counts = _long_counts(labelled(add_up(wide, keys)) if wide else None)
    values = [labelled(add_up([t.values[i] for t in tallies], ["indicator_id", *keys, "value"]))
              for i in range(len(tallies[0].values))]
    medians_ = pl.concat(values) if values else pl.DataFrame()
    expected, fits = [], []
    for c in compiled:
        if c.definition.risk_adjustment:
            i = c.definition.id
            patterns = add_up([t.patterns[i] for t in tallies],
                              [*keys, "year", *(v.name for v in c.definition.risk_adjustment.case_mix)])
            cells, year_fits = expected_from_patterns(patterns, c.definition, keys)
            expected.append(labelled(cells).with_columns(pl.lit(i).alias("indicator_id")))
            fits += year_fits
    if expected:
        # A level the registry has no unit at is null in both: null keys must match.
        counts = counts.join(pl.concat(expected), on=GRAIN, how="left", nulls_equal=True)
    return counts, medians_, fits


def add_up(parts: list[pl.DataFrame], keys: list[str]) -> pl.DataFrame:
    """The parts' counts summed per key (one part: as it is)."""
    if len(parts) == 1:
        return parts[0]
    return pl.concat(parts).group_by(keys).agg(pl.exclude(keys).sum())


def _tally(registry: str, compiled: list[CompiledDefinition], compiler: Compiler,
           tables: Tables, cutoff: dt.date) -> Tally:
    frame = tables.registries[registry].filter(period_date(registry) <= cutoff)
    frame = link_flags(frame, compiler.links, tables.registries, compiler)
    keys = _grain_keys(registry)
    sums = []
    for c in compiled:
        if not c.definition.is_proportion:
            continue
        i = c.definition.id
        sums.append(c.denominator.sum().alias(f"{i}|denominator"))
        sums.append((c.denominator & c.numerator).sum().alias(f"{i}|numerator"))
        missing = c.missing if c.missing is not None else pl.lit(False)
        sums.append((c.denominator & missing).sum().alias(f"{i}|missing"))
    # A median needs the values, not the records: records per value add up over parts.
    queries = [frame.filter(c.denominator).group_by(*keys, c.value.alias("value"))
               .agg(pl.len().alias("records"))
               .select(pl.lit(c.definition.id).alias("indicator_id"), pl.all())
               for c in compiled if not c.definition.is_proportion]
    if sums:
        queries.append(frame.group_by(keys).agg(sums))
    done = pl.collect_all(queries) if queries else []
    patterns = {}
    for c in compiled:
        if c.definition.risk_adjustment:
            case_mix = [v.column for v in c.definition.risk_adjustment.case_mix]
            records = (frame.filter(c.denominator)
                       .select(*keys, c.numerator.alias("outcome"), *case_mix)
                       .with_columns((pl.col("month") // 100).alias("year")))
            patterns[c.definition.id] = pattern_counts(records, c.definition,
                                                       _cell_keys(c.definition.registry))
    return Tally(done[-1] if sums else None, done[:-1] if sums else done, patterns)


def _long_counts(wide: pl.DataFrame | None) -> pl.DataFrame:
    """One row per indicator x grain cell with numerator, denominator and missing."""
    columns = {"numerator": pl.Int64, "denominator": pl.Int64, "missing": pl.Int64}
    if wide is None or wide.is_empty():
        return pl.DataFrame(schema={k: pl.String for k in GRAIN} | columns)
    keys = CELL
    ids = [c.split("|")[0] for c in wide.columns if c.endswith("|denominator")]
    return pl.concat([
        wide.select(pl.lit(i).alias("indicator_id"), *keys,
                    *[pl.col(f"{i}|{m}").cast(t).alias(m) for m, t in columns.items()])
        for i in ids
    ]).filter(pl.col("denominator") > 0)


def completeness_counts(con, definitions: list[Definition], columns: dict[str, list[str]],
                        reference: dict[str, pl.DataFrame], cutoff: dt.date) -> list[pl.DataFrame]:
    """Distinct (patient, hospital, date) contacts of the patient registry (LPR), and those
    matched by a current registry record of the same patient and hospital within +-days of
    the contact's date. Definitions that match on the same columns share one load of the
    contacts (the patient registry is the largest); in parts split on those columns, so a
    contact and its records share a part."""
    groups: dict[tuple[str, tuple[str, ...]], list[Definition]] = {}
    for d in definitions:
        groups.setdefault((d.registry, tuple(d.completeness.same)), []).append(d)
    results = []
    for (registry, same), group in groups.items():
        needed = {registry: columns[registry]}
        for d in group:  # the matched registries: only the columns the match reads
            match = d.completeness.registry
            needed[match] = sorted({*needed.get(match, []), *same,
                                    SOURCES[match].period_column})
        parts: dict[str, list[pl.DataFrame]] = {d.id: [] for d in group}
        for tables in in_parts(con, needed, {r: ", ".join(same) for r in needed}, reference):
            done = pl.collect_all([_completeness_part(d, tables, cutoff) for d in group])
            for d, part in zip(group, done):
                parts[d.id].append(part)
            del tables, done  # before the next part loads, not after
        unit = DECLARED_LEVELS.levels[SOURCES[registry].region_from].code
        for d in group:
            counts = add_up(parts[d.id], [unit, "month"]).with_columns(
                pl.lit(d.id).alias("indicator_id"))
            results.append(labelled(counts).select(GRAIN + ["numerator", "denominator", "missing"]))
    return results


def _completeness_part(definition: Definition, tables: Tables, cutoff: dt.date) -> pl.LazyFrame:
    """Neither side is made distinct before the join: the group-by after it makes the
    contacts distinct, and a repeated record cannot change whether one is near."""
    match = definition.completeness
    patients = definition.registry
    source = SOURCES[patients]
    unit = DECLARED_LEVELS.levels[source.region_from].code
    # A contact is a patient at a hospital on a day, whichever columns the match compares.
    contact = list(dict.fromkeys([*match.same, source.region_column]))
    compiled = compile_definition(definition, Compiler(patients), cutoff)
    contacts = (tables.registries[patients]
                .filter((period_date(patients) <= cutoff) & compiled.denominator)
                .select(*contact, period_date(patients).alias("contact_date")))
    records = (tables.registries[match.registry]
               .select(*match.same, period_date(match.registry).alias("record_date")))
    near = (pl.col("record_date") - pl.col("contact_date")).dt.total_days().abs() <= match.days
    flagged = (contacts.join(records, on=match.same, how="left")
               .group_by(*contact, "contact_date")
               .agg(near.fill_null(False).any().alias("matched")))
    return (flagged
            .group_by(pl.col(source.region_column).alias(unit),
                      month_key(pl.col("contact_date")).alias("month"))
            .agg(pl.col("matched").sum().cast(pl.Int64).alias("numerator"),
                 pl.len().cast(pl.Int64).alias("denominator"),
                 pl.lit(0, pl.Int64).alias("missing")))


def region_lookup(level, tables: Tables) -> pl.DataFrame:
    """A level's unit code -> its region code, both as text: directly, or through the level
    it names (a clinic through its municipality)."""
    table = tables.reference[level.table]
    if level.region:
        return table.select(pl.col(level.code).cast(pl.String),
                            pl.col(level.region).cast(pl.String).alias("region_code"))
    up = DECLARED_LEVELS.levels[level.via]
    above = region_lookup(up, tables).rename({up.code: "__up"})
    return (table.select(pl.col(level.code).cast(pl.String), pl.col(up.code).cast(pl.String)
                         .alias("__up"))
            .join(above, on="__up", how="left").select(level.code, "region_code"))


def _unit_expressions(definitions: list[Definition], tables: Tables
                      ) -> tuple[dict[str, pl.DataFrame], dict]:
    """Each unit level's region lookup and, per level, the expression naming a cell's unit:
    a cell counts in the region of the level its registry declares (``region_from``)."""
    lookups = {level.level: region_lookup(level, tables).rename(
        {"region_code": f"__{level.level}_region"}) for level in UNIT_LEVELS}
    region = pl.lit(None, pl.String)
    for level in reversed(UNIT_LEVELS):
        ids = [d.id for d in definitions if SOURCES[d.registry].region_from == level.level]
        if ids:
            region = (pl.when(pl.col("indicator_id").is_in(ids))
                      .then(pl.col(f"__{level.level}_region")).otherwise(region))
    units = {"national": pl.lit(NATIONAL_CODE), "region": region,
             **{level.level: pl.col(level.code) for level in UNIT_LEVELS}}
    return lookups, units


def _by_unit(cells: pl.LazyFrame, definitions: list[Definition], tables: Tables,
             aggregations: list[pl.Expr], keys: list[str], apart: bool = False
             ) -> pl.LazyFrame | list[pl.LazyFrame]:
    """Cells grouped to every (level, unit, month) their indicator reports (``apart``: one
    query per level)."""
    lookups, units = _unit_expressions(definitions, tables)
    for level in UNIT_LEVELS:
        cells = cells.join(lookups[level.level].lazy(), on=level.code, how="left")
    parts = []
    for level, unit in units.items():
        ids = [d.id for d in definitions if level in d.levels]
        if not ids and parts:  # nothing reports at the level (an empty filter would type null)
            continue
        parts.append(cells.filter(pl.col("indicator_id").is_in(ids))
                     .group_by("indicator_id", *keys, unit.alias("unit_code"))
                     .agg(aggregations).with_columns(pl.lit(level).alias("level")))
    return parts if apart else pl.concat(parts)


UNIT_KEYS = ["indicator_id", "period_type", "period", "level", "unit_code"]
COUNTS = ["numerator", "denominator", "missing"]
ADDITIVE = [*COUNTS, "expected", "variance"]  # expected events and their variance add up too


def roll_up(grain: pl.DataFrame, definitions: list[Definition], tables: Tables) -> pl.DataFrame:
    """Months per unit from the grain, years from the months: counts add up by construction.
    Expected events and their variance are summed apart, over the cells that have them (the
    risk-adjusted indicators'): their order-independent sum sorts within each group."""
    grain = grain.with_columns(pl.lit(None, pl.Float64).alias(c) for c in ("expected", "variance")
                               if c not in grain.columns)
    counts = [pl.col(c).sum() for c in COUNTS]
    risk = [canonical_sum(pl.col(c)).alias(c) for c in ("expected", "variance")]
    modelled = grain.filter(pl.col("expected").is_not_null() | pl.col("variance").is_not_null())
    keys = ["indicator_id", "month", "unit_code", "level"]
    # Level by level: all levels at once would hold every level's copy of the grain together.
    months = pl.concat([
        part.collect() for part in
        _by_unit(grain.lazy().drop("expected", "variance"), definitions, tables, counts,
                 ["month"], apart=True)])
    if modelled.height:
        sums = pl.concat(part.collect() for part in
                         _by_unit(modelled.lazy(), definitions, tables, risk, ["month"], apart=True))
        months = months.join(sums, on=keys, how="left", nulls_equal=True)
    else:
        months = months.with_columns(pl.lit(None, pl.Float64).alias(c) for c in ("expected", "variance"))
    years = months.lazy().group_by("indicator_id", "level", "unit_code",
                                   pl.col("month").str.slice(0, 4).alias("period")).agg(
        *counts, *(pl.when(pl.col(c).is_not_null().any()).then(canonical_sum(pl.col(c))).alias(c)
                   for c in ("expected", "variance")))
    return pl.concat([
        months.lazy().rename({"month": "period"}).with_columns(pl.lit("month").alias("period_type")),
        years.with_columns(pl.lit("year").alias("period_type")),
    ], how="diagonal").select(*UNIT_KEYS, *ADDITIVE).collect()


def medians(values: pl.DataFrame, definitions: list[Definition], tables: Tables) -> pl.DataFrame:
    """Medians of each unit and period from its records per value (a median does not roll
    up, but the records per value do)."""
    if values.is_empty():
        return pl.DataFrame()
    stats = [pl.col("records").sum().cast(pl.Int64).alias("denominator"),
             weighted_median("value", "records").alias("median")]
    lazy = values.lazy().with_columns(pl.col("month").str.slice(0, 4).alias("year"))
    months = _by_unit(lazy, definitions, tables, stats, ["month"]).rename({"month": "period"})
    years = _by_unit(lazy, definitions, tables, stats, ["year"]).rename({"year": "period"})
    return pl.concat([months.with_columns(pl.lit("month").alias("period_type")),
                      years.with_columns(pl.lit("year").alias("period_type"))],
                     how="diagonal").select(*UNIT_KEYS, "denominator", "median").collect()


def weighted_median(value: str, weight: str) -> pl.Expr:
    """The median of values repeated ``weight`` times, computed as Polars' own median is
    (the two middle values' lower + half their difference), so the bytes do not change."""
    # Ties may take any order: equal values are equal wherever the middle falls among them.
    values, weights = pl.col(value).sort(), pl.col(weight).sort_by(value)
    records = pl.col(weight).sum()
    below = weights.cum_sum()
    low = values.filter(below > (records - 1) // 2).first()
    high = values.filter(below > records // 2).first()
    return low + (high - low) * 0.5


def unit_names(tables: Tables) -> pl.DataFrame:
    region = DECLARED_LEVELS.region
    return pl.concat([
        pl.DataFrame({"level": ["national"], "unit_code": [NATIONAL_CODE],
                      "unit_name": [NATIONAL_NAME]}),
        tables.reference[region.table].select(
            pl.lit("region").alias("level"), pl.col(region.code).cast(pl.String).alias("unit_code"),
            pl.col(region.name).alias("unit_name")),
        *(tables.reference[level.table].select(
            pl.lit(level.level).alias("level"),
            pl.col(level.code).cast(pl.String).alias("unit_code"),
            pl.col(level.name).alias("unit_name")) for level in UNIT_LEVELS),
    ])


def finish(counts: pl.DataFrame, median_rows: pl.DataFrame, definitions: list[Definition],
           tables: Tables, ci: Method) -> pl.DataFrame:
    """Proportions, intervals, standards and names, in the output contract's shape."""
    standards = pl.DataFrame({
        "indicator_id": [d.id for d in definitions],
        "standard": [d.standard.value for d in definitions],
        "lower_is_better": [d.standard.lower_is_better for d in definitions],
    })
    proportions = counts.with_columns(
        (pl.col("numerator") / pl.col("denominator")).alias("proportion"))
    proportions = with_intervals(proportions, ci)
    national = proportions.filter(pl.col("level") == "national").select(
        "indicator_id", "period_type", "period", pl.col("proportion").alias("national_proportion"))
    proportions = adjust(proportions.join(national, on=["indicator_id", "period_type", "period"],
                                          how="left"))
    if not median_rows.is_empty():
        median_rows = median_rows.with_columns(
            pl.lit(None, pl.Int64).alias("numerator"), pl.lit(0, pl.Int64).alias("missing"))
    rows = pl.concat([proportions, median_rows], how="diagonal_relaxed")
    estimate = pl.coalesce("median", "proportion") if "median" in rows.columns else pl.col("proportion")
    rows = (rows.join(standards, on="indicator_id", how="left")
            .with_columns(
                pl.when(pl.col("lower_is_better"))
                .then(estimate <= pl.col("standard") + STANDARD_TOLERANCE)
                .otherwise(estimate >= pl.col("standard") - STANDARD_TOLERANCE)
                .alias("standard_met"))
            .join(unit_names(tables), on=["level", "unit_code"], how="left")
            .with_columns(pl.col("unit_name").fill_null(pl.col("unit_code"))))
    level_order = pl.col("level").replace_strict({l: i for i, l in enumerate(LEVELS)},
                                                 return_dtype=pl.Int8)
    rows = rows.sort("indicator_id", "period_type", "period", level_order, "unit_code")
    return conform(rows)


def conform(rows: pl.DataFrame) -> pl.DataFrame:
    """Exactly the contract's columns, types and order; absent columns are null."""
    return rows.select([
        (pl.col(c) if c in rows.columns else pl.lit(None)).cast(t).alias(c)
        for c, t in RESULT_SCHEMA.items()
    ])


def denominator_records(con, definitions: list[Definition], cutoff: dt.date, month: str
                        ) -> pl.DataFrame:
    """The record_ids in each indicator's denominator for one month, with whether they meet
    the numerator: what a unit's monthly delivery lists of its own records."""
    counted = [d for d in definitions if d.is_proportion and d.type != "completeness"
               and SOURCES[d.registry].has_record_id]
    columns = columns_used(counted)
    for registry in {d.registry for d in counted}:
        columns[registry] = sorted(set(columns[registry]) | {"record_id"})
    compiled_by = {}
    for registry in sorted({d.registry for d in counted}):
        compiler = Compiler(registry)
        compiled_by[registry] = (compiler, [compile_definition(d, compiler, cutoff)
                                            for d in counted if d.registry == registry])
    # Only the month leaves the warehouse, except from registries other records link to.
    linked = {link.registry for compiler, _ in compiled_by.values()
              for link in compiler.links.values()}
    first = dt.date(int(month[:4]), int(month[5:7]), 1)
    last = min((first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1), cutoff)
    where = {r: f"CAST({SOURCES[r].period_column} AS DATE) BETWEEN DATE '{first}' AND "
                f"DATE '{last}'" for r in compiled_by if r not in linked}
    tables = load_tables(con, columns, where)
    frames = []
    for registry, (compiler, compiled) in compiled_by.items():
        frame = tables.registries[registry].filter(
            (period_date(registry) <= cutoff)
            & (month_key(period_date(registry)) == int(month.replace("-", ""))))
        frame = link_flags(frame, compiler.links, tables.registries, compiler)
        keys = _grain_keys(registry)
        for c in compiled:
            frames.append(frame.filter(c.denominator).select(
                pl.lit(c.definition.id).alias("indicator_id"), "record_id", *keys,
                c.numerator.alias("meets_numerator")))
    if not frames:
        return pl.DataFrame()
    return labelled(pl.concat(pl.collect_all(frames), how="diagonal"))


@dataclass
class Computation:
    results: pl.DataFrame  # the output contract
    model_fits: list[ModelFit]
    cutoff: dt.date | None  # None: nothing delivered, nothing computed


def compute(con, definitions: list[Definition], cutoff: dt.date | None = None,
            ci: Method = "wilson") -> pl.DataFrame:
    """indicator_results for the warehouse's current data."""
    return compute_all(con, definitions, cutoff, ci).results


def compute_all(con, definitions: list[Definition], cutoff: dt.date | None = None,
                ci: Method = "wilson") -> Computation:
    """indicator_results and the risk models behind them; none when no extract is delivered
    (every file failed or was retracted: the run reports those failures)."""
    if cutoff is None and scalar(con, "SELECT count(*) FROM delivered_files") == 0:
        log.warning("no delivered extract in the warehouse: no indicator results")
        return Computation(pl.DataFrame(schema=RESULT_SCHEMA), [], None)
    cutoff = cutoff or data_cutoff(con)
    reference = load_reference_tables(con)
    columns = columns_used(definitions)
    grains, values, fits = [], [], []
    by_registry: dict[str, list[Definition]] = {}
    for d in definitions:
        if d.type != "completeness":
            by_registry.setdefault(d.registry, []).append(d)
    grains += completeness_counts(con, [d for d in definitions if d.type == "completeness"],
                                  columns, reference, cutoff)
    for registry, group in by_registry.items():
        log.info("computing %d indicators on %s", len(group), registry)
        counts, medians_, registry_fits = registry_counts(con, registry, group, columns,
                                                          reference, cutoff)
        grains.append(counts)
        fits += registry_fits
        if not medians_.is_empty():
            values.append(medians_)
    tables = Tables({}, reference)
    grain = pl.concat(grains, how="diagonal_relaxed")
    counts = roll_up(grain, definitions, tables)
    median_rows = medians(pl.concat(values) if values else pl.DataFrame(), definitions, tables)
    return Computation(finish(counts, median_rows, definitions, tables, ci), fits, cutoff)
