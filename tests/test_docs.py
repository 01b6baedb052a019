"""The docs stand alone and name what the code does: a clone has no shared/ folder, and a
rule, column or command the docs leave out is one a registry cannot act on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.privacy import cpr_spans
from schemas import EXTRACT_SCHEMAS
from schemas.columns import RULES

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT / "docs" / "data-contract.md"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _code_spans(text: str) -> set[str]:
    return set(re.findall(r"`([^`\n]+)`", text))


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_pointer_outside_the_repo(path):
    text = path.read_text(encoding="utf-8")
    for pointer in ("../shared", "shared/spec"):
        assert pointer not in text, f"{path.name} points to {pointer}, which a clone lacks"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_cpr_shaped_example(path):
    # Counted, never printed: the value itself must not reach test output.
    assert not cpr_spans(path.read_text(encoding="utf-8")), f"{path.name} holds a CPR-shaped value"


def test_contract_names_every_quarantine_rule():
    named = _code_spans(CONTRACT.read_text(encoding="utf-8"))
    missing = sorted(set(RULES) - named)
    assert not missing, f"rules not in docs/data-contract.md: {missing}"
    # The second release's name for a line that cannot be split, whichever name RULES uses.
    assert "unparseable_row" in named


@pytest.mark.parametrize("source", sorted(EXTRACT_SCHEMAS))
def test_contract_names_every_column(source):
    named = _code_spans(CONTRACT.read_text(encoding="utf-8"))
    missing = [c for c in EXTRACT_SCHEMAS[source].names if c not in named]
    assert not missing, f"{source} columns not in docs/data-contract.md: {missing}"
    assert f"#### {source}:" in CONTRACT.read_text(encoding="utf-8"), f"no section for {source}"


def readme_commands() -> list[list[str]]:
    """Subcommands named in the first cell of README's command table: the words after
    'kvalitet' up to the first option or placeholder; 'a|b' names two."""
    commands = []
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        cell = re.match(r"\|\s*`kvalitet ((?:[^`\\]|\\.)+)`", line)
        if not cell:
            continue
        words = []
        for token in cell.group(1).replace("\\|", "|").split():
            if not re.fullmatch(r"[a-z][a-z-]*(\|[a-z][a-z-]*)*", token):
                break
            words.append(token.split("|"))
        alternatives = [[]]
        for options in words:
            alternatives = [a + [o] for a in alternatives for o in options]
        commands.extend(alternatives)
    return commands


def test_readme_table_is_parsed():
    commands = {" ".join(c) for c in readme_commands()}
    # The table's rows, read back: a parser that finds nothing would pass the test below.
    assert {"run", "ingest", "demo", "extract list", "extract retract", "report annual",
            "report monthly", "model report", "indicators check"} <= commands


@pytest.mark.parametrize("command", readme_commands(), ids=" ".join)
def test_readme_command_exists(command):
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, f"kvalitet {' '.join(command)} --help: {result.output}"


def test_a_command_that_does_not_exist_fails_help():
    # The check above means something only if an unknown subcommand is refused.
    assert CliRunner().invoke(app, ["extract", "undo", "--help"]).exit_code != 0


def test_the_recipes_registry_declaration_is_valid_as_printed(tmp_path):
    """A data manager copies the recipe's YAML: it must declare a registry as shown (it once
    carried another registry's date_order, which failed)."""
    import shutil

    import yaml

    from schemas.declarations import Declarations

    text = (ROOT / "docs" / "recipes.md").read_text(encoding="utf-8")
    block = re.search(r"## Adding a registry.*?```yaml\n(.*?)```", text, re.S).group(1)
    declaration = yaml.safe_load("\n".join(line[3:] for line in block.splitlines()))
    declaration["registry"] = "recipe_copy"
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    (tmp_path / "schemas" / "registries" / "recipe_copy.yaml").write_text(
        yaml.safe_dump(declaration, allow_unicode=True), encoding="utf-8")
    registry = Declarations(tmp_path / "schemas").registries["recipe_copy"]
    assert registry.date_order and registry.date_order[0].column == "review_date"
