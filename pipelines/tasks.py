"""Prefect tasks: thin wrappers over ``pipelines.steps`` with retries where I/O can fail.

Compute and report tasks are cached on their inputs, one of which (``content_key``)
is a fingerprint of the content they read (extract hashes, definitions, code,
parameters; or the results file's hash), so unchanged data is not recomputed.
Results are persisted so the cache holds across runs.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prefect import task
from prefect.cache_policies import INPUTS

from pipelines import steps
from pipelines.privacy import gated

# No retries: each file's failure is already contained and reported by the step, and what
# escapes it (another key, a full disk, a held warehouse) would fail again.
ingest_registry = task(gated(steps.ingest_registry), name="ingest-registry",
                       task_run_name="ingest-{source}")
write_validation_report = task(gated(steps.write_validation_report), name="validation-report",
                               retries=1, retry_delay_seconds=2)


@task(name="compute-indicators", cache_policy=INPUTS, persist_result=True)
def compute_indicators(warehouse_path: Path, output: Path, cutoff: dt.date | None, ci: str,
                       skip_registries: tuple[str, ...] = (), content_key: str = "") -> dict:
    return gated(steps.compute_indicators)(warehouse_path, output, cutoff, ci, skip_registries)


@task(name="annual-reports", cache_policy=INPUTS, persist_result=True, retries=1,
      retry_delay_seconds=2)
def annual_reports(warehouse_path: Path, folder: Path, year: int, language: str,
                   content_key: str = "") -> list[str]:
    return gated(steps.annual_reports)(warehouse_path, folder, year, language)


@task(name="monthly-deliveries", cache_policy=INPUTS, persist_result=True, retries=1,
      retry_delay_seconds=2)
def monthly_deliveries(warehouse_path: Path, folder: Path, month: str, language: str,
                       content_key: str = "") -> list[str]:
    return gated(steps.monthly_deliveries)(warehouse_path, folder, month, language)
