"""Every production definition loads; every broken one fails with a message naming file and field."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.definitions import DefinitionError, definition_files, load_definition, load_definitions
from pipelines.settings import INDICATORS_DIR

CATALOGUE = {f"STROKE_0{i}" for i in range(1, 8)} | {f"HIP_0{i}" for i in range(1, 7)} | {
    f"DHRD_0{i}" for i in range(1, 6)} | {"COMPL_STROKE", "COMPL_HIP"}
BROKEN = Path(__file__).parent / "broken_definitions"


def test_every_catalogue_indicator_is_defined_once():
    assert {d.id for d in load_definitions(INDICATORS_DIR)} == CATALOGUE


@pytest.mark.parametrize("path", definition_files(BROKEN), ids=lambda p: p.stem)
def test_broken_definition_fails_readably(path):
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ")
    with pytest.raises(DefinitionError) as error:
        load_definition(path)
    assert expected in str(error.value)


def test_duplicate_ids_are_refused(tmp_path):
    source = (INDICATORS_DIR / "stroke" / "STROKE_01.yaml").read_text()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "STROKE_01.yaml").write_text(source)
    (tmp_path / "b" / "STROKE_01.yaml").write_text(source)
    with pytest.raises(DefinitionError, match="also defined"):
        load_definitions(tmp_path)


def test_check_command_reports_each_broken_file(monkeypatch):
    monkeypatch.setattr("pipelines.settings.INDICATORS_DIR", BROKEN)
    result = CliRunner().invoke(app, ["indicators", "check"])
    assert result.exit_code == 1
    for path in definition_files(BROKEN):
        assert path.name in result.output


def test_check_and_docs_on_the_catalogue(tmp_path):
    runner = CliRunner()
    ok = runner.invoke(app, ["indicators", "check"])
    assert ok.exit_code == 0 and "20 indicator definitions are valid" in ok.output
    target = tmp_path / "catalogue.md"
    docs = runner.invoke(app, ["indicators", "docs", "--output", str(target)])
    assert docs.exit_code == 0, docs.output
    text = target.read_text()
    for indicator in CATALOGUE:
        assert f"## {indicator}" in text
    assert "stroke_unit_at within 24 hours of admission_at" in text
