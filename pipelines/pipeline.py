"""One run of the pipeline: the steps in order, whatever runs them.

ingest (per registry) -> validation report -> indicators -> reports -> manifest. A
``Runner`` calls each step: ``DirectRunner`` as plain functions (no Prefect imported,
the fast fixed cost of ``KVALITET_ORCHESTRATION=direct``), ``pipelines.flows``'s
Prefect runner as tasks with caching and artifacts.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path
from typing import ContextManager, Optional, Protocol
from zoneinfo import ZoneInfo

from pipelines import manifest, settings, steps
from pipelines.extract_reader import content_hash
from pipelines.privacy import gated, install_log_gate, one_line

log = logging.getLogger("kvalitet.flows")
install_log_gate()


def previous_month(today: dt.date | None = None) -> str:
    today = today or dt.datetime.now(ZoneInfo("Europe/Copenhagen")).date()
    first = today.replace(day=1)
    return f"{first - dt.timedelta(days=1):%Y-%m}"


def previous_year(today: dt.date | None = None) -> int:
    return (today or dt.datetime.now(ZoneInfo("Europe/Copenhagen")).date()).year - 1


class Runner(Protocol):
    def ingest(self, input_dir: Path, warehouse_path: Path, source: str, demo: bool) -> dict: ...
    def step(self, name: str, *args): ...
    def cached(self, name: str, target: Path, content_key: str, *args, refresh: bool = False): ...
    def publish(self, output_dir: Path, validation: dict, reports: dict, summary: dict) -> None: ...
    def holding(self, warehouse_path: Path) -> ContextManager: ...
    def reading(self, input_dir: Path) -> ContextManager: ...


class DirectRunner:
    """Every step a plain call; its exceptions pass the privacy gate."""

    def holding(self, warehouse_path):
        """One warehouse connection for the whole run."""
        from pipelines import warehouse

        return warehouse.held(warehouse_path)

    def reading(self, input_dir):
        """One reader for all registries: the next one's first file is read while the
        current one's last batches are written."""
        from pipelines.read_ahead import across_registries

        return across_registries(input_dir)

    def ingest(self, input_dir, warehouse_path, source, demo):
        return gated(steps.ingest_registry)(input_dir, warehouse_path, source, demo)

    def step(self, name, *args):
        return gated(getattr(steps, name))(*args)

    def cached(self, name, target, content_key, *args, refresh=False):
        return self.step(name, *args)

    def publish(self, output_dir, validation, reports, summary) -> None:
        """Nothing to publish beyond the files."""


def _warehouse_fingerprint(warehouse_path: Path) -> dict:
    """What compute reads from the warehouse besides the definitions: the delivered extracts
    (content, date, retraction) and the reference tables (names, regions)."""
    from pipelines import warehouse
    from pipelines.reference import TABLES

    with warehouse.connect(warehouse_path) as con:
        extracts = con.execute("SELECT source, content_hash, extract_date, retracted_at "
                               "FROM extract_files ORDER BY ALL").fetchall()
        reference = {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
                     for t in TABLES}
    return {"extracts": extracts, "reference": reference}


def _results_table_empty(warehouse_path: Path) -> bool:
    from pipelines import warehouse

    with warehouse.connect(warehouse_path) as con:
        return warehouse.scalar(con, "SELECT count(*) FROM indicator_results") == 0


def pipeline(input_dir: Path, output_dir: Path, warehouse: Optional[Path] = None,
             cutoff: Optional[dt.date] = None, ci: str = "wilson", year: Optional[int] = None,
             month: Optional[str] = None, demo: bool = False, runner: "Runner | None" = None,
             language: str = "da") -> dict:
    """ingest (per registry) -> validation report -> indicators -> reports -> manifest.

    ``runner`` runs each step: plainly (the default; Prefect is not even imported) or as
    Prefect tasks (``pipelines.flows``)."""
    runner = runner or DirectRunner()

    started, timings = time.perf_counter(), {}
    output_dir.mkdir(parents=True, exist_ok=True)
    warehouse_path = warehouse or settings.default_warehouse(output_dir)
    parameters = {"input": str(input_dir), "output": str(output_dir),
                  "warehouse": str(warehouse_path), "cutoff": str(cutoff) if cutoff else None,
                  "ci": ci, "year": year, "month": month, "demo": demo}

    from pipelines.ingest import FatalIngestError, told_formats
    from pipelines.reference import load_reference
    from pipelines.sources import BadInputLayout
    from pipelines.warehouse import WarehouseError

    load_reference(input_dir)  # without trustworthy reference tables nothing can be validated
    told_formats(input_dir)  # a formats.yaml that cannot be followed stops the run here
    if not steps.registries_present(input_dir):
        raise BadInputLayout(f"{input_dir} holds none of the registry folders "
                             "(stroke/, hipfracture/, cardiac_rehab_hospital/, ...)")
    with runner.holding(warehouse_path):
        steps.claim_key(warehouse_path, demo)  # another key is refused before anything loads
        fatal = (settings.MissingPseudonymKey, FatalIngestError, WarehouseError, BadInputLayout)
        ingests, failed_registries = [], {}
        with runner.reading(input_dir):
            for source in steps.registries_present(input_dir):
                t = time.perf_counter()
                try:
                    ingests.append(runner.ingest(input_dir, warehouse_path, source, demo))
                except fatal:
                    raise
                except Exception as problem:  # one registry's failure does not stop the others
                    failed_registries[source] = one_line(problem)
                    log.error("registry %s failed: %s", source, failed_registries[source])
                    continue
                timings[f"ingest_{source}"] = round(time.perf_counter() - t, 3)
        unrecognised = sorted(set(steps.unrecognised_entries(input_dir))
                              | {u for i in ingests for u in i.get("unrecognised", [])})
        ingests.append({"files": [], "unrecognised": unrecognised})

        t = time.perf_counter()
        validation = runner.step("write_validation_report", warehouse_path, output_dir, ingests)
        timings["validation_report"] = round(time.perf_counter() - t, 3)

        content = manifest.fingerprint({
            "warehouse": _warehouse_fingerprint(warehouse_path),
            "definitions": manifest.definitions_fingerprint(),
            "code": manifest.code_fingerprint(),
            "settings": manifest.settings_fingerprint(), "cutoff": str(cutoff), "ci": ci,
            "skipped": sorted(failed_registries)})
        results_file = output_dir / "indicator_results.parquet"
        t = time.perf_counter()
        computed = runner.cached("compute_indicators", results_file, content,
                                 warehouse_path, output_dir, cutoff, ci,
                                 tuple(sorted(failed_registries)),
                                 refresh=_results_table_empty(warehouse_path))
        timings["compute_indicators"] = round(time.perf_counter() - t, 3)
        effective_cutoff = (dt.date.fromisoformat(computed["cutoff"]) if computed["cutoff"]
                            else None)

        reports = {}
        report_key = manifest.fingerprint({"results": content_hash(results_file),
                                           "content": content, "language": language})
        if year is not None:
            t = time.perf_counter()
            folder = output_dir / "reports" / "annual" / str(year)
            reports["annual"] = runner.cached("annual_reports", folder, report_key,
                                              warehouse_path, folder, year, language)
            timings["annual_reports"] = round(time.perf_counter() - t, 3)
        if month is not None:
            t = time.perf_counter()
            folder = output_dir / "reports" / "monthly" / month
            reports["monthly"] = runner.cached("monthly_deliveries", folder, report_key,
                                               warehouse_path, folder, month, language)
            timings["monthly_deliveries"] = round(time.perf_counter() - t, 3)

    failed_files = [f for i in ingests for f in i["files"] if f["status"] == "failed"]
    registries = {s: ("failed: " + failed_registries[s]) if s in failed_registries else "completed"
                  for s in steps.registries_present(input_dir)}
    timings["total"] = round(time.perf_counter() - started, 3)
    manifest_path = manifest.write(output_dir, input_dir, parameters, effective_cutoff, timings,
                                   [f for i in ingests for f in i["files"]], registries)
    summary = {
        "results": computed["results"], "rows": computed["rows"], "cutoff": computed["cutoff"],
        "registries": registries, "failed_files": failed_files,
        "files_loaded": sum(f["status"] == "loaded" for i in ingests for f in i["files"]),
        "files_already_loaded": sum(f["status"] == "already_loaded"
                                    for i in ingests for f in i["files"]),
        "validation": validation["totals"], "reports": reports, "manifest": str(manifest_path),
        "unrecognised": unrecognised,
    }
    runner.publish(output_dir, validation, reports, summary)
    log.info("run finished in %.1f s: %d files loaded, %d already loaded, %d failed, %d "
             "registries failed", timings["total"], summary["files_loaded"],
             summary["files_already_loaded"], len(failed_files), len(failed_registries))
    return summary


