"""A registry and a reporting level added as data only: declarations, a reference table and an
indicator in a temporary folder, no Python or SQL touched, computed by the pipeline's CLI.

The run is a subprocess so the declarations are read as a user's run reads them
(``KVALITET_SCHEMAS_DIR``, ``KVALITET_INDICATORS_DIR``)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.settings import PROJECT_ROOT
from tests.builders import TEST_KEY, cpr_for, new_input

LEVEL = """
  physio_practice:
    title: {da: Fysioterapiklinik, en: Physiotherapy practice}
    table: physio_practices
    code: practice_code
    code_type: text
    name: practice_name
    via: municipality
    optional: true
"""

REGISTRY = """
# Grain: one row per referral to a physiotherapy practice.
registry: physio_referral
title: {da: Fysioterapi, en: Physiotherapy}
period: referral_date
units:
  physio_practice: practice_code
  municipality: municipality_code
region_from: physio_practice
columns:
  record_id: {type: record_id}
  cpr: {type: cpr}
  municipality_code: {type: unit}
  practice_code: {type: unit}
  referral_date: {type: date}
  first_session_date: {type: date, required: false}
  goal_met: {type: answer}
date_order:
  - {column: first_session_date, not_before: referral_date}
"""

INDICATOR = """
id: PHYSIO_01
version: 1
title: {da: Første behandling inden for 14 dage, en: First session within 14 days}
registry: physio_referral
type: process
population: "age >= 18"
numerator:
  within: {from: referral_date, to: first_session_date, days: 14}
missing_field: first_session_date
standard: {value: 0.8, direction: higher_is_better}
rationale: Early treatment shortens the course.
"""

# Practice 00123 lies in Copenhagen (101, Region Hovedstaden 1084), 04567 in Aarhus (751,
# Region Midtjylland 1082): each reaches its region through its municipality.
PRACTICES = "practice_code;practice_name;municipality_code\n00123;Fysio Nord;101\n04567;Fysio Syd;751\n"
HEADER = "record_id;cpr;municipality_code;practice_code;referral_date;first_session_date;goal_met"


def _declarations(root: Path) -> tuple[Path, Path]:
    schemas = root / "schemas"
    shutil.copytree(PROJECT_ROOT / "schemas" / "registries", schemas / "registries")
    levels = (PROJECT_ROOT / "schemas" / "levels.yaml").read_text(encoding="utf-8")
    (schemas / "levels.yaml").write_text(levels.rstrip("\n") + "\n" + LEVEL, encoding="utf-8")
    (schemas / "registries" / "physio_referral.yaml").write_text(REGISTRY, encoding="utf-8")
    indicators = root / "indicators" / "physio_referral"
    indicators.mkdir(parents=True)
    (indicators / "PHYSIO_01.yaml").write_text(INDICATOR, encoding="utf-8")
    return schemas, root / "indicators"


def _input(root: Path, with_practices: bool = True) -> Path:
    folder = new_input(root / "input")
    if with_practices:
        (folder / "reference" / "physio_practices.csv").write_text(PRACTICES, encoding="utf-8")
    adult, child = cpr_for(dt.date(1960, 4, 2)), cpr_for(dt.date(2015, 4, 2), 7)
    rows = [
        "P1;{a};101;00123;2025-03-03;2025-03-17;ja",   # 14 days: meets
        "P2;{a};147;00123;2025-03-04;2025-03-19;nej",  # 15 days: not met
        "P3;{a};101;00123;2025-03-05;;uoplyst",        # missing first session
        "P4;{c};101;00123;2025-03-06;2025-03-06;ja",   # a child: not in the population
        "P5;{a};751;04567;2025-04-10;2025-04-11;ja",   # the other practice, met
        "P6;{a};751;4567;2025-04-10;2025-04-11;ja",    # 4567 is not 04567: known_code
        "P7;{a};751;04567;2025-04-10;2025-04-01;ja",   # session before referral
    ]
    body = "\n".join([HEADER, *(r.format(a=adult, c=child) for r in rows)]) + "\n"
    (folder / "physio_referral").mkdir()
    (folder / "physio_referral" / "physio_referral_2025-06-30.csv").write_text(body)
    return folder


def _run(schemas: Path, indicators: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KVALITET_SCHEMAS_DIR": str(schemas),
           "KVALITET_INDICATORS_DIR": str(indicators), "KVALITET_PSEUDONYM_KEY": TEST_KEY.decode(),
           "KVALITET_ORCHESTRATION": "direct", "KVALITET_WAREHOUSE": ""}
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=PROJECT_ROOT,
                          env=env, capture_output=True, text=True)


@pytest.mark.slow
def test_a_registry_and_a_level_added_as_data_are_computed(tmp_path):
    schemas, indicators = _declarations(tmp_path)
    folder = _input(tmp_path)
    out = tmp_path / "out"
    ran = _run(schemas, indicators, "run", "--input", str(folder), "--output", str(out))
    assert ran.returncode == 0, ran.stderr[-2000:]
    results = pl.read_parquet(out / "indicator_results.parquet").filter(
        pl.col("period_type") == "year")
    cells = {(r["level"], r["unit_code"]): (r["numerator"], r["denominator"], r["missing"])
             for r in results.iter_rows(named=True)}
    assert cells == {
        ("national", "DK"): (2, 4, 1),
        ("region", "1084"): (1, 3, 1), ("region", "1082"): (1, 1, 0),
        ("physio_practice", "00123"): (1, 3, 1), ("physio_practice", "04567"): (1, 1, 0),
        ("municipality", "101"): (1, 2, 1), ("municipality", "147"): (0, 1, 0),
        ("municipality", "751"): (1, 1, 0),
    }
    names = dict(zip(results["unit_code"], results["unit_name"]))
    assert names["00123"] == "Fysio Nord"
    with duckdb.connect(str(out / "kvalitet.duckdb"), read_only=True) as con:
        rules = sorted(con.sql("SELECT rule, practice_code FROM quarantine").fetchall())
    assert rules == [("before_referral", "04567"), ("known_code", "4567")]

    monthly = _run(schemas, indicators, "report", "monthly", "--month", "2025-03",
                   "--warehouse", str(out / "kvalitet.duckdb"))
    assert monthly.returncode == 0, monthly.stderr[-2000:]
    delivered = sorted(p.name for p in (out / "reports" / "monthly" / "2025-03").iterdir()
                       if p.is_dir())
    assert "physio_practice_00123" in delivered and "municipality_147" in delivered


@pytest.mark.slow
def test_a_record_without_its_optional_unit_counts_at_the_levels_it_has(tmp_path):
    """A unit column may be optional: a referral with no practice counts nationally and in its
    municipality, and has no practice or region row (the practice gives the region)."""
    global REGISTRY
    optional = REGISTRY.replace("practice_code: {type: unit}",
                                "practice_code: {type: unit, required: false}")
    assert optional != REGISTRY
    kept, REGISTRY = REGISTRY, optional
    try:
        schemas, indicators = _declarations(tmp_path)
    finally:
        REGISTRY = kept
    folder = _input(tmp_path)
    extract = folder / "physio_referral" / "physio_referral_2025-06-30.csv"
    adult = cpr_for(dt.date(1960, 4, 2))
    extract.write_text(extract.read_text() + f"P8;{adult};147;;2025-03-05;2025-03-06;ja\n")
    out = tmp_path / "out"
    ran = _run(schemas, indicators, "run", "--input", str(folder), "--output", str(out))
    assert ran.returncode == 0, ran.stderr[-2000:]
    results = pl.read_parquet(out / "indicator_results.parquet").filter(
        pl.col("period_type") == "year")
    cells = {(r["level"], r["unit_code"]): (r["numerator"], r["denominator"])
             for r in results.iter_rows(named=True)}
    assert cells[("national", "DK")] == (3, 5)  # P8 met (1 day) and counts here
    assert cells[("municipality", "147")] == (1, 2)
    assert cells[("physio_practice", "00123")] == (1, 3)  # as without P8
    assert cells[("region", "1084")] == (1, 3)
    assert results.filter(pl.col("unit_code").is_null()).is_empty()


@pytest.mark.slow
def test_the_registry_without_its_reference_table_stops_the_run(tmp_path):
    schemas, indicators = _declarations(tmp_path)
    folder = _input(tmp_path, with_practices=False)
    ran = _run(schemas, indicators, "run", "--input", str(folder), "--output",
               str(tmp_path / "out"))
    assert ran.returncode == 1
    lines = [line for line in ran.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "physio_practices.csv" in lines[0], ran.stderr[-2000:]


def test_a_declaration_that_names_an_undeclared_unit_is_refused(tmp_path):
    """A mistake in a declaration names the file and the field before anything runs."""
    from schemas.declarations import DeclarationError, Declarations

    schemas, _ = _declarations(tmp_path)
    path = schemas / "registries" / "physio_referral.yaml"
    path.write_text(REGISTRY.replace("region_from: physio_practice", "region_from: hospital"))
    with pytest.raises(DeclarationError, match="physio_referral.yaml: region_from"):
        Declarations(schemas)


def test_general_practice_without_clinics_is_a_layout_error(tmp_path):
    """The registry folder without reference/clinics.csv stops the run: exit 1, one line."""
    from typer.testing import CliRunner

    from pipelines.cli import app
    from tests.builders import write_extract

    folder = new_input(tmp_path / "input")
    (folder / "reference" / "clinics.csv").unlink(missing_ok=True)
    write_extract(folder, "general_practice_diabetes", "2025-06-30", [
        {"record_id": "G1", "cpr": cpr_for(dt.date(1950, 1, 2)), "sex": "F",
         "municipality_code": "101", "clinic_code": "009533", "review_date": "2025-03-01",
         "diabetes_type": "DE11", "statin": "ja"}])
    result = CliRunner().invoke(app, ["run", "--input", str(folder), "--output",
                                      str(tmp_path / "out")],
                                env={"KVALITET_PSEUDONYM_KEY": TEST_KEY.decode(),
                                     "KVALITET_WAREHOUSE": ""})
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "clinics.csv" in lines[0], result.output[-1000:]
