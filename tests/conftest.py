import os

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


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
