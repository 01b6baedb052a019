"""Attack on the small-number rule from outside: what the published tables give away
beyond the relations the suppression already protects (tests/test_disclosure.py).

The attacker reads the annual report's public tables (indicator_results_published.parquet;
the CSV, Excel and HTML show the same cells) and the monthly deliveries' comparison rows,
knows the public reference tables, the catalogue and the cutoff the report prints, and
works with plain arithmetic: a value shown in one indicator that the catalogue says equals
a hidden value of another, and "total minus its other parts", repeated until nothing new
is found. The unsuppressed indicator_results only checks that every value the attacker
recovers is the true one (so a failure is a real disclosure, not a solver bug).

Findings are strict xfails (the suite stays green until they are fixed); what held is
pinned by passing tests.
"""

from __future__ import annotations

import datetime as dt
import json
from fractions import Fraction

import polars as pl
import pytest

COUNTS = ("denominator", "numerator", "missing")
PARTS = ("hospital", "clinic", "municipality")
# Identities the catalogue states per cell: (a, count) = (b, count) [- (b, minus)], valid
# for a period once its follow-up of `days` is complete by the cutoff.
IDENTITIES = [
    # STROKE_03's population is STROKE_02's numerator (DI63 with thrombolysis = ja)
    ("STROKE_03", "denominator", "STROKE_02", "numerator", None, 0),
    # STROKE_07's population: STROKE_03's with thrombolysis_at present (missing = absent)
    ("STROKE_07", "denominator", "STROKE_03", "denominator", "missing", 0),
    # STROKE_06's population is the whole population once 30 days have passed
    ("STROKE_06", "denominator", "STROKE_01", "denominator", None, 30),
    # DHRD_05's population is DHRD_01's numerator (referred = ja) once 60 days have passed
    ("DHRD_05", "denominator", "DHRD_01", "numerator", None, 60),
    ("HIP_06", "denominator", "HIP_01", "denominator", None, 730),
]


def month_end(period: str) -> dt.date:
    year, month = int(period[:4]), int(period[5:7]) if len(period) == 7 else 12
    return dt.date(year + (month == 12), month % 12 + 1, 1) - dt.timedelta(days=1)


# -- the attacker ------------------------------------------------------------------------------
def relations(rows: dict, hierarchy: dict, regions: list[str]) -> list[tuple]:
    """(total, parts) as the catalogue states them, for every indicator in ``rows``."""
    found = []
    indicators = sorted({k[0] for k in rows})
    periods = sorted({k[1] for k in rows})
    for ind in indicators:
        levels = {k[2] for k in rows if k[0] == ind}
        parts = next((lv for lv in PARTS if lv in levels), None)

        def units(level):
            return ["DK"] if level == "national" else regions if level == "region" else \
                sorted(hierarchy[level])
        for p in periods:
            if "national" in levels:
                for lv in levels - {"national"}:
                    found.append(((ind, p, "national", "DK"), [(ind, p, lv, u) for u in units(lv)]))
            if parts and "region" in levels:
                for reg in regions:
                    found.append(((ind, p, "region", reg),
                                  [(ind, p, parts, u) for u, r in hierarchy[parts].items()
                                   if r == reg]))
        for lv in levels:
            for u in units(lv):
                for year in {p[:4] for p in periods}:
                    months = [m for m in periods if len(m) == 7 and m.startswith(year)]
                    found.append(((ind, year, lv, u), [(ind, m, lv, u) for m in months]))
    return found


def left_out(rows: dict, found: list[tuple]) -> set:
    """Cells without a row that lie under a '<5' total (or under one left out): the report
    leaves them out, so the attacker knows them only as 0..4."""
    under: set = set()
    grown = True
    while grown:
        grown = False
        for parent, children in found:
            if parent in under or (parent in rows and rows[parent]["suppression"] == "small"):
                fresh = [c for c in children if c not in rows and c not in under]
                under.update(fresh)
                grown |= bool(fresh)
    return under


def recover(published: pl.DataFrame, hierarchy: dict, regions: list[str], cutoff: dt.date,
            identities: bool = True) -> tuple[dict, dict]:
    """Hidden counts worked out by plain arithmetic: {(cell, count): value}, and the rows."""
    rows = {(r["indicator_id"], r["period"], r["level"], str(r["unit_code"])): r
            for r in published.iter_rows(named=True)}
    known = {(key, c): int(r[c]) for key, r in rows.items() if r["suppression"] is None
             for c in COUNTS if r[c] is not None}
    hidden = {key for key, r in rows.items() if r["suppression"] is not None}
    found = relations(rows, hierarchy, regions)
    under = left_out(rows, found)  # a cell without a row is 0, unless under a '<5'

    def value(key, count):
        if (key, count) in known:
            return known[(key, count)]
        return None if key in rows or key in under else 0

    changed = True
    while changed:
        changed = False
        for a, ac, b, bc, minus, days in IDENTITIES if identities else []:
            for key in [k for k in rows if k[0] in (a, b)]:
                p, level, unit = key[1:]
                if days and month_end(p) + dt.timedelta(days=days) > cutoff:
                    continue
                ka, kb = (a, p, level, unit), (b, p, level, unit)
                va, vb = value(ka, ac), value(kb, bc)
                vm = value(kb, minus) if minus else 0
                if va is None and vb is not None and vm is not None:
                    known[(ka, ac)] = vb - vm
                    changed = True
                elif vb is None and va is not None and vm is not None:
                    known[(kb, bc)] = va + vm
                    changed = True
        for parent, children in found:
            for c in COUNTS:
                cells = [parent, *children]
                values = [value(k, c) for k in cells]
                unknown = [i for i, v in enumerate(values) if v is None]
                if len(unknown) != 1 or (unknown[0] == 0 and None in values[1:]):
                    continue
                i = unknown[0]
                rest = sum(v for j, v in enumerate(values[1:], start=1) if j != i)
                known[(cells[i], c)] = rest if i == 0 else values[0] - rest
                changed = True
    return {k: v for k, v in known.items() if k[0] in hidden and k[1] != "missing"}, rows


# -- the sample run ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def published(sample_reports, sample_hierarchy):
    return {**published_by(sample_reports["output"], sample_reports["annual"], sample_hierarchy),
            "reports": sample_reports}


def published_by(output, annual, hierarchy_and_regions) -> dict:
    """What an attacker reads of a run's annual report, and the truth to check them by."""
    hierarchy, regions = hierarchy_and_regions
    truth = pl.read_parquet(output / "indicator_results.parquet")
    true = {(r["indicator_id"], r["period"], r["level"], r["unit_code"]): r
            for r in truth.iter_rows(named=True)}
    cutoff = dt.date.fromisoformat(json.loads((output / "run_manifest.json").read_text())["cutoff"])
    # the report prints the cutoff it used (follow-up notes): the attacker knows it
    assert cutoff.isoformat() in (annual / "stroke" / "annual_report.html"
                                  ).read_text(encoding="utf-8")
    tables = {folder.name: pl.read_parquet(folder / "indicator_results_published.parquet")
              for folder in sorted(annual.iterdir()) if folder.is_dir()}
    return {"tables": tables, "hierarchy": hierarchy, "regions": regions, "truth": true,
            "cutoff": cutoff}


def attack_all(published, identities=True):
    found = {}
    for registry, table in published["tables"].items():
        recovered, rows = recover(table, published["hierarchy"], published["regions"],
                                  published["cutoff"], identities)
        for (key, count), v in recovered.items():
            found[(key, count)] = (v, rows[key]["suppression"], registry)
    return found


def test_the_attack_recovers_only_true_values_and_plain_subtraction_nothing(published):
    """What held: 'total minus its other parts' alone recovers no hidden count (the
    complementary suppression works); and every value the attack below recovers is the
    true one, so the findings are not artefacts of the solver."""
    assert not attack_all(published, identities=False)
    found = attack_all(published)
    assert found  # the attack has teeth (see the xfail below)
    wrong = [(k, c) for (k, c), (v, _, _) in found.items()
             if (published["truth"].get(k) or {}).get(c, 0) != v]
    assert not wrong, wrong[:5]


# attack finding, fixed: complementary suppression protected each indicator alone (and grouped
# only identical denominators), but the catalogue makes one indicator's count another's
# denominator: STROKE_02 numerator = STROKE_03 denominator, DHRD_01 numerator = DHRD_05
# denominator and STROKE_01 = STROKE_06 denominator once follow-up is complete. A count hidden
# in one was published in the other (e.g. STROKE_02 2025-08 H205: region 8 - H201 1 - H203 1 -
# H204 5 (STROKE_03's shown denominator) = 1). Now such indicators hide each other's cells
# where their counts agree (reports/suppression.py shared_counts).
def test_no_count_hidden_in_one_indicator_follows_from_another(published):
    found = attack_all(published)
    nonzero = {k: v for k, v in found.items() if v[0] != 0}
    summary = {}
    for (key, count), (_, kind, _) in nonzero.items():
        summary[(key[0], count, kind)] = summary.get((key[0], count, kind), 0) + 1
    assert not nonzero, f"{len(nonzero)} hidden counts recovered: {sorted(summary.items())}"


@pytest.mark.xfail(strict=True, reason=(
    "known limitation (documented): a hidden count of 0 is stated by the missing row of an "
    "indicator whose denominator it is (STROKE_03 has no row where STROKE_02's numerator is "
    "0; DHRD_05 where DHRD_01's is): 'no row for a denominator of 0'. Stand-in '<5' rows were "
    "tried and left DHRD_05 publishable at national level only on the sample"))
def test_no_hidden_zero_follows_from_a_missing_row(published):
    found = attack_all(published)
    assert not found, f"{len(found)} hidden counts of 0 recovered from missing rows"


# -- the whole linear system at once ----------------------------------------------------------
def determined(published: pl.DataFrame, hierarchy: dict, regions: list[str],
               cutoff: dt.date) -> dict:
    """Hidden counts the relations and identities fix exactly, all unknowns at once (not
    one at a time as ``recover``): {(cell, count): value}, by exact Gauss-Jordan
    elimination over fractions. Unknowns: the denominator and numerator of every hidden
    row and of every cell without a row under a '<5' total."""
    rows = {(r["indicator_id"], r["period"], r["level"], str(r["unit_code"])): r
            for r in published.iter_rows(named=True)}
    found = relations(rows, hierarchy, regions)
    under = left_out(rows, found)
    unknown = {(key, c) for key in under | {k for k, r in rows.items() if r["suppression"]}
               for c in COUNTS}

    def terms_to_row(terms):
        row, rhs = {}, Fraction(0)
        for key, c, sign in terms:
            if (key, c) in unknown:
                row[(key, c)] = row.get((key, c), 0) + sign
            else:
                value = rows[key][c] if key in rows else 0
                rhs -= sign * (value or 0)
        return {v: Fraction(s) for v, s in row.items() if s}, rhs
    equations = [terms_to_row([(parent, c, 1)] + [(child, c, -1) for child in children])
                 for parent, children in found for c in COUNTS]
    cells = {k[1:] for k in list(rows) + list(under)}
    for a, ac, b, bc, minus, days in IDENTITIES:
        for p, level, unit in cells:
            if not days or month_end(p) + dt.timedelta(days=days) <= cutoff:
                terms = [((a, p, level, unit), ac, 1), ((b, p, level, unit), bc, -1)]
                equations.append(terms_to_row(terms + ([((b, p, level, unit), minus, 1)]
                                                       if minus else [])))
    pivots: dict = {}  # pivot -> (row without other pivots, right-hand side)
    for row, rhs in equations:
        for v in [v for v in row if v in pivots]:
            f, (prow, prhs) = row[v], pivots[v]
            for w, s in prow.items():
                row[w] = row.get(w, 0) - f * s
                if not row[w]:
                    del row[w]
            rhs -= f * prhs
        if not row:
            continue
        p = min(row, key=str)
        f = row[p]
        row, rhs = {w: s / f for w, s in row.items()}, rhs / f
        for q, (qrow, qrhs) in list(pivots.items()):
            if p in qrow:
                g = qrow[p]
                for w, s in row.items():
                    qrow[w] = qrow.get(w, 0) - g * s
                    if not qrow[w]:
                        del qrow[w]
                pivots[q] = (qrow, qrhs - g * rhs)
        pivots[p] = (row, rhs)
    return {p: rhs for p, (row, rhs) in pivots.items() if len(row) == 1 and p[1] != "missing"}


def linear_disclosures(published) -> dict:
    found = {}
    for table in published["tables"].values():
        found.update(determined(table, published["hierarchy"], published["regions"],
                                published["cutoff"]))
    return found


def test_the_whole_linear_system_fixes_only_true_values(published):
    """The attack below is sound: every value it fixes is the true one (a cell without a
    row is 0 in the truth), and without hidden rows it would have nothing to fix."""
    found = linear_disclosures(published)
    wrong = [(k, v) for (k, c), v in found.items()
             if v != ((published["truth"].get(k) or {}).get(c) or 0)]
    assert not wrong, wrong[:5]
    assert found  # the documented zeros of missing rows at least


# attack finding, fixed: each linked indicator's pattern was protected against its own relations,
# not against sums its partner publishes: DHRD_05 2025-11 national '<5' = its year - its shown
# months - (February + July, which DHRD_01's year and shown months give, DHRD_05 being
# DHRD_01's numerator once 60 days have passed) - 0 = 2; STROKE_06 2025-12 national = 1 likewise.
# Now a unit's year relation never has a single hidden cell among those whose counts differ
# from the partner's (reports/suppression.py _untied_alone).
def test_no_nonzero_count_follows_from_the_whole_linear_system(published):
    nonzero = {k: v for k, v in linear_disclosures(published).items() if v != 0}
    assert not nonzero, f"{len(nonzero)} nonzero hidden counts fixed: {sorted(nonzero)[:3]}"


# -- risk-adjusted rows give the national proportion away ----------------------------------------
def national_proportions_given_away(results: pl.DataFrame) -> list[tuple]:
    """(indicator, period, recovered proportion, true proportion) where a shown row's
    adjusted_proportion / oe_ratio (adjusted = O/E x the national proportion of the
    period) gives the proportion of a hidden national row of the same period."""
    hidden = results.filter(pl.col("level") == "national", pl.col("suppression").is_not_null())
    shown = results.filter(pl.col("suppression").is_null(),
                           pl.col("adjusted_proportion").is_not_null(), pl.col("oe_ratio") > 0)
    out = []
    for r in shown.join(hidden.select("indicator_id", "period"),
                        on=["indicator_id", "period"]).iter_rows(named=True):
        out.append((r["indicator_id"], r["period"],
                    Fraction(r["adjusted_proportion"] / r["oe_ratio"]).limit_denominator(10000)))
    return sorted(set(out))


def test_the_national_proportion_is_recovered_exactly(published):
    """The attack works where it applies: with the shown rows' adjusted proportions as they
    were published before the fix (the unsuppressed value), the recovered fraction is the
    hidden national proportion, exactly (checked against the unsuppressed results)."""
    tables = pl.concat([published["tables"][r] for r in ("stroke", "hipfracture")],
                       how="diagonal_relaxed")
    truth = published["truth"]
    before_fix = tables.with_columns(pl.struct("indicator_id", "period", "level", "unit_code")
                                     .map_elements(lambda k: truth[tuple(k.values())][
                                         "adjusted_proportion"], return_dtype=pl.Float64)
                                     .alias("_true_adjusted")).with_columns(
        pl.when(pl.col("suppression").is_null()).then(pl.col("_true_adjusted"))
        .otherwise(pl.col("adjusted_proportion")).alias("adjusted_proportion"))
    given = national_proportions_given_away(before_fix)
    assert given  # the attack has teeth on what was published before
    for indicator, period, fraction in given:
        t = published["truth"][(indicator, period, "national", "DK")]
        assert fraction == Fraction(t["numerator"], t["denominator"])


# attack finding, fixed: a shown risk-adjusted row carries adjusted_proportion = O/E x the
# national proportion of its period, so adjusted_proportion / oe_ratio of any shown region or
# hospital gives the proportion of a hidden national month exactly (sample: STROKE_06 2025-02
# and 2025-09, HIP_05 2025-07 in the annual tables, and adjusted_high / oe_high where O = 0;
# STROKE_06 2025-02 and HIP_05 2025-01 in 89 deliveries); with the relations it pins the
# national counts, and through year = sum of months a '<5' national December (linear
# programming, measured: STROKE_06 and HIP_05 each 6 hidden counts pinned, none without the
# ratio)
def test_no_shown_row_gives_a_hidden_national_proportion_away(published):
    annual = {r: national_proportions_given_away(published["tables"][r])
              for r in ("stroke", "hipfracture")}
    monthly = set()
    for folder in sorted(published["reports"]["monthly"].iterdir()):
        if folder.is_dir():
            monthly |= {g[:2] for g in national_proportions_given_away(
                pl.read_parquet(folder / "results.parquet"))}
    assert not any(annual.values()) and not monthly, (
        {r: [g[:2] for g in v] for r, v in annual.items()}, sorted(monthly))


# -- what held: chart data beside the charts ---------------------------------------------------
def test_p_prime_chart_data_carries_nothing_of_a_hidden_month(published):
    """p_prime_chart.parquet (every unit's P' chart, not read by test_disclosure): a hidden
    month has no count, proportion or limit, and the centre line is pooled over the shown
    months only (a centre over all months would give the hidden ones away)."""
    checked = 0
    for folder in sorted(published["reports"]["annual"].iterdir()):
        if not (folder / "p_prime_chart.parquet").exists():
            continue
        chart = pl.read_parquet(folder / "p_prime_chart.parquet")
        hidden = published["tables"][folder.name].filter(
            pl.col("suppression").is_not_null()).select("indicator_id", "period", "level",
                                                        "unit_code")
        joined = chart.join(hidden, on=["indicator_id", "period", "level", "unit_code"])
        assert joined.height > 0
        assert joined["numerator"].null_count() == joined.height
        assert joined["denominator"].null_count() == joined.height
        for column in ("proportion", "lcl", "ucl", "lcl_95", "ucl_95"):
            assert joined[column].fill_nan(None).null_count() == joined.height, column
        pooled = chart.group_by("indicator_id", "level", "unit_code").agg(
            pl.col("centre").first(), (pl.col("numerator").sum() / pl.col("denominator").sum())
            .alias("shown"))
        assert ((pooled["centre"] - pooled["shown"]).abs() < 1e-12).all()
        checked += joined.height
    assert checked > 1000


def test_delivery_windows_with_a_hidden_month_are_hidden(published):
    """summary.parquet of every delivery (not read by test_disclosure): a year-to-date or
    12-month window of the region or nation is shown only when none of its months is
    hidden, and a hidden window has no counts."""
    checked = with_hidden = 0
    for folder in sorted(published["reports"]["monthly"].iterdir()):
        if not folder.is_dir():
            continue
        month = published["reports"]["monthly"].name
        results = pl.read_parquet(folder / "results.parquet")
        summary = pl.read_parquet(folder / "summary.parquet").filter(pl.col("role") != "unit")
        year, m = int(month[:4]), int(month[5:])
        months = {"month": [month],
                  "year_to_date": [f"{year}-{k:02d}" for k in range(1, m + 1)],
                  "last_12_months": [f"{year - (k >= m)}-{(m - k - 1) % 12 + 1:02d}"
                                     for k in range(12)]}
        hidden = results.filter(pl.col("suppression").is_not_null())
        for r in summary.iter_rows(named=True):
            level = "national" if r["role"] == "national" else "region"
            inside = hidden.filter(pl.col("indicator_id") == r["indicator_id"],
                                   pl.col("level") == level,
                                   pl.col("period").is_in(months[r["window"]]))
            if inside.height:
                assert r["hidden"] is not None and r["denominator"] is None, (folder.name, r)
                with_hidden += 1
            checked += 1
    assert checked > 10000 and with_hidden > 1000, (checked, with_hidden)


# -- two releases of the same months -------------------------------------------------------------
@pytest.fixture(scope="module")
def two_releases(tmp_path_factory, sample_hierarchy):
    """The delivery of 2025-06 as the monthly flow makes it in July: from the June extracts
    only (the sample's *_2025-06-30 files), with its own suppression pattern; then, in the
    same warehouse, the December extracts and the annual report of 2025."""
    import os
    import shutil
    import subprocess
    import sys

    from pipelines.settings import SAMPLE_INPUT_DIR
    from tests.builders import TEST_KEY

    base = tmp_path_factory.mktemp("two_releases")
    shutil.copytree(SAMPLE_INPUT_DIR, base / "input")
    late = {path: base / "late" / path.parent.name / path.name
            for path in (base / "input").glob("*/*_2025-12-31.*")}
    for path, aside in late.items():
        aside.parent.mkdir(parents=True, exist_ok=True)
        path.rename(aside)
    env = {**os.environ, "KVALITET_PSEUDONYM_KEY": TEST_KEY.decode(), "KVALITET_WAREHOUSE": "",
           "KVALITET_ORCHESTRATION": "direct"}
    output = base / "output"
    run = ["run", "--input", str(base / "input"), "--output", str(output)]
    warehouse = ["--warehouse", str(output / "kvalitet.duckdb")]

    def kvalitet(*args):
        done = subprocess.run([sys.executable, "-m", "pipelines.cli", *args], env=env,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    kvalitet(*run)
    kvalitet("report", "monthly", "--month", "2025-06", *warehouse)
    assert late
    for path, aside in late.items():
        aside.rename(path)
    kvalitet(*run)
    kvalitet("report", "annual", "--year", "2025", *warehouse)
    return {"june": output / "reports" / "monthly" / "2025-06",
            **published_by(output, output / "reports" / "annual" / "2025", sample_hierarchy)}


def test_an_earlier_release_gives_no_hidden_count_away(two_releases):
    """Each release computes its pattern from the data it has; a reader holding the June
    delivery fills the annual report's hidden cells with the June delivery's shown ones
    (a closed month's counts rarely change) and subtracts, also through the catalogue's
    identities (STROKE_01's count is STROKE_06's denominator once follow-up is complete: June
    showed the one, the annual report must not hide the other as a complement). The annual
    report keeps hidden what June hid and shown what June showed with the same denominator."""
    published = two_releases
    shown = {}
    for folder in sorted(published["june"].iterdir()):
        if folder.is_dir():
            for r in pl.read_parquet(folder / "results.parquet").filter(
                    pl.col("level").is_in(["region", "national"]),
                    pl.col("suppression").is_null()).iter_rows(named=True):
                shown[(r["indicator_id"], r["period"], r["level"], r["unit_code"])] = r
    assert len(shown) > 1000
    recovered = {}
    for registry, table in published["tables"].items():
        merged = []
        for r in table.iter_rows(named=True):
            key = (r["indicator_id"], r["period"], r["level"], r["unit_code"])
            if r["suppression"] is not None and key in shown:  # the attacker's guess:
                r = {**r, "suppression": None,  # a closed month did not change
                     **{c: shown[key][c] for c in COUNTS}}
            merged.append(r)
        found, rows = recover(pl.DataFrame(merged, schema=table.schema), published["hierarchy"],
                              published["regions"], published["cutoff"])
        alone, _ = recover(table, published["hierarchy"], published["regions"],
                           published["cutoff"])  # the documented zeros of missing rows
        for (key, count), value in found.items():
            if key not in shown and (key, count) not in alone:
                recovered[(key, count)] = (value, table.filter(
                    pl.col("indicator_id") == key[0], pl.col("period") == key[1],
                    pl.col("level") == key[2], pl.col("unit_code") == key[3])["suppression"][0])
    true = [k for k, (v, _) in recovered.items()
            if (published["truth"].get(k[0]) or {}).get(k[1], 0) == v]
    small = [k for k in true if recovered[k][1] == "small"]
    assert not true, (f"{len(true)} hidden counts recovered ({len(small)} of '<5' cells): "
                      f"{[(k, recovered[k]) for k in true][:5]}")
