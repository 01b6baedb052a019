"""An attacker's view of the published artefacts: can a hidden count be worked out?

The attacker reads every published FILE of a sample run (the annual report's HTML
tables, its CSV, Excel and Parquet tables, every chart-data file, and the
region/nation comparison rows of the monthly deliveries), knows the public
reference tables (which hospital and municipality lie in which region), the
catalogue's relations (national = sum of regions = sum of the units of every
other level; region = sum of its hospitals for hospital-based indicators, of its
municipalities for municipal ones; year = sum of its months) and the markers
('<5' lies in 1..4, '..' is at least 5, a number shown as '<5' is not broken
down, so what lies under it is 0..4; a row means a denominator of at least 1;
numerator + missing <= denominator).

For every hidden cell the attacker tries single subtraction, the linear system
of all relations (determined iff its unit vector lies in the row space of the
relations restricted to the unknowns) and integer programming with every bound
(scipy's linprog with integrality). The test knows the true counts (the
unsuppressed indicator_results) only to point at a feasible solution and to know
which hidden cells exist.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from html.parser import HTMLParser

import hypothesis.strategies as st
import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from scipy import sparse
from scipy.optimize import linprog
from scipy.sparse.linalg import lsqr

from reports.excel import read_back
from reports.labels import TEXT
from schemas.declarations import LEVELS

SMALL, COMPLEMENT = "<5", ".."
COUNTS = ("denominator", "numerator", "missing")
LEVEL_OF_LABEL = {TEXT["da"][k]: k for k in ("region", "hospital", "municipality", "clinic")} | {
    LEVELS.levels["clinic"].title["da"]: "clinic"}  # a declared level (schemas/levels.yaml)


# -- what the attacker has read ------------------------------------------------------------
@dataclass
class Knowledge:
    """Per cell (indicator, period, level, unit_code): counts shown, markers shown, and
    where any other number of it (proportion, median, interval) was shown."""

    counts: dict = field(default_factory=lambda: defaultdict(dict))
    markers: dict = field(default_factory=lambda: defaultdict(set))
    values: dict = field(default_factory=lambda: defaultdict(set))
    conflicts: list = field(default_factory=list)
    kinds: set = field(default_factory=set)  # kinds of file read

    def see(self, key, source, counts=None, marker=None, value=False):
        parts = source.split("/")  # registry/kind/..., html/overview, monthly/unit/kind
        self.kinds.add("monthly-" + parts[-1] if parts[0] == "monthly" else
                       parts[0] if parts[0] == "html" or len(parts) == 1 else parts[1])
        for column, shown in (counts or {}).items():
            if shown is None:
                continue
            before = self.counts[key].setdefault(column, shown)
            if before != shown:
                self.conflicts.append((key, column, source))
        if marker:
            self.markers[key].add(marker)
        if value:
            self.values[key].add(source)

    def hidden(self, key):
        return key in self.markers


def parse(text):
    """A published cell: an int, a marker, or None (empty, '–')."""
    if text is None:
        return None
    text = str(text).replace("\u00a0", "").replace(" ", "").strip()
    if text in (SMALL, COMPLEMENT):
        return text
    if text in ("", "–", "None", "null"):
        return None
    try:
        return int(float(text.replace(",", ".")))
    except ValueError:
        return None


def see_row(k: Knowledge, key, row: dict, source: str):
    """A table row: counts, a marker in any count column, or other numbers."""
    cells = {c: parse(row.get(c)) for c in COUNTS}
    markers = {v for v in cells.values() if v in (SMALL, COMPLEMENT)}
    for column in ("proportion", "ci_low", "ci_high", "median", "oe_ratio",
                   "adjusted_proportion", "smoothed_proportion", "expected"):
        value = row.get(column)
        if value in (SMALL, COMPLEMENT):
            markers.add(value)
        elif value not in (None, "", "–"):
            k.see(key, source, value=True)
    k.see(key, source, counts={c: v for c, v in cells.items() if isinstance(v, int)},
          marker=next(iter(markers)) if len(markers) == 1 else None)
    if len(markers) > 1:
        k.conflicts.append((key, "markers", source))


def table_rows(frame: pl.DataFrame, source: str, k: Knowledge, skip_level: str | None = None):
    for row in frame.iter_rows(named=True):
        if row["level"] == skip_level:
            continue  # a unit's own rows: delivered to it, never published
        if "suppression" in row and row["suppression"] is not None:
            row = {**row, **{c: {"small": SMALL, "complementary": COMPLEMENT}[row["suppression"]]
                             for c in COUNTS}}
        key = (row["indicator_id"], row["period"], row["level"], str(row["unit_code"]))
        see_row(k, key, row, source)


class ReportPage(HTMLParser):
    """Tables of the annual report page with the indicator section and level they are in."""

    def __init__(self):
        super().__init__()
        self.section = self.summary = None
        self.in_summary = False
        self.tables: list[tuple[str | None, str | None, list[list[str]]]] = []
        self._row = self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.section = attrs.get("id") if attrs.get("class") == "indicator" else None
        elif tag == "summary":
            self.in_summary, self.summary = True, ""
        elif tag == "table":
            self.tables.append((self.section, self.summary, []))
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "summary":
            self.in_summary = False
        elif tag == "details":
            self.summary = None
        elif tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1][2].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self.in_summary:
            self.summary += data
        if self._cell is not None:
            self._cell += data


def read_published(reports: dict, names: dict) -> tuple[Knowledge, dict]:
    """Everything the attacker can read, and which (indicator, period, level) each
    artefact publishes as a complete table (the scope of its relations)."""
    k = Knowledge()
    year = reports["annual"].name
    t = TEXT["da"]
    unit_level = {}
    for folder in sorted(p for p in reports["annual"].iterdir() if p.is_dir()):
        csv = pl.read_csv(folder / "indicator_results_published.csv", infer_schema=False)
        table_rows(csv, f"{folder.name}/csv", k)
        table_rows(pl.read_parquet(folder / "indicator_results_published.parquet"),
                   f"{folder.name}/parquet", k)
        for title, rows in read_back(folder / "indicator_results.xlsx").items():
            table_rows(pl.DataFrame([{c: None if v is None else str(v) for c, v in r.items()}
                                     for r in rows], infer_schema_length=None),
                       f"{folder.name}/xlsx/{title}", k)
        for indicator, levels in csv.group_by("indicator_id").agg(pl.col("level").unique()).rows():
            unit_level[indicator] = next(lv for lv in ("hospital", "clinic", "municipality")
                                         if lv in levels)
        page = ReportPage()
        page.feed((folder / "annual_report.html").read_text(encoding="utf-8"))
        for section, summary, rows in page.tables:
            header = rows[0] if rows else []
            if section is None and header and header[0] == t["indicator"]:
                for r in rows[1:]:  # overview: national values of three years
                    for y, text in ((int(year), r[2]), (int(year) - 1, r[6]),
                                    (int(year) - 2, r[7])):
                        key = (r[0], str(y), "national", "DK")
                        shown = parse(text)
                        k.see(key, "html/overview", marker=shown if shown in (SMALL, COMPLEMENT)
                              else None, value=text not in ("–", "") and shown not in
                              (SMALL, COMPLEMENT))
            if section is None or summary is None or t["denominator"] not in header:
                continue
            level = LEVEL_OF_LABEL[summary.rsplit("(", 1)[0].strip()]
            column = {h: i for i, h in enumerate(header)}
            for r in rows[1:]:
                key = (section, year, level, names[level][r[column[t["unit"]]]])
                see_row(k, key, {"numerator": r[column[t["numerator"]]],
                                 "denominator": r[column[t["denominator"]]],
                                 "missing": r[column[t["missing"]]],
                                 "proportion": r[3]}, f"{folder.name}/html")
        for name in ("caterpillar", "funnel_units", "oe_funnel_units", "run_chart_points"):
            path = folder / f"{name}.parquet"
            if not path.exists():
                continue
            frame = pl.read_parquet(path)
            for row in frame.iter_rows(named=True):
                level = row.get("level") or unit_level[row["indicator_id"]]
                key = (row["indicator_id"], row.get("period", year), level, row["unit_code"])
                see_row(k, key, {**row, "value": None}, f"{folder.name}/{name}")
                if row.get("value") is not None:
                    k.see(key, f"{folder.name}/{name}", value=True)
    window = set()
    for folder in sorted(p for p in reports["monthly"].iterdir() if p.is_dir()):
        own = folder.name.split("_", 1)[0]
        csv = pl.read_csv(folder / "results.csv", infer_schema=False)
        table_rows(csv, f"monthly/{folder.name}/csv", k, skip_level=own)
        table_rows(pl.read_parquet(folder / "results.parquet"), f"monthly/{folder.name}/parquet",
                   k, skip_level=own)
        window |= set(csv["period"])
        points = pl.read_parquet(folder / "run_chart_points.parquet")
        for row in points.filter(pl.col("role") != "unit").iter_rows(named=True):
            key = (row["indicator_id"], row["period"], row["role"],
                   names[row["role"]][row["unit_name"]])
            k.see(key, f"monthly/{folder.name}/points", value=row["value"] is not None)
    months = [f"{year}-{m:02d}" for m in range(1, 13)]
    scope = {"annual": (year, months), "monthly": sorted(window)}
    return k, scope


# -- the attacker's equations ----------------------------------------------------------------
@dataclass
class Block:
    """One indicator and year: the unknowns and the equations over them, per count."""

    indicator: str
    keys: list  # unknown cells
    lower: np.ndarray  # of the denominator
    upper: np.ndarray
    rows: list  # per equation: {unknown index: coefficient}
    rhs: dict  # count -> equation right-hand sides
    counts: tuple  # which counts the indicator has
    relations: list  # (parent key, child keys) as used
    known: dict  # key -> {count: value}


def equations(k: Knowledge, indicator: str, cells: set, relations: list, maximum: int = 4
              ) -> Block:
    """The unknowns among ``cells`` and the equations of ``relations`` over them. A cell
    in no artefact is 0, unless it lies under a '<5' (or another such cell): 0..max."""
    under = set()
    changed = True
    while changed:
        changed = False
        for parent, children in relations:
            if SMALL in k.markers.get(parent, ()) or parent in under:
                for c in children:
                    if c not in k.counts and c not in k.markers and c not in under:
                        under.add(c)
                        changed = True
    unknown = sorted(c for c in cells if k.hidden(c) and c not in k.counts) + sorted(under)
    index = {c: i for i, c in enumerate(unknown)}
    lower = np.array([0 if c in under else 1 if SMALL in k.markers[c] else maximum + 1
                      for c in unknown], dtype=float)
    upper = np.array([maximum if c in under or SMALL in k.markers[c] else np.inf
                      for c in unknown])
    median = all(k.counts[c].get("numerator") is None for c in cells if c in k.counts
                 and c[0] == indicator)
    counts = ("denominator",) if median else COUNTS
    rows, rhs = [], {c: [] for c in counts}
    for parent, children in relations:
        members = [(parent, 1.0)] + [(c, -1.0) for c in children]
        row = {}
        for key, coefficient in members:
            if key in index:
                row[index[key]] = row.get(index[key], 0.0) + coefficient
        for count in counts:
            rhs[count].append(-sum(coefficient * k.counts.get(key, {}).get(count, 0)
                                   for key, coefficient in members if key not in index))
        rows.append(row)
    return Block(indicator, unknown, lower, upper, rows, rhs, counts, relations, k.counts)


def relations_of(indicator, periods, levels, units, region_of, parts, has_year) -> list:
    """parent = sum of children, as the catalogue states them (scope: ``levels``)."""
    found = []
    for p in periods:
        national = (indicator, p, "national", "DK")
        for level in levels:
            if level != "national" and "national" in levels:
                found.append((national, [(indicator, p, level, u) for u in units[level]]))
        if "region" in levels and parts in levels:
            for r in units["region"]:
                found.append(((indicator, p, "region", r),
                              [(indicator, p, parts, u) for u in units[parts]
                               if region_of[parts].get(u) == r]))
    if has_year:
        year, months = periods[0], periods[1:]
        for level in levels:
            for u in units[level]:
                found.append(((indicator, year, level, u),
                              [(indicator, m, level, u) for m in months]))
    return found


def single_subtraction(block: Block) -> set:
    """Unknowns that are the only unknown of some equation."""
    return {block.keys[next(iter(row))] for row in block.rows if len(row) == 1}


def linear_system(block: Block) -> set:
    """Unknowns whose unit vector lies in the row space of the equations.

    A random vector's component in the null space is non-zero in every coordinate
    the equations leave free (almost surely); the coordinates where it is (nearly)
    0 are checked exactly: is e_j = A^T y solvable?"""
    if not block.keys or not block.rows:
        return set()
    entries = [(i, j, c) for i, row in enumerate(block.rows) for j, c in row.items()]
    i, j, c = (np.array(v) for v in zip(*entries)) if entries else ([], [], [])
    a_t = sparse.csr_array((c, (i, j)), shape=(len(block.rows), len(block.keys))).T.tocsr()
    n = len(block.keys)

    def in_row_space(vector):  # least squares a_t y = vector; the residual is the rest
        y = lsqr(a_t, vector, atol=1e-14, btol=1e-14, iter_lim=20 * n)[0]
        return vector - a_t @ y

    rng = np.random.default_rng(2)
    free = np.zeros(n, dtype=bool)
    for _ in range(3):
        free |= np.abs(in_row_space(rng.standard_normal(n))) > 1e-6
    determined = set()
    for j in np.flatnonzero(~free):
        if np.abs(in_row_space(np.eye(1, n, j).ravel())).max() < 1e-6:
            determined.add(block.keys[j])
    return determined


def with_bounds(block: Block, truth: dict, targets: list) -> set:
    """(unknown, count) that every integer solution within the bounds pins down.

    Each open target is pushed to its largest, then its smallest value; every integer
    solution found proves free all the targets in which it differs from the truth."""
    n_k, counts = len(block.keys), block.counts
    n = n_k * len(counts)
    var = {(key, c): ci * n_k + j for j, key in enumerate(block.keys)
           for ci, c in enumerate(counts)}
    eq_rows, eq_cols, eq_data, b_eq = [], [], [], []
    for ci, count in enumerate(counts):
        for i, row in enumerate(block.rows):
            if not row:
                continue
            for j, coefficient in row.items():
                eq_rows.append(len(b_eq))
                eq_cols.append(ci * n_k + j)
                eq_data.append(coefficient)
            b_eq.append(block.rhs[count][i])
    x_true = np.array([truth.get(key, {}).get(c, 0) for c in counts for key in block.keys],
                      dtype=float)
    lower = np.concatenate([block.lower] + [np.zeros(n_k)] * (len(counts) - 1))
    top = max(max(b_eq, default=0), x_true.max(initial=0)) * 2 + 10  # above any real count
    upper = np.minimum(np.concatenate([block.upper] * len(counts)), top)
    ub_rows, ub_cols, ub_data = [], [], []
    if len(counts) == 3:
        for j in range(n_k):  # numerator + missing - denominator <= 0
            ub_rows += [j] * 3
            ub_cols += [n_k + j, 2 * n_k + j, j]
            ub_data += [1.0, 1.0, -1.0]
    a_eq = sparse.csr_array((eq_data, (eq_rows, eq_cols)), shape=(len(b_eq), n))
    a_ub = sparse.csr_array((ub_data, (ub_rows, ub_cols)), shape=(len(ub_rows) // 3, n))
    assert np.allclose(a_eq @ x_true, b_eq), "the true counts do not satisfy the relations"
    assert (a_ub @ x_true <= 0).all() and (x_true >= lower).all() and (x_true <= upper).all()
    problem = {"A_eq": a_eq if b_eq else None, "b_eq": b_eq or None,
               "A_ub": a_ub if a_ub.shape[0] else None,
               "b_ub": np.zeros(a_ub.shape[0]) if a_ub.shape[0] else None,
               "bounds": np.c_[lower, upper], "method": "highs"}
    targets = [t for t in targets if t in var]
    index = np.array([var[t] for t in targets], dtype=np.int64)
    free = np.zeros(len(targets), dtype=bool)

    def solve(objective):
        result = linprog(objective, **problem)
        assert result.status == 0, result.message
        x = result.x
        if np.abs(x - np.round(x)).max() > 1e-6:  # a fractional corner: ask for integers
            x = linprog(objective, integrality=np.ones(n), **problem).x
        return np.abs(x[index] - x_true[index]) > 0.5

    rng = np.random.default_rng(1)
    while not free.all():  # random pushes on all open targets at once
        objective = np.zeros(n)
        objective[index[~free]] = rng.uniform(-1, 1, (~free).sum())
        moved = solve(objective) & ~free
        if not moved.any():
            break
        free |= moved
    pinned = set()
    for i in np.flatnonzero(~free):  # the rest one by one: largest, then smallest value
        for sign in (-1.0, 1.0):
            if not free[i]:
                objective = np.zeros(n)
                objective[index[i]] = sign
                free |= solve(objective)
        if not free[i]:
            pinned.add(targets[i])
    return pinned


def accepted_zeros(block: Block) -> set:
    """Cells whose numerator a published total of 0 states as 0 (all parts of the total,
    and all parts of those)."""
    zero = {parent for parent, _ in block.relations
            if block.known.get(parent, {}).get("numerator") == 0}
    grown = True
    while grown:
        before = len(zero)
        for parent, children in block.relations:
            if parent in zero:
                zero.update(children)
        grown = len(zero) > before
    return zero


def attack(k: Knowledge, truth: dict, indicator: str, periods: list, levels: list, units: dict,
           region_of: dict, parts: str, has_year: bool) -> dict:
    """What each method pins down in one indicator and year: {method: [(cell, count)]}.

    A level with no row at all in these periods was withheld (national level only):
    its relations are not used."""
    shown = {key[2] for key in (*k.counts, *k.markers) if key[0] == indicator
             and key[1] in periods}
    levels = [lv for lv in levels if lv in shown]
    relations = relations_of(indicator, periods, levels, units, region_of, parts, has_year)
    cells = {c for parent, children in relations for c in [parent, *children]}
    block = equations(k, indicator, cells, relations)
    exists = [key for key in block.keys if truth.get(key, {}).get("denominator", 0) >= 1]
    found = {"single subtraction": [(c, "any") for c in single_subtraction(block) if c in exists],
             "linear system": [(c, "any") for c in linear_system(block) if c in exists]}
    zeros = accepted_zeros(block)
    targets = [(key, c) for key in exists for c in block.counts if c != "missing"
               and not (c == "numerator" and key in zeros)]
    found["bounds"] = sorted(with_bounds(block, truth, targets)) if targets else []
    found["unknowns"] = len(exists)
    return found


# -- the sample run's artefacts ----------------------------------------------------------------
@pytest.fixture(scope="module")
def attacker(sample_reports, sample_hierarchy):
    region_of, regions = sample_hierarchy
    results = pl.read_parquet(sample_reports["output"] / "indicator_results.parquet")
    names = defaultdict(dict)
    for level, code, name in results.select("level", "unit_code", "unit_name").unique().rows():
        names[level][name] = code
    knowledge, scope = read_published(sample_reports, names)
    truth = defaultdict(dict)
    for row in results.iter_rows(named=True):
        key = (row["indicator_id"], row["period"], row["level"], row["unit_code"])
        truth[key] = {c: row[c] for c in COUNTS if row[c] is not None}
    units = {"national": ["DK"], "region": regions, "hospital": sorted(region_of["hospital"]),
             "municipality": sorted(region_of["municipality"]),
             "clinic": sorted(region_of["clinic"])}
    levels_of = results.group_by("indicator_id").agg(pl.col("level").unique())
    return {"knowledge": knowledge, "scope": scope, "truth": truth, "units": units,
            "region_of": region_of, "levels": dict(levels_of.rows()),
            "indicators": sorted(levels_of["indicator_id"])}


def test_the_attacker_reads_every_kind_of_file(attacker):
    k = attacker["knowledge"]
    assert len(k.markers) > 1000 and len(k.counts) > 1000
    assert {"csv", "parquet", "xlsx", "html", "caterpillar", "funnel_units", "oe_funnel_units",
            "run_chart_points", "monthly-csv", "monthly-parquet", "monthly-points"} <= k.kinds, \
        k.kinds
    assert any(COMPLEMENT in m for m in k.markers.values())


def test_no_artefact_shows_what_another_hides(attacker):
    k = attacker["knowledge"]
    assert not k.conflicts, k.conflicts[:5]
    shown = [key for key in k.markers if key in k.counts or key in k.values]
    assert not shown, [(key, k.values.get(key)) for key in shown[:5]]
    assert all(len(m) == 1 for m in k.markers.values())


def test_no_hidden_count_of_the_annual_report_can_be_worked_out(attacker):
    """Year and months of the report year, every level, every indicator."""
    year, months = attacker["scope"]["annual"]
    pinned, unknowns = [], 0
    for indicator in attacker["indicators"]:
        levels = sorted(attacker["levels"][indicator])
        parts = next(lv for lv in ("hospital", "clinic", "municipality") if lv in levels)
        found = attack(attacker["knowledge"], attacker["truth"], indicator, [year, *months],
                       levels, attacker["units"], attacker["region_of"], parts, True)
        unknowns += found.pop("unknowns")
        pinned += [(method, indicator, cell[1:], count) for method, cells in found.items()
                   for cell, count in cells]
    assert unknowns > 5000  # hidden cells that exist
    assert not pinned, pinned[:10]


def test_no_hidden_count_of_the_deliveries_can_be_worked_out(attacker):
    """The comparison rows: national and regional months of the window."""
    months = attacker["scope"]["monthly"]
    pinned, unknowns = [], 0
    for indicator in attacker["indicators"]:
        for year in sorted({m[:4] for m in months}):
            mine = [m for m in months if m.startswith(year)]
            levels = [lv for lv in ("national", "region") if lv in attacker["levels"][indicator]]
            found = attack(attacker["knowledge"], attacker["truth"], indicator, mine, levels,
                           attacker["units"], attacker["region_of"], "hospital", False)
            unknowns += found.pop("unknowns")
            pinned += [(method, indicator, cell[1:], count) for method, cells in found.items()
                       for cell, count in cells]
    assert unknowns > 50
    assert not pinned, pinned[:10]


def test_the_reported_subtraction_no_longer_works(attacker):
    """The hostile tester's case: Region Syddanmark minus its other hospitals."""
    k = attacker["knowledge"]
    region = ("DHRD_01", "2025", "region", "1083")
    hospitals = [c for c in attacker["units"]["hospital"]
                 if attacker["region_of"]["hospital"][c] == "1083"]
    hidden = [h for h in hospitals if k.hidden(("DHRD_01", "2025", "hospital", h))]
    assert region in k.counts and len(hidden) >= 2
    assert any(SMALL in k.markers[("DHRD_01", "2025", "hospital", h)] for h in hidden)


def test_the_attacker_finds_what_the_small_number_rule_alone_leaves_open(attacker):
    """The same attack on the primary rule alone (every other count shown) pins down the
    hostile tester's hospital and more: the attack has teeth. (Regions and hospitals
    of one indicator, to keep it quick.)"""
    year, months = attacker["scope"]["annual"]
    levels = ["national", "region", "hospital"]
    k = Knowledge()
    for key, counts in attacker["truth"].items():
        if key[0] == "DHRD_01" and key[1].startswith(year) and key[2] in levels:
            small = 1 <= counts["denominator"] <= 4
            k.see(key, "primary/csv", counts=None if small else counts,
                  marker=SMALL if small else None)
    found = attack(k, attacker["truth"], "DHRD_01", [year, *months], levels,
                   attacker["units"], attacker["region_of"], "hospital", True)
    sydvestjysk = ("DHRD_01", year, "hospital", "H303")
    assert (sydvestjysk, "any") in found["single subtraction"]
    assert set(found["single subtraction"]) <= set(found["linear system"])
    pinned = {cell for cell, _ in found["bounds"]}
    assert {cell for cell, _ in found["linear system"]} <= pinned
    assert len(pinned) > len(found["linear system"]) > 5, (len(pinned), found["linear system"])


# -- the suppression function on random small hierarchies -------------------------------------
@st.composite
def registries(draw):
    """Records of a small registry: hospitals in regions, municipalities, a few months."""
    n_regions = draw(st.integers(2, 3))
    hospitals = {f"H{r}{i}": str(r) for r in range(n_regions)
                 for i in range(draw(st.integers(1, 3)))}
    municipalities = {str(100 + i): str(i % n_regions) for i in range(draw(st.integers(2, 5)))}
    months = draw(st.integers(2, 4))
    n = draw(st.integers(1, 60))
    records = draw(st.lists(st.tuples(st.sampled_from(sorted(hospitals)),
                                      st.sampled_from(sorted(municipalities)),
                                      st.integers(1, months), st.sampled_from("ynm")),
                            min_size=n, max_size=n))
    municipal = draw(st.booleans())
    return hospitals, municipalities, records, municipal


def aggregate(hospitals, municipalities, records, municipal) -> pl.DataFrame:
    """indicator_results rows of one indicator, as the engine counts them."""
    frame = pl.DataFrame(records, schema=["hospital", "municipality", "month", "answer"],
                         orient="row")
    frame = frame.with_columns(
        pl.col("hospital").replace_strict(hospitals).alias("region_h"),
        pl.col("municipality").replace_strict(municipalities).alias("region_m"),
        pl.format("2025-0{}", pl.col("month")).alias("month"))
    region = "region_m" if municipal else "region_h"
    levels = {"national": pl.lit("DK"), "region": pl.col(region),
              "municipality": pl.col("municipality")}
    if not municipal:
        levels["hospital"] = pl.col("hospital")
    out = []
    for level, code in levels.items():
        for period_type, period in (("year", pl.lit("2025")), ("month", pl.col("month"))):
            out.append(frame.group_by(code.alias("unit_code"), period.alias("period")).agg(
                pl.len().alias("denominator"), (pl.col("answer") == "y").sum().alias("numerator"),
                (pl.col("answer") == "m").sum().alias("missing")).with_columns(
                pl.lit(level).alias("level"), pl.lit(period_type).alias("period_type")))
    rows = pl.concat(out, how="diagonal_relaxed").with_columns(
        pl.lit("X_01").alias("indicator_id"), pl.col("unit_code").alias("unit_name"),
        (pl.col("numerator") / pl.col("denominator")).alias("proportion"),
        pl.col("denominator").cast(pl.Int64), pl.col("numerator").cast(pl.Int64),
        pl.col("missing").cast(pl.Int64))
    return rows.select("indicator_id", "period_type", "period", "level", "unit_code",
                       "unit_name", "numerator", "denominator", "missing", "proportion")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(registries())
def test_suppression_leaves_no_hidden_count_determined(registry):
    from reports.suppression import Hierarchy, SmallNumberRule

    hospitals, municipalities, records, municipal = registry
    results = aggregate(hospitals, municipalities, records, municipal)
    published = SmallNumberRule().suppress(
        results, Hierarchy({"hospital": hospitals, "municipality": municipalities}))
    k = Knowledge()
    table_rows(published.with_columns(pl.col(c).cast(pl.String) for c in COUNTS), "table", k)
    truth = {(r["indicator_id"], r["period"], r["level"], r["unit_code"]):
             {c: r[c] for c in COUNTS} for r in results.iter_rows(named=True)}
    levels = sorted(set(results["level"]))
    units = {"national": ["DK"], "region": sorted(set(hospitals.values())
                                                  | set(municipalities.values())),
             "hospital": sorted(hospitals), "municipality": sorted(municipalities)}
    months = sorted(p for p in set(results["period"]) if len(p) == 7)
    found = attack(k, truth, "X_01", ["2025", *months], levels, units,
                   {"hospital": hospitals, "municipality": municipalities},
                   "municipality" if municipal else "hospital", True)
    found.pop("unknowns")
    assert not any(found.values()), found
    assert not published.filter(pl.col("suppression").is_null())["denominator"].is_between(
        1, 4).any()


def empty_ledger():
    """An in-memory database with the warehouse's empty ``released_cells``."""
    import duckdb

    from pipelines.settings import SQL_DIR

    con = duckdb.connect()
    con.execute((SQL_DIR / "warehouse" / "04_released_cells.sql").read_text(encoding="utf-8"))
    return con


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(registries(), st.lists(st.integers(0, 4), min_size=60, max_size=60))
def test_a_later_release_hides_what_an_earlier_one_hid_and_nothing_it_showed(registry, late):
    """Two releases of the same months: the first from the records that had arrived, the
    second from all. A cell the first hid stays hidden, whatever its counts now; one it
    showed stays shown where its denominator did not change; and the second, bound by the
    first, still protects every hidden count."""
    from reports import releases
    from reports.suppression import Hierarchy, SmallNumberRule

    hospitals, municipalities, records, municipal = registry
    hierarchy = Hierarchy({"hospital": hospitals, "municipality": municipalities})
    first = [r for r, days in zip(records, late) if days] or records[:1]  # 1 in 5 arrives late
    con = empty_ledger()
    before = aggregate(hospitals, municipalities, first, municipal)
    june = SmallNumberRule().suppress(before, hierarchy, released=releases.earlier(con))
    assert releases.record(con, "monthly", before, june) == june.height
    assert releases.record(con, "monthly", before, june) == 0  # published again: nothing new
    results = aggregate(hospitals, municipalities, records, municipal)
    annual = SmallNumberRule().suppress(results, hierarchy, released=releases.earlier(con))
    keys = ["indicator_id", "period", "level", "unit_code"]
    then = before.join(june.select(*keys, pl.col("suppressed").alias("hidden_then")), on=keys)
    now = results.join(annual.select(*keys, pl.col("suppressed").alias("hidden_now")), on=keys)
    both = then.join(now, on=keys, suffix="_now")  # published in both releases
    assert both.filter(pl.col("hidden_then"), ~pl.col("hidden_now")).is_empty()
    assert both.filter(~pl.col("hidden_then"), pl.col("hidden_now"),
                       pl.col("denominator") == pl.col("denominator_now")).is_empty()
    # so June's shown counts fill none of the annual table's hidden cells (where a denominator
    # changed, it is another number); and the annual pattern, bound by June's, still protects
    k = Knowledge()
    table_rows(annual.with_columns(pl.col(c).cast(pl.String) for c in COUNTS), "table", k)
    truth = {(r["indicator_id"], r["period"], r["level"], r["unit_code"]):
             {c: r[c] for c in COUNTS} for r in results.iter_rows(named=True)}
    units = {"national": ["DK"], "region": sorted(set(hospitals.values())
                                                  | set(municipalities.values())),
             "hospital": sorted(hospitals), "municipality": sorted(municipalities)}
    months = sorted(p for p in set(results["period"]) if len(p) == 7)
    found = attack(k, truth, "X_01", ["2025", *months], sorted(set(results["level"])), units,
                   {"hospital": hospitals, "municipality": municipalities},
                   "municipality" if municipal else "hospital", True)
    found.pop("unknowns")
    assert not any(found.values()), found


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(registries(), st.lists(st.integers(0, 4), min_size=60, max_size=60))
def test_a_count_an_earlier_release_showed_is_not_hidden_in_a_linked_indicator(registry, late):
    """X_02 counts X_01's records that are not missing (as STROKE_06 counts STROKE_01's
    once follow-up is complete), and its last month is known only to the second release.
    Where X_02's hidden denominator equals X_01's denominator less missing, or numerator, as
    either release shows it, hiding it hides nothing: the attack filled STROKE_06's hidden
    cells from June's STROKE_01."""
    from reports import releases
    from reports.suppression import Hierarchy, SmallNumberRule

    hospitals, municipalities, records, municipal = registry
    records = records * 3  # counts above the small-number range, so complements are chosen
    hierarchy = Hierarchy({"hospital": hospitals, "municipality": municipalities})

    def both_indicators(chosen, follow_up_complete):
        followed = [r for r in chosen if r[3] != "m" and follow_up_complete(r[2])]
        frames = [aggregate(hospitals, municipalities, chosen, municipal)]
        if followed:
            frames.append(aggregate(hospitals, municipalities, followed, municipal)
                          .with_columns(pl.lit("X_02").alias("indicator_id")))
        return pl.concat(frames)

    last = max(month for *_, month, _ in records)
    con = empty_ledger()
    rule, linked = SmallNumberRule(), [("X_01", "X_02")]
    before = both_indicators([r for r, days in zip(records, late * 3) if days] or records[:1],
                             lambda month: month < last)
    june = rule.suppress(before, hierarchy, linked, releases.earlier(con))
    releases.record(con, "monthly", before, june)
    results = both_indicators(records, lambda month: True)
    annual = rule.suppress(results, hierarchy, linked, releases.earlier(con))

    keys = ["period", "level", "unit_code"]

    def of(frame, indicator, *columns):
        return frame.filter(pl.col("indicator_id") == indicator).select(*keys, *columns)

    hidden = of(annual.filter(pl.col("suppressed")), "X_02").join(
        of(results.filter(~rule.applies()), "X_02", "denominator"), on=keys)
    assert june.height and annual.height
    for release, counts in ((june, before), (annual, results)):
        shown = of(release.filter(~pl.col("suppressed")), "X_01").join(
            of(counts, "X_01", "numerator", (pl.col("denominator") - pl.col("missing"))
               .alias("present")), on=keys)
        given_away = hidden.join(shown, on=keys).filter(
            (pl.col("denominator") == pl.col("numerator"))
            | (pl.col("denominator") == pl.col("present")))
        assert given_away.is_empty(), given_away.rows()[:3]
