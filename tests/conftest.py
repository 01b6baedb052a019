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
