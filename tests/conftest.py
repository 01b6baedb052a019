import os

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Most tests call the steps directly; tests/test_flows.py runs them under a real Prefect server.
os.environ.setdefault("KVALITET_ORCHESTRATION", "direct")
# The annual report reads the portal's database (the audit round): never the user's own.
os.environ.setdefault("KVALITET_PORTAL_DB", os.path.join(
    os.environ.get("TMPDIR", "/tmp"), f"kvalitet-tests-{os.getpid()}", "portal.sqlite3"))


@pytest.fixture
def input_dir(tmp_path):
    from tests.builders import new_input

    return new_input(tmp_path / "input")


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory):
    """The whole pipeline once on the committed sample input, as a user runs it."""
    from typer.testing import CliRunner

    from pipelines.cli import app
    from pipelines.settings import SAMPLE_INPUT_DIR
    from tests.builders import TEST_KEY

    output = tmp_path_factory.mktemp("sample_run")
    env = {"KVALITET_PSEUDONYM_KEY": TEST_KEY.decode(), "KVALITET_WAREHOUSE": ""}
    result = CliRunner().invoke(app, ["run", "--input", str(SAMPLE_INPUT_DIR), "--output",
                                      str(output), "--verbose"], env=env)
    assert result.exit_code == 0, result.output
    return {"output": output, "log": result.output, "input": SAMPLE_INPUT_DIR}


@pytest.fixture(scope="session")
def sample_reports(sample_run):
    """The annual report and monthly deliveries of the sample run, built by the CLI."""
    from typer.testing import CliRunner

    from pipelines.cli import app

    output = sample_run["output"]
    warehouse = str(output / "kvalitet.duckdb")
    runner = CliRunner()
    annual = runner.invoke(app, ["report", "annual", "--year", "2025", "--warehouse", warehouse])
    assert annual.exit_code == 0, annual.output
    monthly = runner.invoke(app, ["report", "monthly", "--month", "2025-06", "--warehouse",
                                  warehouse])
    assert monthly.exit_code == 0, monthly.output
    return {"annual": output / "reports" / "annual" / "2025",
            "monthly": output / "reports" / "monthly" / "2025-06", **sample_run}


@pytest.fixture(scope="session")
def sample_hierarchy(sample_run):
    """Which region each hospital, municipality and clinic of the sample belongs to, and the
    regions: public reference data, what an attacker subtracting published cells knows."""
    import duckdb

    with duckdb.connect(str(sample_run["output"] / "kvalitet.duckdb"), read_only=True) as con:
        region_of = {
            "hospital": dict(con.sql("SELECT hospital_code, CAST(region_code AS VARCHAR) "
                                     "FROM hospitals").fetchall()),
            "municipality": dict(con.sql("SELECT CAST(municipality_code AS VARCHAR), "
                                         "CAST(region_code AS VARCHAR) FROM municipalities")
                                 .fetchall()),
            "clinic": dict(con.sql("SELECT c.clinic_code, CAST(m.region_code AS VARCHAR) FROM "
                                   "clinics c JOIN municipalities m USING (municipality_code)")
                           .fetchall())}
        regions = [r for (r,) in con.sql("SELECT CAST(region_code AS VARCHAR) FROM regions")
                   .fetchall()]
    return region_of, regions


@pytest.fixture(scope="session")
def chromium():
    """Debian's chromium; the test set-up installs it where it is missing (as CI does)."""
    import shutil
    import subprocess

    path = shutil.which("chromium")
    if path is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)
        path = shutil.which("chromium")
    assert path, "chromium is required for the browser test (apt-get install chromium)"
    return path


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """A real `prefect server start` on a free loopback port, shut down after the session."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    home = tmp_path_factory.mktemp("prefect-server")
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_UI_ENABLED": "false",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    env.pop("PREFECT_API_URL", None)
    log = open(home / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
         "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
        if server.poll() is not None:
            break
    else:
        server.terminate()
        raise AssertionError("the Prefect server did not start: " + (home / "server.log").read_text())
    assert server.poll() is None, (home / "server.log").read_text()
    yield {"url": url, "home": home}
    from tests.builders import stop

    stop(server, log)
