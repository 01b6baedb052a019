"""Scheduled deployments, served from one host against a persistent Prefect server."""

from __future__ import annotations

from pathlib import Path

from prefect import serve
from prefect.schedules import Cron

from pipelines.flows import annual_flow, monthly_flow

TIMEZONE = "Europe/Copenhagen"
MONTHLY_CRON = "0 6 5 * *"   # the 5th of every month at 06:00, for the previous month
ANNUAL_CRON = "0 6 1 3 *"    # 1 March at 06:00, for the previous year


def deployments(input_dir: Path, output_dir: Path, warehouse: Path | None = None) -> list:
    parameters = {"input_dir": str(input_dir), "output_dir": str(output_dir),
                  "warehouse": str(warehouse) if warehouse else None}
    return [
        monthly_flow.to_deployment(name="monthly", schedule=Cron(MONTHLY_CRON, timezone=TIMEZONE),
                                   parameters=parameters, tags=["kvalitet"]),
        annual_flow.to_deployment(name="annual", schedule=Cron(ANNUAL_CRON, timezone=TIMEZONE),
                                  parameters=parameters, tags=["kvalitet"]),
    ]


def serve_deployments(input_dir: Path, output_dir: Path, warehouse: Path | None = None) -> None:
    serve(*deployments(input_dir, output_dir, warehouse), pause_on_shutdown=False)
