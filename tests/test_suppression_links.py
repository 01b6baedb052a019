"""Indicators that count the same records are found from their definitions, so that the
small-number rule hides in one what it hides in the other (an attack recovered STROKE_02's
hidden numerators from STROKE_03's published denominators)."""

from __future__ import annotations

from pipelines.definitions import load_definitions
from pipelines.settings import INDICATORS_DIR
from reports.suppression import _conjuncts, shared_counts


def test_the_catalogues_identities_are_found():
    pairs = set(shared_counts(load_definitions(INDICATORS_DIR)))
    # written out from the catalogue: a denominator that is another's numerator, the same
    # population once follow-up is complete, a denominator less its missing records
    for pair in [("STROKE_02", "STROKE_03"), ("STROKE_03", "STROKE_07"),
                 ("STROKE_01", "STROKE_06"), ("DHRD_01", "DHRD_05")]:
        assert pair in pairs, pair
    # different records: not linked (they would only hide more)
    for pair in [("STROKE_01", "STROKE_02"), ("STROKE_02", "STROKE_04"), ("HIP_01", "HIP_02"),
                 ("DHRD_01", "DHRD_02")]:
        assert pair not in pairs, pair
    registries = {d.id: d.registry for d in load_definitions(INDICATORS_DIR)}
    assert all(registries[a] == registries[b] for a, b in pairs)


def test_conditions_split_at_top_level_ands_only():
    assert _conjuncts("a = 1 AND b = 'x AND y'") == {"a = 1", "b = 'x AND y'"}
    assert _conjuncts("age BETWEEN 18 AND 64 and sex = 'F'") == {"age BETWEEN 18 AND 64",
                                                                "sex = 'F'"}
    assert _conjuncts("(a = 1 AND b = 2) OR c = 3") == {"(a = 1 AND b = 2) OR c = 3"}
    assert _conjuncts("a  =  1") == _conjuncts("a = 1")
