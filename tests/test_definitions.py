"""Every production definition loads; every broken one fails with a message naming file and field."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings, strategies as st
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.criteria import (
    MAX_NESTING, MAX_TERMS, Compiler, ConditionRefused, measure, sample_frame, without_values,
)
from pipelines.definitions import (
    MAX_FILE_BYTES, DefinitionError, definition_files, load_definition, load_definitions,
    registry_columns,
)
from pipelines.settings import INDICATORS_DIR
from schemas import EXTRACT_SCHEMAS

CATALOGUE = {f"STROKE_0{i}" for i in range(1, 8)} | {f"HIP_0{i}" for i in range(1, 7)} | {
    f"DHRD_0{i}" for i in range(1, 6)} | {"COMPL_STROKE", "COMPL_HIP"} | {
    f"GP_DIAB_0{i}" for i in range(1, 6)}
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
    assert ok.exit_code == 0 and f"{len(CATALOGUE)} indicator definitions are valid" in ok.output
    target = tmp_path / "catalogue.md"
    docs = runner.invoke(app, ["indicators", "docs", "--output", str(target)])
    assert docs.exit_code == 0, docs.output
    text = target.read_text()
    for indicator in CATALOGUE:
        assert f"## {indicator}" in text
    assert "stroke_unit_at within 24 hours of admission_at" in text


# -- definitions are data, never a denial of service ----------------------------------------

ROOT = Path(__file__).parents[1]
HEADER = """id: {id}
version: 1
title: {{da: x, en: x}}
registry: stroke
type: process
standard: {{value: 0.9, direction: higher_is_better}}
rationale: x
"""


def write(folder: Path, ident: str, body: str) -> Path:
    path = folder / f"{ident}.yaml"
    path.write_text(HEADER.format(id=ident) + body, encoding="utf-8")
    return path


def check_in_subprocess(folder: Path) -> subprocess.CompletedProcess:
    """``indicators check`` in a process of its own: a crash there (Polars' SQL parser once
    segfaulted on a long condition) fails one test instead of ending the suite."""
    env = {**os.environ, "KVALITET_INDICATORS_DIR": str(folder)}
    return subprocess.run([sys.executable, "-m", "pipelines.cli", "indicators", "check"],
                          cwd=ROOT, env=env, capture_output=True, text=True)


# Generated at test time: the first two are the hostile tester's crash and RecursionError.
HOSTILE = {
    "LONG_CHAIN": ('population: "age >= 18"\nnumerator: "' + " AND ".join(["age>1"] * 6000) + '"\n',
                   "LONG_CHAIN.yaml: LONG_CHAIN.numerator: condition has 12000 terms; at most 100"),
    "DEEP_NOT": ('population: "age >= 18"\nnumerator: ' + "{not: " * 5000 + '"age > 1"'
                 + "}" * 5000 + "\n", "DEEP_NOT.yaml: line 9: nested more than 32 levels deep"),
    "TOO_LARGE": ('population: "age >= 18"\nnumerator: "' + " AND ".join(["age > 1"] * 6000)
                  + '"\n',
                  "TOO_LARGE.yaml: larger than 64 KiB"),
    "MANY_CONDITIONS": ('population: "age >= 18"\nnumerator: "age > 1"\ndenominator:\n'
                        + '  - "TRUE"\n' * 5000,
                        "MANY_CONDITIONS.yaml: line 1982: more than 2000 YAML values"),
}


@pytest.mark.parametrize("ident", HOSTILE)
def test_hostile_definition_fails_readably_in_its_own_process(tmp_path, ident):
    body, expected = HOSTILE[ident]
    write(tmp_path, ident, body)
    result = check_in_subprocess(tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_check_command_prints_one_line_per_problem_never_a_traceback():
    """Every committed broken definition (alias bomb, CAST of a text id, ...) in one process."""
    names = {p.name for p in definition_files(BROKEN)}
    result = check_in_subprocess(BROKEN)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines and all(line.split(": ", 1)[0] in names for line in lines), lines
    assert {line.split(": ", 1)[0] for line in lines} == names


def test_a_run_stops_before_ingest_on_a_definition_that_would_fail_mid_run(tmp_path, monkeypatch):
    """The reported crash: CAST(record_id AS INT) passed the check and failed the run
    mid-way, printing record ids. The run now stops first and shows no record's value."""
    from pipelines.settings import SAMPLE_INPUT_DIR
    from tests.builders import TEST_KEY

    definitions = tmp_path / "indicators"
    definitions.mkdir()
    (definitions / "CAST_RECORD_ID.yaml").write_text((BROKEN / "CAST_RECORD_ID.yaml").read_text())
    monkeypatch.setattr("pipelines.settings.INDICATORS_DIR", definitions)
    env = {"KVALITET_PSEUDONYM_KEY": TEST_KEY.decode(), "KVALITET_WAREHOUSE": ""}
    result = CliRunner().invoke(app, ["run", "--input", str(SAMPLE_INPUT_DIR), "--output",
                                      str(tmp_path / "out")], env=env)
    assert result.exit_code == 1
    assert "CAST_RECORD_ID.yaml: CAST_RECORD_ID.population" in result.output
    assert not (tmp_path / "out" / "indicator_results.parquet").exists()
    stroke = next((SAMPLE_INPUT_DIR / "stroke").glob("*.csv"))
    record_ids = pl.read_csv(stroke, columns=["record_id"], infer_schema=False)["record_id"]
    assert not [v for v in record_ids.head(1000) if v and v in result.output]


# -- YAML bounds ----------------------------------------------------------------------------
def test_anchor_alone_is_refused(tmp_path):
    path = write(tmp_path, "ANCHOR", 'population: &p "age >= 18"\nnumerator: "age > 50"\n')
    with pytest.raises(DefinitionError, match=r"^ANCHOR.yaml: line 8: YAML anchors and aliases"):
        load_definition(path)


def test_file_size_limit_is_exact(tmp_path):
    path = write(tmp_path, "PADDED", 'population: "age >= 18"\nnumerator: "age > 50"\n')
    text = path.read_text()
    filler = "#" + "x" * (MAX_FILE_BYTES - len(text.encode()) - 2) + "\n"
    path.write_text(text + filler)
    assert path.stat().st_size == MAX_FILE_BYTES
    assert load_definition(path).id == "PADDED"
    path.write_text(text + filler + "\n")
    with pytest.raises(DefinitionError, match="larger than 64 KiB"):
        load_definition(path)


def test_only_regular_files_are_read(tmp_path):
    """A pipe would block the check forever and a device never ends; neither is opened."""
    os.mkfifo(tmp_path / "PIPE.yaml")
    (tmp_path / "ZERO.yaml").symlink_to("/dev/zero")
    with pytest.raises(DefinitionError) as error:
        load_definitions(tmp_path)
    assert str(error.value).splitlines() == ["PIPE.yaml: not a regular file",
                                             "ZERO.yaml: not a regular file"]


def test_nesting_limit_lets_real_criteria_through(tmp_path):
    """Ten nested not/all levels (21 YAML levels) load; 40 levels do not."""
    ok = write(tmp_path, "NESTED", 'population: "age >= 18"\nnumerator: '
               + "{not: {all: [" * 5 + '"age > 1"' + "]}}" * 5 + "\n")
    assert load_definition(ok).numerator is not None
    deep = write(tmp_path, "DEEPER", 'population: "age >= 18"\nnumerator: '
                 + "{not: {all: [" * 20 + '"age > 1"' + "]}}" * 20 + "\n")
    with pytest.raises(DefinitionError, match="nested more than 32 levels deep"):
        load_definition(deep)


def test_condition_count_limit(tmp_path):
    path = write(tmp_path, "WIDE", 'population: "age >= 18"\nnumerator: "age > 1"\n'
                 "denominator:\n" + '  - "TRUE"\n' * 98)
    assert len(load_definition(path).denominator) == 98  # 100 conditions with the other two
    path.write_text(path.read_text() + '  - "TRUE"\n')
    with pytest.raises(DefinitionError, match="^WIDE.yaml: WIDE: 101 conditions; at most 100$"):
        load_definition(path)


def test_an_integer_of_5000_digits_is_a_readable_error(tmp_path):
    path = write(tmp_path, "BIG", 'population: "age >= 18"\nnumerator: "age > 50"\n')
    path.write_text(path.read_text().replace("version: 1", "version: " + "9" * 5000))
    with pytest.raises(DefinitionError, match="^BIG.yaml: not valid YAML"):
        load_definition(path)


# -- condition text bounds ------------------------------------------------------------------
REFUSED = {
    "age > 1 -- AND age > 2": "comments are not allowed",
    "age > 1 /* ' */": "comments are not allowed",
    "E'a' = 'a'": "put a space before the quote",
    "$$a$$ = 'a'": "character '$' is not allowed",
    "`age` > 1": "character '`' is not allowed",
    "age > 1; age > 2": "character ';' is not allowed",
    "age IN (SELECT 1)": "subqueries (SELECT) are not allowed",
    "LENGTH(LPAD(record_id, 1000000000, 'x')) > 0": "function LPAD is not allowed",
    "LENGTH(REPLACE(record_id, '', 'xx')) > 0": "function REPLACE is not allowed",
    '"lpad"(record_id, 5) = \'x\'': "function LPAD is not allowed",
    "COUNT(*) > 0": "function COUNT is not allowed",
    "(" * (MAX_NESTING + 1) + "age > 1" + ")" * (MAX_NESTING + 1): "parentheses deep",
}


@pytest.mark.parametrize("text", REFUSED)
def test_condition_text_outside_the_bounds_is_refused_before_parsing(text):
    with pytest.raises(ConditionRefused, match=re.escape(REFUSED[text])):
        measure(text)


ATOMS = {  # a condition and its number of operators
    "age > 1": 1, "diagnosis IN ('DI61', 'DI63')": 1, "LEFT(diagnosis, 3) = 'DI6'": 1,
    "thrombolysis_at IS NOT NULL": 2, "NOT sss_score <= 5": 2, "age BETWEEN 18 AND 64": 2,
    "COALESCE(prestroke_mrs, 0) + 1 >= 2": 2, '"record_id" <> \'AND OR NOT ((\'': 1,
}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(sorted(ATOMS)), min_size=1, max_size=60),
       st.lists(st.sampled_from([" AND ", " OR ", " and not "]), min_size=60, max_size=60))
def test_terms_add_up_over_a_chain(atoms, joins):
    """Terms = operators + 1, so joining conditions adds their operators and the joints."""
    text = atoms[0] + "".join(j + a for j, a in zip(joins, atoms[1:]))
    joints = sum(2 if "not" in j else 1 for j in joins[:len(atoms) - 1])
    assert measure(text) == sum(ATOMS[a] for a in atoms) + joints + 1


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_quoted_text_never_counts(value):
    """Whatever a string literal holds (quotes, brackets, keywords, comments) is one term."""
    literal = "'" + value.replace("'", "''") + "'"
    assert measure(f"diagnosis = {literal}") == 2
    assert measure(f'"{value.replace(chr(34), chr(34) * 2)}" = {literal}') == 2


def test_the_term_limit_is_exact(tmp_path):
    at_limit = " AND ".join(["TRUE"] * (MAX_TERMS // 2)) + " AND " + " AND ".join(
        ["TRUE"] * (MAX_TERMS // 2 - 1)) + " OR TRUE"
    assert measure(at_limit) == MAX_TERMS
    write(tmp_path, "AT_LIMIT", f'population: "{at_limit}"\nnumerator: "age > 1"\n')
    write(tmp_path, "OVER", f'population: "{at_limit} OR TRUE"\nnumerator: "age > 1"\n')
    assert load_definition(tmp_path / "AT_LIMIT.yaml").id == "AT_LIMIT"
    expected = f"condition has {MAX_TERMS + 1} terms; at most {MAX_TERMS}"
    with pytest.raises(DefinitionError, match=expected):
        load_definition(tmp_path / "OVER.yaml")


ALLOWED = [
    "TRY_CAST(record_id AS INT) > 0", "CAST(sss_score AS DOUBLE) >= 10.5",
    "COALESCE(prestroke_mrs, 0) <= 2", "EXTRACT(YEAR FROM admission_at) >= 2020",
    "diagnosis LIKE 'DI6%' AND sex = 'F'", "CASE WHEN age > 80 THEN TRUE ELSE FALSE END",
    "record_id IS DISTINCT FROM 'S-001'", "LOWER(TRIM(record_id)) <> ''",
    "(" * MAX_NESTING + "age > 1" + ")" * MAX_NESTING, "municipality_code IN (101, 851)",
    "discharge_at - admission_at <= INTERVAL '30 days'", "death_date >= DATE '2020-01-01'",
]


@pytest.mark.parametrize("text", ALLOWED)
def test_conditions_that_work_on_every_valid_record_pass(tmp_path, text):
    """No false alarms from the sample records: these hold for any value the contract allows."""
    path = write(tmp_path, "FINE", f'population: {json.dumps(text)}\nnumerator: "age > 1"\n')
    assert load_definition(path).population == text


# -- sample records and messages ------------------------------------------------------------
@pytest.mark.parametrize("registry", sorted(EXTRACT_SCHEMAS))
def test_sample_records_meet_the_data_contract(registry):
    """The trial must not cry wolf: sample values are ones the contract lets through."""
    sample = sample_frame(registry_columns(registry), (registry,))
    assert sample.schema == pl.Schema(registry_columns(registry))
    for spec in EXTRACT_SCHEMAS[registry].columns:
        if spec.name == "cpr":
            continue
        values = sample[spec.name]
        present = values.drop_nulls().to_list()
        if spec.required and spec.kind != "answer":
            assert values.null_count() == 0, spec.name
        if spec.allowed:
            assert set(present) <= set(spec.allowed), spec.name
        if spec.pattern:
            assert all(re.match(spec.pattern, v) for v in present), spec.name
        if spec.kind == "answer":
            assert set(present) <= {"ja", "nej", "uoplyst"}, spec.name
        if spec.minimum is not None:
            assert min(present) >= spec.minimum and max(present) <= spec.maximum, spec.name
    if "record_id" in sample.columns:  # the awkward value the reported crash needed
        assert any(not v.isdigit() for v in sample["record_id"])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.from_regex(r"V-[A-Za-z0-9 /]{1,12}", fullmatch=True), min_size=1, max_size=5))
def test_polars_messages_lose_the_values_they_quote(values):
    frame = pl.DataFrame({"record_id": values})
    with pytest.raises(Exception) as error:
        frame.select(pl.sql_expr("CAST(record_id AS INT) > 0"))
    assert any(v in str(error.value) for v in values)  # Polars does quote them
    cleaned = without_values(error.value, frame.columns)
    assert "record_id" in cleaned
    assert not [v for v in values if v in cleaned]


def test_a_trial_failure_names_file_and_field_and_no_sample_value():
    with pytest.raises(DefinitionError) as error:
        load_definition(BROKEN / "CAST_RECORD_ID.yaml")
    message = str(error.value)
    assert len(message.splitlines()) == 1
    reason = message.split("fails on valid stroke records: ", 1)[1]
    assert "column 'record_id'" in reason
    sample = Compiler("stroke").frame("sample")
    values = {v for column in sample.columns for v in sample[column].drop_nulls().cast(pl.String)}
    assert not [v for v in values if len(v) > 2 and v in reason], "a sample value is quoted"
