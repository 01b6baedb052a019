"""Prefect flows: the monthly and annual runs, and the plain ``kvalitet run``.

Flows only put steps in order. Each registry is ingested by its own task, so
one registry's failure is reported without failing the others. Every run
writes a manifest; with Prefect it also leaves artifacts (validation table,
indicator overview, links to the reports).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
from pathlib import Path
from typing import Optional

from prefect import flow

from pipelines import steps, tasks
from pipelines.pipeline import DirectRunner, pipeline as run_pipeline, previous_month, previous_year
from pipelines.privacy import gated, install_log_gate, mask

log = logging.getLogger("kvalitet.flows")
install_log_gate()  # Prefect's own log records (stored in its database) pass the gate too


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


@contextlib.contextmanager
def foreground_settings():
    """Prefect's settings for a run the command line starts and waits for. No flow-run
    heartbeats: they exist to find runs whose process died unseen, and the command's own exit
    says that; their thread, which sleeps in whole seconds, held every run's end up to a
    second. PREFECT_FLOWS_HEARTBEAT_FREQUENCY, when set, is followed. On the way out the
    run's last logs are sent to the server (see send_last_logs)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    settings = (contextlib.nullcontext()
                if os.environ.get("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "").strip()
                else temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}))
    with settings:
        try:
            yield
        finally:
            send_last_logs()


def send_last_logs(timeout: float = 60) -> None:
    """Prefect sends logs to its server in the background and, at exit, gives what is left
    5 s: on a loaded machine that is too short, and the server kept no log of the run at all
    (seen with two test suites running at once). Waiting here, with the server still up,
    keeps every log line of a finished or failed run."""
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=timeout)


class PrefectRunner:
    """Every step a Prefect task: a failed task's exception is re-raised here, compute and
    reports are cached on the content they read and recomputed when their output is gone."""

    def ingest(self, input_dir, warehouse_path, source, demo):
        return tasks.ingest_registry(input_dir, warehouse_path, source, demo,
                                     return_state=True).result()

    def step(self, name, *args):
        return getattr(tasks, name)(*args)

    def cached(self, name, target, content_key, *args, refresh=False):
        task = getattr(tasks, name)
        return task.with_options(refresh_cache=refresh or not target.exists())(*args, content_key)

    def publish(self, output_dir, validation, reports, summary) -> None:
        _publish(output_dir, validation, reports, summary)

    def holding(self, warehouse_path):
        """One warehouse connection for the flow run (a task in another thread gets a cursor)."""
        from pipelines import warehouse

        return warehouse.held(warehouse_path)

    def reading(self, input_dir):
        """Each registry's task reads its own files (a task may run in another thread, on a
        cursor that ends with it)."""
        return contextlib.nullcontext()


def pipeline(input_dir: Path, output_dir: Path, warehouse: Optional[Path] = None,
             cutoff: Optional[dt.date] = None, ci: str = "wilson", year: Optional[int] = None,
             month: Optional[str] = None, demo: bool = False, orchestrated: bool = True,
             language: str = "da") -> dict:
    """The run, as Prefect tasks (inside a flow) or plainly."""
    runner = PrefectRunner() if orchestrated else DirectRunner()
    return run_pipeline(input_dir, output_dir, warehouse, cutoff, ci, year, month, demo, runner,
                        language)


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
