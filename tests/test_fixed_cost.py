"""Fixed cost of a run: what a direct run imports, one warehouse connection per run, and the
command's exit. Times are measured by benchmarks/fixed_cost.py, never asserted here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from pipelines import warehouse as wh
from tests.builders import TEST_KEY, stroke_row, write_extract

ROOT = Path(__file__).resolve().parent.parent


def _environment(**extra) -> dict:
    env = {**os.environ, "KVALITET_PSEUDONYM_KEY": TEST_KEY.decode(), "KVALITET_WAREHOUSE": "",
           **extra}
    env.pop("PREFECT_API_URL", None)
    return env


def test_a_direct_run_imports_neither_prefect_nor_hypothesis_nor_statsmodels(input_dir, tmp_path):
    """The whole run, not only the imports of its modules: a lazy import on the way (a task
    wrapper, Pandera's data-synthesis strategies, the statistics libraries of a risk model
    or an interval) would show here."""
    write_extract(input_dir, "stroke", "2024-06-30",
                  [stroke_row(record_id=f"R{i}") for i in range(6)])
    code = ("import json, sys\nfrom pipelines.cli import app\n"
            f"try:\n    app(['run', '--input', {str(input_dir)!r}, '--output', "
            f"{str(tmp_path / 'out')!r}])\nexcept SystemExit as stop:\n    status = stop.code\n"
            "print(json.dumps({'status': status, 'loaded': sorted({m.split('.')[0] for m in "
            "sys.modules if m.split('.')[0] in ('prefect', 'hypothesis', 'statsmodels') "
            "or m == 'scipy.stats'})}))")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           cwd=ROOT, env=_environment(KVALITET_ORCHESTRATION="direct"))
    outcome = json.loads(shown.stdout.strip().splitlines()[-1])
    assert outcome["status"] in (0, None), shown.stderr[-2000:]
    assert (tmp_path / "out" / "indicator_results.parquet").exists()
    assert outcome["loaded"] == []


def test_the_command_leaves_with_its_status_and_its_output_written(input_dir, tmp_path):
    """The console script leaves without tearing the interpreter down: with the status the
    command chose, its buffered output written, and nothing else said on stderr."""
    command = [sys.executable, "-m", "pipelines.cli"]
    write_extract(input_dir, "stroke", "2024-06-30",
                  [stroke_row(record_id=f"R{i}") for i in range(6)])
    ran = subprocess.run([*command, "run", "--input", str(input_dir), "--output",
                          str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT,
                         env=_environment(KVALITET_ORCHESTRATION="direct"))
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.rstrip().splitlines()[-1].startswith("manifest -> ")  # the last line
    assert json.loads((tmp_path / "out" / "run_manifest.json").read_text())["registries"]
    assert "leaked" not in ran.stderr and "Traceback" not in ran.stderr
    usage = subprocess.run([*command, "run", "--input", str(ROOT), "--output",
                            str(tmp_path / "o"), "--cutoff", "not-a-date"], capture_output=True,
                           text=True, cwd=ROOT, env=_environment())
    assert usage.returncode == 2, usage.stderr
    assert usage.stderr.strip().splitlines() == [
        "usage: --cutoff 'not-a-date' is not a date YYYY-MM-DD"]
    shown = subprocess.run([*command, "--help"], capture_output=True, text=True, cwd=ROOT,
                           env=_environment())
    assert shown.returncode == 0 and "run" in shown.stdout


def test_a_held_warehouse_is_opened_once_and_shared(tmp_path):
    path = tmp_path / "w.duckdb"
    with wh.held(path):
        with wh.connect(path) as first:
            first.execute("SET memory_limit = '64MB'")
            first.execute("CREATE TABLE t AS SELECT 1 AS x")
        with wh.connect(path, read_only=True) as second:
            assert second is first  # the same open connection, not a second open
            # as a fresh connection would have it: the lowered limit does not carry over
            assert second.sql("SELECT current_setting('memory_limit')").fetchall() != [
                ("64.0 MiB",)]
        seen = {}

        def elsewhere() -> None:
            with wh.connect(path, read_only=True) as con:
                seen["same"] = con is first
                seen["rows"] = con.sql("SELECT x FROM t").fetchall()

        worker = threading.Thread(target=elsewhere)
        worker.start()
        worker.join()
        assert seen == {"same": False, "rows": [(1,)]}  # a cursor of it in another thread
    with wh.connect(path, read_only=True) as con:  # released: an ordinary connection again
        assert con is not first
        assert con.sql("SELECT x FROM t").fetchall() == [(1,)]


def test_a_foreground_prefect_run_sends_no_heartbeats(monkeypatch):
    from prefect.settings import get_current_settings

    from pipelines.flows import foreground_settings

    monkeypatch.delenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", raising=False)
    with foreground_settings():
        assert get_current_settings().flows.heartbeat_frequency is None
    monkeypatch.setenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "60")
    with foreground_settings():  # the user's own setting is followed
        assert os.environ["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == "60"
        assert get_current_settings().flows.heartbeat_frequency is not None


def test_the_wilson_z_is_scipys_to_the_last_bit():
    """Z95 is written out so that Wilson intervals need no scipy import; the bytes of every
    interval depend on it being exactly the value scipy gives."""
    from scipy import stats

    from pipelines.intervals import Z95

    assert Z95 == float(stats.norm.ppf(0.975))


def test_a_profiled_command_still_writes_its_profile(tmp_path):
    """Under a profiler (or coverage) the command exits the ordinary way, so that the tool
    writes what it measured."""
    profile = tmp_path / "run.prof"
    ran = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(profile), "-m",
                          "pipelines.cli", "--help"], capture_output=True, text=True, cwd=ROOT,
                         env=_environment())
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert profile.stat().st_size > 0


def test_polars_allocator_keeps_freed_pages_unless_the_user_says_otherwise():
    """jemalloc reads its settings when Polars loads: they must be in the environment before
    the first import of Polars, which the package's own import must not make. Polars puts its
    own defaults first, and in jemalloc's settings the last word wins."""
    code = ("import os, sys\nimport pipelines\nbefore = 'polars' in sys.modules\n"
            "import pipelines.cli, polars\nprint(before, os.environ['_RJEM_MALLOC_CONF'])")
    for given, expected in ((None, "dirty_decay_ms:60000"), ("dirty_decay_ms:0", "dirty_decay_ms:0")):
        env = _environment()
        env.pop("_RJEM_MALLOC_CONF", None)
        if given:
            env["_RJEM_MALLOC_CONF"] = given
        shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               cwd=ROOT, env=env, check=True)
        polars_loaded, settings = shown.stdout.split()
        assert polars_loaded == "False"
        assert settings.split(",")[-1] == expected, settings
