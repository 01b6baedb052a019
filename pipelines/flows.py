"""Prefect flows: the monthly and annual runs, and the plain ``kvalitet run``.

Flows only put steps in order. Each registry is ingested by its own task, so
one registry's failure is reported without failing the others. Every run
writes a manifest; with Prefect it also leaves artifacts (validation table,
indicator overview, links to the reports).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from pathlib import Path
from typing import Optional
from zoneinfo import ZoneInfo

from prefect import flow

from pipelines import manifest, settings, steps, tasks
from pipelines.extract_reader import content_hash
from pipelines.privacy import gated, install_log_gate, mask, one_line

log = logging.getLogger("kvalitet.flows")
install_log_gate()  # Prefect's own log records (stored in its database) pass the gate too
COPENHAGEN = ZoneInfo("Europe/Copenhagen")


def tie_temporary_server_to_this_process() -> None:
    """Prefect's temporary local server is a child process that outlives a killed parent
    (``kill -9`` leaves it running). Started through this, the kernel ends it with its
    parent (Linux PR_SET_PDEATHSIG); elsewhere nothing changes."""
    import ctypes
    import signal
    import subprocess
    import sys

    if not sys.platform.startswith("linux"):
        return
    from prefect.server.api import server

    if getattr(server.subprocess, "tied", False):
        return
    parent = os.getpid()

    def die_with_parent() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    class TiedSubprocess:
        tied = True

        def __getattr__(self, name):
            return getattr(subprocess, name)

        @staticmethod
        def Popen(*args, **kwargs):  # noqa: N802 - the name Prefect calls
            kwargs.setdefault("preexec_fn", die_with_parent)
            return subprocess.Popen(*args, **kwargs)

    server.subprocess = TiedSubprocess()


def previous_month(today: dt.date | None = None) -> str:
    today = today or dt.datetime.now(COPENHAGEN).date()
    first = today.replace(day=1)
    return f"{first - dt.timedelta(days=1):%Y-%m}"


def previous_year(today: dt.date | None = None) -> int:
    return (today or dt.datetime.now(COPENHAGEN).date()).year - 1


def _warehouse_fingerprint(warehouse_path: Path) -> dict:
    """What compute reads from the warehouse besides the definitions: the delivered extracts
    (content, date, retraction) and the reference tables (names, regions)."""
    from pipelines import warehouse

    with warehouse.connect(warehouse_path) as con:
        extracts = con.execute("SELECT source, content_hash, extract_date, retracted_at "
                               "FROM extract_files ORDER BY ALL").fetchall()
        reference = {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
                     for t in ("regions", "municipalities", "hospitals")}
    return {"extracts": extracts, "reference": reference}


def _results_table_empty(warehouse_path: Path) -> bool:
    from pipelines import warehouse

    with warehouse.connect(warehouse_path) as con:
        return warehouse.scalar(con, "SELECT count(*) FROM indicator_results") == 0


def pipeline(input_dir: Path, output_dir: Path, warehouse: Optional[Path] = None,
             cutoff: Optional[dt.date] = None, ci: str = "wilson", year: Optional[int] = None,
             month: Optional[str] = None, demo: bool = False, orchestrated: bool = True,
             language: str = "da") -> dict:
    """ingest (per registry) -> validation report -> indicators -> reports -> manifest."""
    def call(task, *args, **kwargs):
        return task(*args, **kwargs) if orchestrated else task.fn(*args, **kwargs)

    started, timings = time.perf_counter(), {}
    output_dir.mkdir(parents=True, exist_ok=True)
    warehouse_path = warehouse or settings.default_warehouse(output_dir)
    parameters = {"input": str(input_dir), "output": str(output_dir),
                  "warehouse": str(warehouse_path), "cutoff": str(cutoff) if cutoff else None,
                  "ci": ci, "year": year, "month": month, "demo": demo}

    from pipelines.ingest import FatalIngestError
    from pipelines.reference import load_reference
    from pipelines.sources import BadInputLayout
    from pipelines.warehouse import WarehouseError

    load_reference(input_dir)  # without trustworthy reference tables nothing can be validated
    if not steps.registries_present(input_dir):
        raise BadInputLayout(f"{input_dir} holds none of the registry folders "
                             "(stroke/, hipfracture/, cardiac_rehab_hospital/, ...)")
    steps.claim_key(warehouse_path, demo)  # another key is refused before anything loads
    fatal = (settings.MissingPseudonymKey, FatalIngestError, WarehouseError)
    ingests, failed_registries = [], {}
    for source in steps.registries_present(input_dir):
        t = time.perf_counter()
        if orchestrated:
            state = tasks.ingest_registry(input_dir, warehouse_path, source, demo,
                                          return_state=True)
            if state.is_failed():
                try:
                    state.result()
                except fatal:
                    raise
                except Exception as problem:  # the task's own exception, re-raised by Prefect
                    failed_registries[source] = one_line(problem)
                else:
                    failed_registries[source] = mask(state.message or "failed")
                log.error("registry %s failed: %s", source, failed_registries[source])
                continue
            ingests.append(state.result())
        else:
            try:
                ingests.append(tasks.ingest_registry.fn(input_dir, warehouse_path, source, demo))
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
    validation = call(tasks.write_validation_report, warehouse_path, output_dir, ingests)
    timings["validation_report"] = round(time.perf_counter() - t, 3)

    def cached(task, target: Path, *args, also_missing: bool = False):
        """A cached task, recomputed when its output is gone (the cache only holds a summary)."""
        if orchestrated:
            refresh = also_missing or not target.exists()
            return task.with_options(refresh_cache=refresh)(*args)
        return task.fn(*args)

    content = manifest.fingerprint({
        "warehouse": _warehouse_fingerprint(warehouse_path),
        "definitions": manifest.definitions_fingerprint(), "code": manifest.code_fingerprint(),
        "settings": manifest.settings_fingerprint(), "cutoff": str(cutoff), "ci": ci,
        "skipped": sorted(failed_registries)})
    results_file = output_dir / "indicator_results.parquet"
    t = time.perf_counter()
    computed = cached(tasks.compute_indicators, results_file, warehouse_path, output_dir, cutoff,
                      ci, tuple(sorted(failed_registries)), content,
                      also_missing=_results_table_empty(warehouse_path))
    timings["compute_indicators"] = round(time.perf_counter() - t, 3)
    effective_cutoff = dt.date.fromisoformat(computed["cutoff"])

    reports = {}
    report_key = manifest.fingerprint({"results": content_hash(results_file), "content": content,
                                       "language": language})
    if year is not None:
        t = time.perf_counter()
        folder = output_dir / "reports" / "annual" / str(year)
        reports["annual"] = cached(tasks.annual_reports, folder, warehouse_path, folder, year,
                                   language, report_key)
        timings["annual_reports"] = round(time.perf_counter() - t, 3)
    if month is not None:
        t = time.perf_counter()
        folder = output_dir / "reports" / "monthly" / month
        reports["monthly"] = cached(tasks.monthly_deliveries, folder, warehouse_path, folder,
                                    month, language, report_key)
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
    if orchestrated:
        _publish(output_dir, validation, reports, summary)
    log.info("run finished in %.1f s: %d files loaded, %d already loaded, %d failed, %d "
             "registries failed", timings["total"], summary["files_loaded"],
             summary["files_already_loaded"], len(failed_files), len(failed_registries))
    return summary


def _publish(output_dir: Path, validation: dict, reports: dict, summary: dict) -> None:
    """Prefect artifacts: small tables and text, with links to the files themselves."""
    from prefect.artifacts import (
        create_link_artifact, create_markdown_artifact, create_table_artifact,
    )

    create_table_artifact(
        key="validation-summary", description="Rows read, loaded and quarantined per file",
        table=[{k: f[k] for k in ("source", "file_name", "rows_read", "rows_loaded",
                                  "rows_quarantined")} for f in validation["files"]])
    create_markdown_artifact(key="indicator-overview", markdown=steps.overview_markdown(output_dir),
                             description="National results of the latest year")
    for page in reports.get("annual", []):
        create_link_artifact(key=f"annual-report-{Path(page).parent.name.replace('_', '-')}",
                             link=Path(page).resolve().as_uri(), link_text=Path(page).name)
    if reports.get("monthly"):
        folder = Path(reports["monthly"][0]).parent
        create_link_artifact(key="monthly-deliveries", link=folder.resolve().as_uri(),
                             link_text=f"{len(reports['monthly'])} unit deliveries")
    lines = ["# Run summary", "", f"- cutoff: {summary['cutoff']}",
             f"- files loaded: {summary['files_loaded']}, already loaded: "
             f"{summary['files_already_loaded']}, failed: {len(summary['failed_files'])}"]
    lines += [f"- {s}: {status}" for s, status in summary["registries"].items()]
    lines += [f"- FAILED FILE {f['source']}/{f['file_name']}: {f['problem']}"
              for f in summary["failed_files"]]
    lines += [f"- NOT AN EXTRACT: {u}" for u in summary["unrecognised"]]
    create_markdown_artifact(key="run-summary", markdown=mask("\n".join(lines)))


@flow(name="kvalitet-run", log_prints=True)
def run_flow(input_dir: Path, output_dir: Path, warehouse: Optional[Path] = None,
             cutoff: Optional[dt.date] = None, ci: str = "wilson", year: Optional[int] = None,
             month: Optional[str] = None, demo: bool = False) -> dict:
    """Ingest, validate and compute; reports for a year and/or month when given."""
    return gated(pipeline)(input_dir, output_dir, warehouse, cutoff, ci, year, month, demo)


@flow(name="kvalitet-monthly", log_prints=True)
def monthly_flow(input_dir: Path, output_dir: Path, warehouse: Optional[Path] = None,
                 month: Optional[str] = None) -> dict:
    """The monthly run: new extracts in, deliveries for the month (default: the previous)."""
    return gated(pipeline)(input_dir, output_dir, warehouse, month=month or previous_month())


@flow(name="kvalitet-annual", log_prints=True)
def annual_flow(input_dir: Path, output_dir: Path, warehouse: Optional[Path] = None,
                year: Optional[int] = None) -> dict:
    """The annual run: everything in, the annual report for the year (default: the previous)."""
    return gated(pipeline)(input_dir, output_dir, warehouse, year=year or previous_year())


def orchestrated() -> bool:
    """Prefect runs the flows unless KVALITET_ORCHESTRATION=direct (used by fast tests)."""
    return os.environ.get("KVALITET_ORCHESTRATION", "prefect").lower() != "direct"
