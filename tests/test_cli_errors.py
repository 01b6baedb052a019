"""A mistake a user makes in a setting, a declaration or an option ends the command with a
clear line and a documented exit status, never a traceback (found by following the docs as a
new user: each of these printed one)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import TEST_KEY

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "input"


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KVALITET_", "PREFECT_"))}
    clean.update({"KVALITET_PSEUDONYM_KEY": TEST_KEY.decode(), "KVALITET_ORCHESTRATION": "direct",
                  "PREFECT_HOME": str(tmp_path / "prefect"), "PYTHONPATH": str(ROOT)}, **env)
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=ROOT, env=clean,
                          capture_output=True, text=True, timeout=300)


def _one_clear_line(done: subprocess.CompletedProcess, status: int, says: str) -> None:
    assert "Traceback" not in done.stderr + done.stdout
    assert done.returncode == status, done.stderr[-500:]
    assert says in done.stderr, done.stderr[-500:]


@pytest.mark.parametrize("name, value, says", [
    ("KVALITET_RUN_DATE", "notadate", "KVALITET_RUN_DATE must be a date YYYY-MM-DD"),
    ("KVALITET_ORCHESTRATION", "bogus", "KVALITET_ORCHESTRATION must be one of auto, direct, "
                                        "prefect"),
    ("KVALITET_SMALL_NUMBER_MAX", "x", "KVALITET_SMALL_NUMBER_MAX must be a whole number"),
    ("KVALITET_SMALL_NUMBER_MIN", "0", "KVALITET_SMALL_NUMBER_MIN must be at least 1"),
])
def test_a_bad_setting_stops_the_run_before_any_work(tmp_path, name, value, says):
    out = tmp_path / "out"
    done = _run(tmp_path, "run", "--input", str(SAMPLE), "--output", str(out), **{name: value})
    _one_clear_line(done, 1, says)
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (out / "kvalitet.duckdb").exists()  # nothing was loaded


def test_a_broken_registry_declaration_is_one_line(tmp_path):
    """Copying another registry's date_order into a new declaration (as a recipe once showed)."""
    schemas = tmp_path / "schemas"
    shutil.copytree(ROOT / "schemas", schemas)
    declaration = (schemas / "registries" / "stroke.yaml").read_text(encoding="utf-8")
    (schemas / "registries" / "copd.yaml").write_text(
        declaration.replace("registry: stroke", "registry: copd").replace(
            "  - {column: discharge_at, not_before: admission_at}",
            "  - {column: discharge_day, not_before: admission_at}"), encoding="utf-8")
    for args in (("indicators", "check"), ("run", "--input", str(SAMPLE), "--output",
                                           str(tmp_path / "out"))):
        done = _run(tmp_path, *args, KVALITET_SCHEMAS_DIR=str(schemas))
        _one_clear_line(done, 1, "copd.yaml: date_order: 'discharge_day'")


def test_indicators_docs_on_a_broken_definition_names_the_problem(tmp_path):
    indicators = tmp_path / "indicators"
    shutil.copytree(ROOT / "indicators", indicators)
    path = indicators / "stroke" / "STROKE_01.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "registry: stroke", "registry: nosuchregistry"), encoding="utf-8")
    done = _run(tmp_path, "indicators", "docs", "--output", str(tmp_path / "catalogue.md"),
                KVALITET_INDICATORS_DIR=str(indicators))
    _one_clear_line(done, 1, "STROKE_01.yaml")
    assert not (tmp_path / "catalogue.md").exists()


def test_serve_without_a_reachable_prefect_server_is_one_line(tmp_path):
    done = _run(tmp_path, "serve", "--input", str(SAMPLE), "--output", str(tmp_path / "out"),
                PREFECT_API_URL="http://127.0.0.1:9/api")
    _one_clear_line(done, 1, "cannot reach the Prefect server in PREFECT_API_URL")


@pytest.mark.parametrize("option", [("--port", "70000"), ("--port", "0"), ("--workers", "0")])
def test_portal_serve_refuses_an_impossible_port_as_usage(tmp_path, option):
    done = _run(tmp_path, "portal", "serve", "--output", str(tmp_path), *option)
    _one_clear_line(done, 2, option[0])


def test_portal_serve_on_a_port_in_use_is_an_error_not_completed_with_failures(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _run(tmp_path, "portal", "serve", "--output", str(tmp_path), "--port", str(port),
                    KVALITET_PORTAL_DB=str(tmp_path / "portal.sqlite3"))
    _one_clear_line(done, 1, f"the portal could not start on 127.0.0.1:{port}")
