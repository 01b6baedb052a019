"""Clean-room checks that need runs of their own: the risk model's stop rule, loading twice,
an LPR extract delivered again, and the window rule as a property.

Inputs come from tests/cleanroom_cases.py (spec-only, no engine import); expectations are
the spec's sentences, written out by hand.
"""
from __future__ import annotations

import re
import shutil

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests import cleanroom_cases as cc
from tests.test_cleanroom_indicators import KEY, read_rows, run_cli

# S-SW01 is also the id of a hip probe: keep the stroke record under that id
BY_ID = {c.rid: c for c in cc.ALL_CASES
         if c.registry != "hipfracture" or c.rid.startswith("H-")}
CPR_LIKE = re.compile(r"\d{6}[- ]?\d{4}")


def _input(tmp_path, ids, lpr=()):
    return cc.build_input(tmp_path / "input", [BY_ID[i] for i in ids], list(lpr))


def test_a_category_with_records_but_no_events_stops_the_run(tmp_path):
    """Catalogue: 'a category with records but no events stops the run with a message naming the
    indicator, variable and category'. 85+ has SG03 and SG07, neither died; 18-64 has deaths."""
    src = _input(tmp_path, ["S-SE03", "S-SE04", "S-SW02", "S-SW03", "S-SG03", "S-SG07"])
    result = run_cli(src, tmp_path / "out")
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    assert "STROKE_06" in last and "85+" in last and re.search(r"age", last, re.I)
    assert not CPR_LIKE.search(result.output)


def test_a_year_without_any_event_has_no_model_but_the_run_goes_on(tmp_path):
    """Ambiguity A14: in a year with no deaths every category has records and no events, so the
    literal catalogue sentence would stop the run; the pipeline documents (docs/method.md, risk
    adjustment) that such a year has no model and its rows no expected counts. Its reading is
    tested here. 2024: HR01-03 alive; 2025: HW08, HW09 died."""
    src = _input(tmp_path, ["H-HR01", "H-HR02", "H-HR03", "H-HW08", "H-HW09", "H-HW01", "H-HW02"])
    result = run_cli(src, tmp_path / "out")
    assert result.exit_code == 0, result.output[-1500:]
    rows = read_rows(tmp_path / "out")
    y2024 = rows[("HIP_05", "year", "2024", "national", "DK")]
    assert (y2024["numerator"], y2024["denominator"]) == (0, 3)
    assert y2024["expected"] is None and y2024["oe_ratio"] is None
    y2025 = rows[("HIP_05", "year", "2025", "national", "DK")]
    assert (y2025["numerator"], y2025["denominator"]) == (2, 4)
    # the score equation: the sum of the fitted risks equals the events
    assert y2025["expected"] == pytest.approx(2.0, abs=1e-6)


def test_loading_the_same_extracts_twice_changes_nothing(tmp_path):
    """Contract: 'Loading the same extract twice changes nothing.' (A second run, one warehouse.)"""
    src = cc.build_input(tmp_path / "input")
    first = run_cli(src, tmp_path / "out")
    assert first.exit_code == 0, first.output[-1500:]
    before = pq.read_table(tmp_path / "out" / "indicator_results.parquet").to_pylist()
    second = run_cli(src, tmp_path / "out")
    assert second.exit_code == 0, second.output[-1500:]
    after = pq.read_table(tmp_path / "out" / "indicator_results.parquet").to_pylist()
    order = lambda rows: sorted(rows, key=lambda r: tuple(r[k] for k in KEY))  # noqa: E731
    assert order(after) == order(before)


def test_an_lpr_extract_delivered_again_later_does_not_count_twice(tmp_path):
    """Contract: every accepted row of every LPR extract counts and the completeness rule removes
    repeats: the same contacts in a later extract leave COMPL_* unchanged."""
    src = cc.build_input(tmp_path / "input")
    assert run_cli(src, tmp_path / "a").exit_code == 0
    shutil.copy(src / "lpr" / "lpr_2025-12-31.csv", src / "lpr" / "lpr_2026-01-10.csv")
    again = run_cli(src, tmp_path / "b")
    assert again.exit_code == 0, again.output[-1500:]
    compl = lambda rows: {k: (r["numerator"], r["denominator"]) for k,
                          r in rows.items()  # noqa: E731
                          if k[0].startswith("COMPL")}
    assert compl(read_rows(tmp_path / "b")) == compl(read_rows(tmp_path / "a"))


# --------------------------------------------------------------------------- windows as a property

def _hms(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    s = abs(seconds)
    return f"{sign}{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offsets=st.lists(st.one_of(st.integers(-120, 120), st.integers(86400 - 120, 86400 + 120),
                                  st.integers(-3 * 86400, 3 * 86400)), min_size=1, max_size=12),
       days=st.lists(st.one_of(st.integers(-3, 3), st.integers(362, 368)), min_size=1, max_size=8))
@example(offsets=[86400, 86401, 0, -1, 86399], days=[365, 366, 0, -1])
def test_window_rules_hold_for_any_offsets(tmp_path_factory, offsets, days):
    """'Within 24 h' is 0 <= later - earlier <= 86 400 s on the datetimes (to the second);
    'within 365 days before the review' is 0 <= review - measurement <= 365 days."""
    from datetime import date, timedelta

    base = tmp_path_factory.mktemp("window")
    cases = []
    for i, off in enumerate(offsets):
        cases.append(cc.stroke(f"S-P{i:03d}", "2025-03-10 08:00", "MF"[i % 2], cc.B, "property",
                               "H101", 851,
                               over={"stroke_unit_at": _hms(off)}))
    review = date(2025, 5, 15)
    for i, d in enumerate(days):
        cases.append(cc.gp(f"G-P{i:03d}", review.isoformat(), "MF"[i % 2],
                           "G1:N G2:N G3:N G4:N G5:N", "property",
                           "009533", 101, hba1c_date=(review - timedelta(days=d)).isoformat()))
    src = cc.build_input(base / "input", cases, [])
    result = run_cli(src, base / "out")
    assert result.exit_code == 0, result.output[-1500:]
    rows = read_rows(base / "out")
    s1 = rows[("STROKE_01", "month", "2025-03", "national", "DK")]
    assert (s1["numerator"], s1["denominator"]) == (sum(0 <= o <= 86400 for o in offsets),
                                                    len(offsets))
    g1 = rows[("GP_DIAB_01", "month", "2025-05", "national", "DK")]
    assert (g1["numerator"], g1["denominator"]) == (sum(0 <= d <= 365 for d in days), len(days))
