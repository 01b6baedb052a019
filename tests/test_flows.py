"""Orchestration: flows under a real Prefect server, scheduled deployments, failures isolated,
manifests deterministic, runs incremental."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.settings import PREFECT_API_URL, temporary_settings

from pipelines import flows, steps
from pipelines.extract_reader import content_hash
from pipelines.settings import SAMPLE_INPUT_DIR
from tests.builders import TEST_KEY, stop


@pytest.fixture
def small_input(tmp_path):
    """A copy of the committed sample input (large enough for the case-mix models)."""
    shutil.copytree(SAMPLE_INPUT_DIR, tmp_path / "input")
    return tmp_path / "input"


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("KVALITET_PSEUDONYM_KEY", TEST_KEY.decode())


def task_states(flow_run_id) -> dict[str, str]:
    """State names by task name (Prefect appends a short random suffix to run names)."""
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[flow_run_id])))
    return {r.name.rsplit("-", 1)[0] if r.name.count("-") > 1 and not r.name.startswith(
        "ingest-") else r.name: r.state.name for r in runs}


def artifact_keys(flow_run_id) -> set[str]:
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[flow_run_id])))
    return {a.key for a in artifacts}


@pytest.mark.slow
def test_flow_under_prefect_leaves_artifacts_and_caches(prefect_server, small_input, tmp_path,
                                                         key):
    output = tmp_path / "out"
    with temporary_settings(updates={PREFECT_API_URL: prefect_server["url"]}):
        state = flows.run_flow(small_input, output, year=2025, return_state=True)
        assert state.is_completed(), state.message
        first = state.result()
        run_id = state.state_details.flow_run_id
        assert {"validation-summary", "indicator-overview", "run-summary",
                "annual-report-stroke"} <= artifact_keys(run_id)
        assert task_states(run_id)["compute-indicators"] == "Completed"
        again = flows.run_flow(small_input, output, year=2025, return_state=True)
        states = task_states(again.state_details.flow_run_id)
    assert states["compute-indicators"] == "Cached"
    assert states["annual-reports"] == "Cached"
    assert again.result()["files_already_loaded"] == first["files_loaded"] == 12
    assert Path(first["results"]).exists()


@pytest.mark.slow
def test_one_failing_registry_does_not_fail_the_others(prefect_server, small_input, tmp_path,
                                                        key, monkeypatch):
    real = steps.ingest_directory

    def broken_for_hips(input_dir, warehouse, key, sources=None, **kwargs):
        if sources == ("hipfracture",):
            raise OSError("disk read error while reading hipfracture extracts")
        return real(input_dir, warehouse, key, sources=sources, **kwargs)

    monkeypatch.setattr(steps, "ingest_directory", broken_for_hips)
    with temporary_settings(updates={PREFECT_API_URL: prefect_server["url"]}):
        summary = flows.run_flow(small_input, tmp_path / "out")
    assert summary["registries"]["hipfracture"].startswith("failed: OSError: disk read error")
    assert {s for s, v in summary["registries"].items() if v == "completed"} == {
        "stroke", "cardiac_rehab_hospital", "cardiac_rehab_municipal", "lpr",
        "general_practice_diabetes"}
    manifest = json.loads(Path(summary["manifest"]).read_text())
    assert manifest["registries"]["hipfracture"].startswith("failed")


def test_same_inputs_and_code_give_identical_results(small_input, tmp_path, key):
    runs = [flows.pipeline(small_input, tmp_path / f"out{i}", orchestrated=False)
            for i in range(2)]
    manifests = [json.loads(Path(r["manifest"]).read_text()) for r in runs]
    hashes = [{o["path"]: o["sha256"] for o in m["outputs"]} for m in manifests]
    assert hashes[0]["indicator_results.parquet"] == hashes[1]["indicator_results.parquet"]
    assert hashes[0] == hashes[1]
    assert manifests[0]["inputs"] == manifests[1]["inputs"]
    assert {d["id"] for d in manifests[0]["definitions"]} >= {"STROKE_01", "COMPL_HIP"}
    for m in manifests:
        assert m["code"]["package"] and m["cutoff"] == "2025-12-31"
        assert set(m["timings_seconds"]) >= {"compute_indicators", "total"}
        assert m["parameters"]["ci"] == "wilson"


def test_a_new_extract_is_the_only_file_ingested(small_input, tmp_path, key):
    output = tmp_path / "out"
    first = flows.pipeline(small_input, output, orchestrated=False)
    new = small_input / "stroke" / "stroke_2026-01-31.csv"
    old = sorted((small_input / "stroke").glob("*.csv"))[-1]
    new.write_bytes(old.read_bytes().replace(b"2025-12-31", b"2026-01-30"))
    second = flows.pipeline(small_input, output, orchestrated=False)
    manifest = json.loads(Path(second["manifest"]).read_text())
    loaded = [f["file_name"] for f in manifest["ingest"] if f["status"] == "loaded"]
    assert loaded == ["stroke_2026-01-31.csv"]
    assert second["files_already_loaded"] == first["files_loaded"]
    assert second["cutoff"] == "2026-01-31"


@pytest.mark.slow
def test_scheduled_deployments_run_through_the_api(prefect_server, tmp_path):
    from prefect.deployments import run_deployment

    output = tmp_path / "served"
    env = {**os.environ, "PREFECT_API_URL": prefect_server["url"],
           "PREFECT_HOME": str(tmp_path / "client-home"), "PREFECT_RUNNER_POLL_FREQUENCY": "2",
           "KVALITET_PSEUDONYM_KEY": TEST_KEY.decode(), "KVALITET_ORCHESTRATION": "prefect"}
    log = open(tmp_path / "serve.log", "w")
    served = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "serve", "--input",
                               str(SAMPLE_INPUT_DIR), "--output", str(output)],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        with temporary_settings(updates={PREFECT_API_URL: prefect_server["url"]}):
            with get_client(sync_client=True) as client:
                deadline = time.monotonic() + 120
                while True:
                    try:
                        monthly = client.read_deployment_by_name("kvalitet-monthly/monthly")
                        annual = client.read_deployment_by_name("kvalitet-annual/annual")
                        break
                    except Exception:
                        assert served.poll() is None, (tmp_path / "serve.log").read_text()
                        assert time.monotonic() < deadline, "deployments were not registered"
                        time.sleep(1)
            schedules = {d.name: d.schedules[0].schedule for d in (monthly, annual)}
            assert (schedules["monthly"].cron, schedules["monthly"].timezone) == (
                "0 6 5 * *", "Europe/Copenhagen")
            assert (schedules["annual"].cron, schedules["annual"].timezone) == (
                "0 6 1 3 *", "Europe/Copenhagen")
            run = run_deployment("kvalitet-monthly/monthly", parameters={"month": "2025-12"},
                                 timeout=600)
            assert run.state.is_completed(), (run.state.message,
                                              (tmp_path / "serve.log").read_text()[-3000:])
            keys = artifact_keys(run.id)
        assert {"validation-summary", "indicator-overview", "monthly-deliveries"} <= keys
        assert (output / "indicator_results.parquet").exists()
        assert (output / "run_manifest.json").exists()
        assert len(list((output / "reports" / "monthly" / "2025-12").iterdir())) > 100
    finally:
        stop(served, log)


def test_previous_periods():
    import datetime as dt

    assert flows.previous_month(dt.date(2026, 1, 5)) == "2025-12"
    assert flows.previous_month(dt.date(2026, 3, 5)) == "2026-02"
    assert flows.previous_year(dt.date(2026, 3, 1)) == 2025
    assert content_hash  # imported for the manifest checks


@pytest.mark.slow
def test_a_changed_reference_table_is_not_served_from_the_cache(prefect_server, small_input,
                                                                 tmp_path, key):
    """A hospital renamed and moved to another region: names, regions and counts follow."""
    import polars as pl

    output = tmp_path / "out"
    hospitals = small_input / "reference" / "hospitals.csv"
    with temporary_settings(updates={PREFECT_API_URL: prefect_server["url"]}):
        first = flows.run_flow(small_input, output, return_state=True)
        assert first.is_completed(), first.message
        before = pl.read_parquet(output / "indicator_results.parquet")
        lines = hospitals.read_text(encoding="utf-8").splitlines()
        code, _, region = lines[1].split(",")
        other = "1085" if region != "1085" else "1081"
        lines[1] = f"{code},Nyt Navn Hospital,{other}"
        hospitals.write_text("\n".join(lines) + "\n", encoding="utf-8")
        again = flows.run_flow(small_input, output, return_state=True)
        states = task_states(again.state_details.flow_run_id)
    assert states["compute-indicators"] == "Completed"
    after = pl.read_parquet(output / "indicator_results.parquet")
    renamed = after.filter(pl.col("level") == "hospital", pl.col("unit_code") == code)
    assert set(renamed["unit_name"]) == {"Nyt Navn Hospital"}

    def region_denominator(frame, region_code):
        return frame.filter(pl.col("indicator_id") == "STROKE_01", pl.col("period_type") == "year",
                            pl.col("level") == "region", pl.col("unit_code") == region_code
                            )["denominator"].sum()

    moved = before.filter(pl.col("indicator_id") == "STROKE_01", pl.col("period_type") == "year",
                          pl.col("level") == "hospital", pl.col("unit_code") == code
                          )["denominator"].sum()
    assert moved > 0
    assert region_denominator(after, other) == region_denominator(before, other) + moved
