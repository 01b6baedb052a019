"""Completeness indicators that match on the same columns share one load of LPR: definitions
that share the load, and those that do not, count as if each were computed alone, whole or
in parts (written by review)."""

from __future__ import annotations

import shutil

import polars as pl

from pipelines import engine, warehouse
from pipelines.definitions import Definition, load_definitions
from pipelines.settings import INDICATORS_DIR

SHIPPED = {d.id: d for d in load_definitions(INDICATORS_DIR)}


def variant(id_: str, registry: str, same: list[str], days: int, base: str = "COMPL_STROKE"
            ) -> Definition:
    fields = SHIPPED[base].model_dump()
    fields.update(id=id_, title=None, completeness={"registry": registry, "same": same, "days": days})
    return Definition.model_validate(fields)


# Two groups by `same` (one with an extra column), several matched registries in each, two
# definitions on one registry, and LPR matched against itself.
DEFINITIONS = [
    variant("COMPL_R1", "stroke", ["pseudonym", "hospital_code"], 1),
    variant("COMPL_R2", "stroke", ["pseudonym", "hospital_code", "municipality_code"], 3),
    variant("COMPL_R3", "hipfracture", ["pseudonym", "hospital_code"], 0, "COMPL_HIP"),
    variant("COMPL_R4", "stroke", ["pseudonym", "hospital_code"], 30),
    variant("COMPL_R5", "lpr", ["pseudonym", "hospital_code"], 0),
    variant("COMPL_R6", "hipfracture", ["pseudonym", "hospital_code", "municipality_code"], 2,
            "COMPL_HIP"),
]


def test_completeness_definitions_counted_together_equal_each_counted_alone(
        sample_run, tmp_path, monkeypatch):
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(sample_run["output"] / "kvalitet.duckdb", path)
    with warehouse.connect(path) as con:
        together = engine.compute_all(con, DEFINITIONS).results
        alone = {d.id: engine.compute_all(con, [d]).results for d in DEFINITIONS}
        monkeypatch.setattr(engine, "rows_per_part", lambda: 700)
        assert engine.part_count(con, ["lpr", "stroke"]) > 5
        in_parts = engine.compute_all(con, DEFINITIONS).results
    assert in_parts.equals(together)
    for d in DEFINITIONS:
        mine = together.filter(pl.col("indicator_id") == d.id)
        assert mine.equals(alone[d.id]), d.id
    national = together.filter(pl.col("level") == "national", pl.col("period_type") == "year")
    matched = dict(national.group_by("indicator_id").agg(pl.col("numerator").sum()).iter_rows())
    # The sample has contacts of every kind: none of the probes is trivially empty, LPR matches
    # each of its own contacts, and a wider window never matches fewer.
    assert all(matched[d.id] > 0 for d in DEFINITIONS), matched
    assert matched["COMPL_R5"] == national.filter(
        pl.col("indicator_id") == "COMPL_R5")["denominator"].sum()
    assert matched["COMPL_R4"] >= matched["COMPL_R1"]
