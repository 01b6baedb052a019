"""The steps of a run as plain functions: what the Prefect tasks wrap and the tests call.

Each takes and returns paths and small summaries, never connections or frames,
so a step can run in any worker and its result can be cached.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from pipelines import settings, validation_report, warehouse
from pipelines.definitions import load_definitions
from pipelines.ingest import IngestSummary, ingest_directory
from pipelines.results import RESULTS_FILE, write_results
from pipelines.sources import SOURCES

log = logging.getLogger("kvalitet.steps")


def registries_present(input_dir: Path) -> list[str]:
    return [s for s in SOURCES if (input_dir / s).is_dir()]


def claim_key(warehouse_path: Path, demo: bool = False) -> None:
    """Refuse a key the warehouse was not built with, before any registry loads."""
    key = settings.pseudonym_key(allow_demo=demo)
    with warehouse.connect(warehouse_path) as con:
        warehouse.claim_key(con, key, warehouse_path)


def unrecognised_entries(input_dir: Path) -> list[str]:
    """What the input holds besides reference tables, formats.yaml and extract files."""
    from pipelines.ingest import discover

    return discover(input_dir)[1]


def ingest_registry(input_dir: Path, warehouse_path: Path, source: str, demo: bool = False) -> dict:
    """Load one registry's extracts. The key comes from the environment, never a parameter."""
    key = settings.pseudonym_key(allow_demo=demo)
    summary = ingest_directory(input_dir, warehouse_path, key, sources=(source,),
                               progress=lambda done, total, what: log.info(
                                   "%s: file %d of %d %s", source, min(done + 1, total), total,
                                   what))
    return summary.as_dict()


def write_validation_report(warehouse_path: Path, output: Path, ingests: list[dict]) -> dict:
    files = [f for i in ingests for f in i["files"]]
    unrecognised = sorted({u for i in ingests for u in i.get("unrecognised", [])})
    summary = IngestSummary.from_dict({"files": files, "unrecognised": unrecognised})
    with warehouse.connect(warehouse_path) as con:
        return validation_report.write(con, summary, output / "validation")


def registries_read(definition) -> set[str]:
    """The registries an indicator's numbers rest on: its own, linked ones, the matched one."""
    from pipelines.definitions import All, AnyOf, Linked, Not

    found = {definition.registry}
    if definition.completeness:
        found.add(definition.completeness.registry)

    def walk(criterion) -> None:
        if isinstance(criterion, Linked):
            found.add(criterion.linked.registry)
            walk(criterion.linked.where)
        elif isinstance(criterion, (All, AnyOf)):
            for part in criterion.all if isinstance(criterion, All) else criterion.any:
                walk(part)
        elif isinstance(criterion, Not):
            walk(criterion.not_)

    for criterion in (definition.population, definition.numerator, *definition.denominator,
                      *definition.exclusions):
        walk(criterion)
    return found


def compute_indicators(warehouse_path: Path, output: Path, cutoff: dt.date | None, ci: str,
                       skip_registries: tuple[str, ...] = ()) -> dict:
    """Every indicator, except those resting on a registry whose ingest failed as a whole
    (results are published only from registries whose files all loaded or failed by name)."""
    from pipelines import engine  # with the statistics libraries: ~0.8 s of imports

    definitions = [d for d in load_definitions(settings.INDICATORS_DIR)
                   if not registries_read(d) & set(skip_registries)]
    with warehouse.connect(warehouse_path) as con:
        # DuckDB's cache of the blocks it read would otherwise grow with the warehouse; an
        # eighth of the run's memory, the engine's parts take a quarter (measured at 99M rows).
        con.execute(f"SET memory_limit = '{warehouse.duckdb_memory_mb(8)}MB'")
        _every_unit_listed(con, {r for d in definitions for r in registries_read(d)})
        computation = engine.compute_all(con, definitions, cutoff, ci)
        results = _with_a_unit(computation.results)
        path = write_results(con, results, output, computation.model_fits, computation.cutoff)
    log.info("%d indicator result rows -> %s", results.height, path)
    return {"results": str(path), "rows": results.height,
            "cutoff": computation.cutoff.isoformat() if computation.cutoff else None,
            "models": [{"indicator_id": f.indicator_id, "year": f.year, "n": f.n,
                        "c_statistic": round(f.c_statistic, 4)} for f in computation.model_fits]}


def _every_unit_listed(con, registries: set[str]) -> None:
    """Every unit a current record names is still in its reference table: a hospital, clinic
    or municipality left out of the input's reference after its records loaded would leave
    them without a region or a name. Stop with that, before anything is published."""
    from pipelines.reference import BadReference
    from schemas import EXTRACT_SCHEMAS
    from schemas.declarations import LEVELS

    missing = []
    for registry in sorted(registries):
        if not warehouse.has_table(con, registry):
            continue
        units = [(c.name, LEVELS.levels[c.reference]) for c in EXTRACT_SCHEMAS[registry].columns
                 if c.reference in LEVELS.levels]
        if not units:
            continue
        unlisted = "SELECT " + ", ".join(  # one scan for all the registry's units
            f'count(DISTINCT "{name}") FILTER (WHERE CAST("{name}" AS VARCHAR) NOT IN '
            f'(SELECT CAST("{level.code}" AS VARCHAR) FROM {level.table}))'
            for name, level in units) + " FROM {rows}"
        # Every version ever loaded first (a plain scan); only if some code is unlisted there,
        # the current records (a join) tell whether one still counts.
        counts = con.execute(unlisted.format(rows=f"{registry}_history")).fetchall()[0]
        if any(counts):
            counts = con.execute(unlisted.format(rows=registry)).fetchall()[0]
        missing += [f"{registry}.{name}: {n} code(s) not in {level.table}"
                    for (name, level), n in zip(units, counts) if n]
    if missing:
        raise BadReference(
            "loaded records name units the reference tables no longer list ("
            + "; ".join(missing) + "). A unit that closed stays listed, with its region, as "
            "long as records name it.")


def _with_a_unit(results):
    """Result rows of records without a unit at a level (an empty optional unit column, e.g.
    a practice not given) are left out there: such records count at the levels they have."""
    import polars as pl

    placed = results.filter(pl.col("unit_code").is_not_null())
    if placed.height < results.height:
        log.info("%d result rows of records without a unit at a level left out",
                 results.height - placed.height)
    return placed


class NothingToReport(RuntimeError):
    """Reports asked of a warehouse without results for the period."""

    masked = True


def _results_for(con, period: str, period_type: str):
    from pipelines.results import read_results

    results = read_results(con)
    if results.is_empty():
        raise NothingToReport("the warehouse holds no indicator results: run 'kvalitet run' "
                              "first ('kvalitet ingest' only loads and validates)")
    import polars as pl

    if results.filter((pl.col("period_type") == period_type) & (pl.col("period") == period)
                      ).is_empty():
        periods = sorted(set(results.filter(pl.col("period_type") == period_type)["period"]))
        raise NothingToReport(f"no indicator results for {period}; the warehouse has "
                              f"{', '.join(periods[-6:]) or 'none'}")
    return results


def annual_reports(warehouse_path: Path, folder: Path, year: int, language: str = "da",
                   comments: Path | None = None, pdf: bool = False) -> list[str]:
    """The annual report of ``year`` into ``folder`` (one subfolder per registry), with the
    steering groups' commentary from ``comments/<year>/<indicator>.md``."""
    from pipelines.results import results_cutoff
    from reports import annual
    from reports.suppression import SmallNumberRule

    if comments is None and Path("comments").is_dir():
        comments = Path("comments")
    with warehouse.connect(warehouse_path, must_exist=True) as con:  # records what it publishes
        pages = annual.build(con, _results_for(con, str(year), "year"), load_definitions(settings.INDICATORS_DIR),
                             year, folder, language,
                             SmallNumberRule.from_environment(), results_cutoff(con), comments,
                             pdf)
    return [str(p) for p in pages]


def monthly_deliveries(warehouse_path: Path, folder: Path, month: str, language: str = "da"
                       ) -> list[str]:
    """The deliveries of ``month`` into ``folder`` (one subfolder per unit). A unit's records
    are selected with the cutoff its published results were computed with."""
    from pipelines.results import results_cutoff
    from reports import monthly

    with warehouse.connect(warehouse_path, must_exist=True) as con:  # records what it publishes
        folders = monthly.build(con, _results_for(con, month, "month"), load_definitions(settings.INDICATORS_DIR),
                                month, results_cutoff(con), folder, language)
    return [str(f) for f in folders]


def overview_markdown(output: Path) -> str:
    """The national results of the latest year as a Markdown table (for a Prefect artifact)."""
    import polars as pl

    results = pl.read_parquet(output / RESULTS_FILE)
    year = results.filter(pl.col("period_type") == "year")["period"].max()
    rows = results.filter(pl.col("period_type") == "year", pl.col("period") == year,
                          pl.col("level") == "national").sort("indicator_id")
    lines = [f"# Indicator overview {year} (national)", "",
             "| indicator | result | 95 % CI | standard | met |", "|---|---:|---|---:|---|"]
    for r in rows.iter_rows(named=True):
        if r["median"] is not None:
            value, ci, standard = f"{r['median']:.1f} min", "", f"{r['standard']:g} min"
        else:
            value = f"{r['proportion']:.1%}"
            ci = f"{r['ci_low']:.1%}–{r['ci_high']:.1%}"
            standard = f"{r['standard']:.0%}"
        lines.append(f"| {r['indicator_id']} | {value} | {ci} | {standard} | "
                     f"{'yes' if r['standard_met'] else 'no'} |")
    return "\n".join(lines)

