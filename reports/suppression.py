"""The small-number rule and complementary suppression for published artefacts.

Primary rule: where a unit's denominator is 1-4 (configurable), published
tables show '<5' instead of its numerator, denominator, proportion and
interval; its missing count, median and risk-adjusted figures are withheld too,
as each could reveal the small count.

Primary suppression alone is undone by subtraction (a region minus its other
hospitals gives the hidden one), so further cells are hidden, shown as '..'
(complementary suppression), until no hidden count can be worked out from what
is published. The attacker knows the relations below, that a '<5' lies in
1..4, that a '..' is at least 5, that a unit with a row has a denominator of
at least 1 and that numerator + missing <= denominator. One indicator and one
year at a time, over every level and month of that year, so that every
artefact of the year hides the same cells (docs/method.md, "Small numbers and
complementary suppression"):

- relations: in every period, national = sum of the regions = sum of the units
  of every other level, and region = sum of its parts (the hospitals for
  hospital-based indicators, the municipalities for municipal ones); for every
  unit, year = sum of its months;
- a total shown as '<5' is not broken down: the months of a unit whose year
  is '<5', the parts of a region and the units of a nation whose month is '<5'
  are left out, as their number alone could pin the total down (four rows
  under a '<5' are 1 each); the attacker then knows them only as 0..4;
- a hidden value is safe when a *move* exists: integer changes of hidden cells
  that keep every relation and every bound the attacker knows and change that
  value. Moves are rectangles: two periods (two months, or a month and its
  year) times two units the relations treat alike (two hospitals of one
  region; two municipalities; a region with one of its parts against another
  region with one of its parts; the nation with a region, a part and a unit of
  each other level);
- every hidden value without a move gets the cheapest rectangle through it
  (the least total denominator newly hidden; ties by the smallest cells'
  order), until every hidden value has one. A value no rectangle protects is
  checked exactly by linear programming; if pinned down, the next-smallest
  published cell of one of its relations is hidden as well.

Denominators and numerators are protected against all of this. Missing counts
are protected against subtraction and the linear system (they hide in the same
cells as the denominators), not against the bounds: that would hide a quarter
of the published cells of the sample instead of a sixth. Indicators with
identical denominators in every cell (HIP_03 and HIP_04) are protected
together, so one cannot publish the count the other hides; indicators that
count the same records (one's denominator is the other's numerator, or its
denominator once follow-up is complete: ``shared_counts``) hide each other's
cells where their counts agree. Not protected, as no suppression could: a
numerator of 0 that a published total of 0 states for all of its parts; nor a
hidden 0 that the missing row of a linked indicator states (no row for a
denominator of 0). Where a linked pair's counts agree in some periods only
(follow-up complete), the partner publishes the sum of the agreeing months; so in a unit's
year relation, the cells whose counts differ (the other months and the year) never have a
single one hidden (``_untied_alone``).

Releases keep each other's patterns (``reports/releases.py``), so two releases of the same
months cannot be combined: a cell an earlier release hid stays hidden whatever its counts
now (``forced``); one it showed with the same denominator stays shown (``known``: never
chosen as a complement), and so does a count it showed in a linked indicator; other cells
get the new data's pattern.

Risk-adjusted figures are made with the national proportion of their period
(adjusted = O/E x it; smoothed is shrunk towards it): where the national cell of
a period is hidden, no row of that period shows them, as adjusted / O/E would
give the hidden national proportion away.

Deliveries to a unit about its own patients are not suppressed (they are the
unit's own); the region and nation they are compared with are, and the unit's
own risk-adjusted figures follow the rule above.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy import sparse
from scipy.optimize import linprog

from reports.releases import HIDDEN as HIDDEN_BEFORE
from reports.releases import SHOWN as SHOWN_BEFORE
from reports.releases import cell_counts, with_release_state

log = logging.getLogger("kvalitet.reports")

HIDDEN = ["numerator", "denominator", "missing", "proportion", "ci_low", "ci_high", "median",
          "expected", "oe_ratio", "oe_low", "oe_high", "adjusted_proportion", "adjusted_low",
          "adjusted_high", "smoothed_proportion", "standard_met"]
PRIMARY, COMPLEMENTARY, OMITTED = "small", "complementary", "omitted"
LEVEL_ORDER = {"national": 0, "region": 1, "hospital": 2, "clinic": 3, "municipality": 4}
REGION_PARTS = ("hospital", "clinic", "municipality")  # a region is the sum of the first present


@dataclass(frozen=True)
class Hierarchy:
    """The region each reporting unit belongs to, per level (the public reference tables)."""

    region_of: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def from_warehouse(cls, con) -> "Hierarchy":
        from schemas.declarations import LEVELS  # the levels and how each reaches its region

        return cls({level: dict(con.sql(LEVELS.region_sql(level)).fetchall())
                    for level in LEVELS.levels})


@dataclass(frozen=True)
class SmallNumberRule:
    minimum: int = 1
    maximum: int = 4
    complementary_shown_as: str = ".."

    @classmethod
    def from_environment(cls) -> "SmallNumberRule":
        from pipelines.settings import small_number_range

        return cls(*small_number_range())

    @property
    def shown_as(self) -> str:
        return f"<{self.maximum + 1}"

    def marker(self) -> pl.Expr:
        """What a published table shows in place of a hidden number (null where shown)."""
        return (pl.when(pl.col("suppression") == PRIMARY).then(pl.lit(self.shown_as))
                .when(pl.col("suppression") == COMPLEMENTARY)
                .then(pl.lit(self.complementary_shown_as)))

    def applies(self) -> pl.Expr:
        return pl.col("denominator").is_between(self.minimum, self.maximum)

    def suppress(self, results: pl.DataFrame, hierarchy: Hierarchy,
                 linked: list[tuple[str, str]] = (), released: pl.DataFrame | None = None
                 ) -> pl.DataFrame:
        """What may be published: hidden numbers null, with ``suppressed`` and
        ``suppression`` (``small`` = primary, ``complementary``); the month rows of a
        unit whose year is small are left out.

        Pass whole years of an indicator (every level and month): the pattern of a
        year depends on all its cells, and must be the same in every artefact.
        ``released``: what earlier releases published (``releases.earlier``)."""
        reason = complementary_pattern(results, hierarchy, self, linked, released)
        marked = (results.with_row_index("_row").join(reason, on="_row", how="left")
                  .sort("_row").drop("_row")
                  .filter(pl.col("suppression").is_null() | (pl.col("suppression") != OMITTED)))
        hidden = pl.col("suppression").is_not_null()
        published = marked.with_columns(
            hidden.alias("suppressed"),
            *[pl.when(hidden).then(None).otherwise(pl.col(c)).alias(c)
              for c in HIDDEN if c in results.columns])
        return without_hidden_national(published, published)


# Figures made with the national proportion of their period (O/E x it, and shrunk towards it).
NATIONAL_MADE = ["adjusted_proportion", "adjusted_low", "adjusted_high", "smoothed_proportion"]


def without_hidden_national(rows: pl.DataFrame, published: pl.DataFrame) -> pl.DataFrame:
    """``rows`` without the risk-adjusted figures of a period whose national cell is hidden
    (or left out) in ``published``: adjusted = O/E x the national proportion, so any unit's
    adjusted / O/E would give the hidden national proportion away. Also for a unit's own
    delivery, whose own rows are otherwise shown whole."""
    columns = [c for c in NATIONAL_MADE if c in rows.columns]
    if not columns or rows.is_empty():
        return rows
    shown = (published.filter((pl.col("level") == "national") & ~pl.col("suppressed"))
             .select("indicator_id", "period").unique()
             .with_columns(pl.lit(True).alias("_national_shown")))
    return (rows.join(shown, on=["indicator_id", "period"], how="left", maintain_order="left")
            .with_columns([pl.when(pl.col("_national_shown")).then(pl.col(c)).alias(c)
                           for c in columns])
            .drop("_national_shown"))


BASE = ["numerator", "denominator", "missing", "proportion", "ci_low", "ci_high"]


def as_text(published: pl.DataFrame, rule: SmallNumberRule) -> pl.DataFrame:
    """The published rows with the hidden numbers as their marker ('<5' or '..'), for CSV
    and Excel. A column gets the marker where the indicator uses it: the base counts
    (not the numerator, proportion and interval of a median) and any other column with
    a value in one of the indicator's shown rows."""
    hidden = pl.col("suppression").is_not_null()
    shown = ~hidden
    median = (pl.col("median").is_not_null() & shown).any().over("indicator_id") \
        if "median" in published.columns else pl.lit(False)
    out = []
    for c in HIDDEN:
        if c not in published.columns:
            continue
        used = (pl.col(c).is_not_null() & shown).any().over("indicator_id")
        if c in BASE and c not in ("denominator", "missing"):
            used = used | ~median
        elif c in BASE:
            used = pl.lit(True)
        out.append(pl.when(hidden & used).then(rule.marker())
                   .otherwise(pl.col(c).cast(pl.String)).alias(c))
    return published.with_columns(out).drop("suppressed", "suppression", strict=False)


def _conjuncts(criterion) -> frozenset[str]:
    """A criterion as the set of conditions that must all hold: SQL text split at its
    top-level ANDs (not a BETWEEN's), ``all:`` into its parts, anything else whole."""
    import json
    import re

    if isinstance(criterion, str):
        parts, depth, quoted, start = [], 0, False, 0
        text = " ".join(criterion.split())
        for m in re.finditer(r"'|\(|\)|\bAND\b|\bBETWEEN\b", text, re.IGNORECASE):
            token = m.group(0).upper()
            if token == "'":
                quoted = not quoted
            elif quoted:
                continue
            elif token in "()":
                depth += 1 if token == "(" else -1
            elif token == "BETWEEN" and depth == 0:
                depth -= 100  # its AND is not a conjunction; restored at that AND
            elif token == "AND" and depth == -100:
                depth = 0
            elif token == "AND" and depth == 0:
                parts.append(text[start:m.start()])
                start = m.end()
        parts.append(text[start:])
        return frozenset(p.strip() for p in parts if p.strip())
    dumped = criterion.model_dump(by_alias=True)
    if "all" in dumped:
        return frozenset().union(*(_conjuncts(c) for c in criterion.all))
    return frozenset({json.dumps(dumped, sort_keys=True, default=str)})


def _count_sets(d) -> list[frozenset[str]]:
    """The conditions of the records an indicator counts: its denominator, its numerator,
    and its denominator less its missing records (follow-up left aside: once it is
    complete, it changes nothing)."""
    denominator = _conjuncts(d.population).union(
        *(_conjuncts(c) for c in d.denominator),
        *(frozenset({"NOT " + c for c in _conjuncts(e)}) for e in d.exclusions))
    sets = [denominator]
    if d.numerator is not None:
        sets.append(denominator | _conjuncts(d.numerator))
    if d.missing_field:
        sets.append(denominator | {f"{d.missing_field} IS NOT NULL"})
    return sets


def shared_counts(definitions) -> list[tuple[str, str]]:
    """Pairs of indicators of one registry where one counts the very records another
    counts: STROKE_03's denominator is STROKE_02's numerator, STROKE_06's is STROKE_01's
    once follow-up is complete, STROKE_07's is STROKE_03's less its missing times,
    DHRD_05's is DHRD_01's numerator. Each must hide where the other hides, else one
    publishes the count the other hides. Found from the definitions' conditions: written
    the same way (as the catalogue's are), they are recognised."""
    pairs = []
    for a, b in itertools.combinations(sorted(definitions, key=lambda d: d.id), 2):
        if a.registry != b.registry:
            continue
        sets_a, sets_b = _count_sets(a), _count_sets(b)
        if any(x == y for x in sets_a for y in sets_b):
            pairs.append((a.id, b.id))
    return pairs


Cell = tuple[str, str, str]  # (period, level, unit_code)


def complementary_pattern(results: pl.DataFrame, hierarchy: Hierarchy,
                          rule: SmallNumberRule, linked: list[tuple[str, str]] = (),
                          released: pl.DataFrame | None = None) -> pl.DataFrame:
    """``_row`` (row position in ``results``) and ``suppression`` of every hidden row.

    ``linked``: pairs of indicators that count the same records (``shared_counts``); their
    groups' patterns are made together (``_family_year``). ``released``: cells earlier
    releases published: hidden ones stay hidden, shown ones with the same denominator
    stay shown."""
    out_rows: list[int] = []
    out_reason: list[str] = []
    if not results.is_empty():
        frame = with_release_state(results, released).with_row_index("_row").with_columns(
            pl.col("period").str.slice(0, 4).alias("_year"))
        groups = denominator_groups(frame)
        group_of = {i: n for n, group in enumerate(groups) for i in group}
        edges = {tuple(sorted((group_of[a], group_of[b]))) for a, b in linked
                 if a in group_of and b in group_of and group_of[a] != group_of[b]}
        family = list(range(len(groups)))  # union-find over the linked groups

        def root(n: int) -> int:
            while family[n] != n:
                n = family[n]
            return n
        for a, b in edges:
            family[root(a)] = root(b)
        families: dict[int, list[int]] = {}
        for n in range(len(groups)):
            families.setdefault(root(n), []).append(n)
        for members in families.values():
            ids = [i for n in members for i in groups[n]]
            inner = {(members.index(a), members.index(b)) for a, b in edges if a in members}
            for _, year in frame.filter(pl.col("indicator_id").is_in(ids)).group_by(
                    "_year", maintain_order=True):
                for row_ids, reason in _family_year(year, [groups[n] for n in members], inner,
                                                    hierarchy, rule):
                    out_rows.extend(row_ids)
                    out_reason.extend([reason] * len(row_ids))
    return pl.DataFrame({"_row": out_rows, "suppression": out_reason},
                        schema={"_row": pl.UInt32, "suppression": pl.String})


def _family_year(year: pl.DataFrame, groups: list[list[str]], links: set[tuple[int, int]],
                 hierarchy: Hierarchy, rule: SmallNumberRule):
    """(row positions, reason) of one year of linked indicator groups. A cell one group
    hides is hidden in another group too where that group would publish a count equal to
    one of the hidden group's counts there (STROKE_03's denominator is STROKE_02's
    numerator: whatever the catalogue makes equal is equal in the data); each group's
    pattern is then made again with those cells, until nothing more is to be hidden.
    ``links``: the pairs of groups (positions in ``groups``) that count the same records.

    Not protected: a hidden count of 0 where the other indicator has no row (STROKE_03 has
    none where STROKE_02's numerator is 0): its missing row states the 0. Stand-in rows of
    '<5' were tried; on the sample they left DHRD_05 publishable at national level only."""
    parts = [(group, year.filter(pl.col("indicator_id").is_in(group))) for group in groups]
    counts = [_by_cell(rows, cell_counts()) for _, rows in parts]
    forced: list[set[Cell]] = [_cells(rows.filter(pl.col("_released") == HIDDEN_BEFORE))
                               for _, rows in parts]
    known = [_cells(rows.filter(pl.col("_released") == SHOWN_BEFORE))
             - _cells(rows.filter(pl.col("_released").ne_missing(SHOWN_BEFORE)))
             for _, rows in parts]  # every indicator of the group shown, unchanged
    small = [_cells(rows.filter(rule.applies())) for _, rows in parts]
    shown_before = [_by_cell(rows, pl.col("_shown_counts")) for _, rows in parts]
    patterns: list[list] = [[] for _ in parts]
    hidden: list[set[Cell]] = [set() for _ in parts]

    def settle(again: set[int]) -> None:
        while again:  # only the groups given new cells are made again
            for i in sorted(again):
                group, rows = parts[i]
                if rows.is_empty():  # none of the group's indicators has this year
                    continue
                patterns[i] = list(_year_pattern(rows, group, hierarchy, rule, forced[i],
                                                 known[i]))
                keys = dict(zip(rows["_row"],
                                zip(rows["period"], rows["level"], rows["unit_code"])))
                hidden[i] = {keys[r] for row_ids, _ in patterns[i] for r in row_ids}
            again = set()
            for i, j in itertools.permutations(range(len(parts)), 2):
                if (min(i, j), max(i, j)) not in links:
                    continue
                for cell in hidden[j] - small[j] - known[j]:
                    # a count of j that i shows again, or that an earlier release showed in i:
                    # hidden in j, it would hide nothing (the attack filled STROKE_06's cells
                    # from June's STROKE_01), so j shows it
                    mine = counts[j][cell]
                    if (mine & shown_before[i].get(cell, set())
                            or cell in known[i] and mine & counts[i].get(cell, set())):
                        known[j].add(cell)
                        forced[j].discard(cell)
                        again.add(j)
                for cell in hidden[j] - hidden[i] - forced[i] - known[i]:  # i shows it: no better
                    public = shown_before[i].get(cell, set()) | shown_before[j].get(cell, set())
                    if counts[i].get(cell, set()) & counts[j][cell] - public:
                        forced[i].add(cell)
                        again.add(i)

    settle(set(range(len(parts))))
    for _ in range(UNTIED_ROUNDS):
        extra = _untied_alone(parts, links, hidden, counts, known)
        if not extra:
            break
        for i, cell in extra:
            forced[i].add(cell)
        settle({i for i, _ in extra})
    else:
        log.warning("complementary suppression: %s %s: a year relation still has a single "
                    "hidden cell apart from its linked partner", ",".join(
                        i for group, _ in parts for i in group), year["_year"][0])
    for pattern in patterns:
        yield from pattern


UNTIED_ROUNDS = 40  # cells added beside a lone hidden one before giving up (a warning)


def _untied_alone(parts, links, hidden, counts, known) -> list:
    """(group, cell) to hide as well where a unit's year relation in a linked group has one
    hidden cell among those whose counts differ from the partner's (months whose follow-up
    is not complete, and the year): the partner publishes the sum of the others."""
    extra = set()
    for i, j in itertools.permutations(range(len(parts)), 2):
        if (min(i, j), max(i, j)) not in links or parts[j][1].is_empty():
            continue
        by_unit: dict = {}
        for cell in counts[j]:
            by_unit.setdefault(cell[1:], []).append(cell)
        for unit, cells in by_unit.items():
            tied = {c for c in cells if counts[j][c] & counts[i].get(c, set())}
            untied = [c for c in cells if c not in tied]
            if not tied or not untied:
                continue
            alone = [c for c in untied if c in hidden[j]]
            if len(alone) != 1:
                continue
            shown = sorted((c for c in untied if c not in hidden[j] and c not in known[j]),
                           key=lambda c: (min(counts[j][c]), c))
            if shown:
                extra.add((j, shown[0]))
    return sorted(extra)


def _by_cell(rows: pl.DataFrame, values: pl.Expr) -> dict[Cell, set[int]]:
    """Each cell's counts (a list per row, the group's indicators pooled), nulls left out."""
    out: dict[Cell, set[int]] = {}
    for period, level, unit, found in rows.select(
            "period", "level", "unit_code", values.alias("_v")).iter_rows():
        if found is not None:  # null: no earlier release showed the cell
            out.setdefault((period, level, unit), set()).update(v for v in found
                                                                if v is not None)
    return out


def _cells(rows: pl.DataFrame) -> set[Cell]:
    return set(rows.select("period", "level", "unit_code").iter_rows())


def _year_pattern(rows: pl.DataFrame, group: list[str], hierarchy: Hierarchy,
                  rule: SmallNumberRule, forced: set[Cell] = frozenset(),
                  known: set[Cell] = frozenset()):
    """(row positions, reason) of the hidden cells of one indicator group and year, with
    the ``forced`` cells (hidden by a linked group or an earlier release) hidden and
    protected too, and the ``known`` ones (shown by an earlier release) never hidden.

    Where no pattern protects every hidden value (tiny tables, whose markers alone
    bound a total from both sides), the year is published at national level only;
    where even that fails, not at all."""
    grid = Grid.build(rows, group, hierarchy, rule, forced, known)
    hidden, safe = protect(grid, rule)
    if not safe:
        national = rows.filter(pl.col("level") == "national")
        log.warning("complementary suppression: %s %s is published at national level only",
                    ",".join(group), grid.periods[0][:4])
        grid_n = Grid.build(national, group, hierarchy, rule, forced, known)
        hidden_n, safe = protect(grid_n, rule)
        for cell, row_ids in grid_n.rows.items():
            if not safe or hidden_n[cell]:
                yield row_ids, (OMITTED if not safe or grid_n.omitted[cell] else
                                PRIMARY if grid_n.primary[cell] else COMPLEMENTARY)
        yield rows.filter(pl.col("level") != "national")["_row"].to_list(), OMITTED
        return
    for cell, row_ids in grid.rows.items():
        if hidden[cell]:
            yield row_ids, (OMITTED if grid.omitted[cell] else
                            PRIMARY if grid.primary[cell] else COMPLEMENTARY)


def denominator_groups(frame: pl.DataFrame) -> list[list[str]]:
    """Indicators whose denominators are equal in every cell are protected together:
    else one could publish the very count the other hides (HIP_03 and HIP_04)."""
    by_key: dict[tuple, list[str]] = {}
    for (indicator,), rows in frame.sort("period", "level", "unit_code").group_by(
            ["indicator_id"], maintain_order=True):
        key = tuple(zip(rows["period"], rows["level"], rows["unit_code"], rows["denominator"]))
        by_key.setdefault(key, []).append(indicator)
    return sorted(sorted(g) for g in by_key.values())


# -- one year of one indicator group as a grid of periods x units ----------------------------
@dataclass
class Grid:
    """Cells ``p * n_units + u`` (the year is period 0). ``values`` columns: 0 =
    denominator, then numerator and missing per indicator (``pairs``; None for a median).

    ``exists``: the cell has a row. ``omitted``: a month of a unit whose year is small
    (left out, present or not). ``movable``: unknown to the attacker once hidden (a
    cell with no row, not omitted, is a published 0; a ``known`` one stays known)."""

    periods: list[str]
    units: list[tuple[str, str]]
    exists: np.ndarray
    values: np.ndarray
    pairs: list[tuple[int | None, int | None]]
    parts: str | None
    region_of: dict[int, int]  # part unit -> its region unit
    rows: dict[int, list[int]]  # cell -> row positions in the results
    primary: np.ndarray
    omitted: np.ndarray
    lower: np.ndarray  # what the attacker knows of a hidden denominator
    upper: np.ndarray
    forced: np.ndarray  # hidden because a linked group hides the cell (a '..': at least 5)
    known: np.ndarray  # shown by an earlier release (same denominator): never hidden

    @property
    def n_units(self) -> int:
        return len(self.units)

    @property
    def movable(self) -> np.ndarray:
        return self.present & ~self.known

    @property
    def present(self) -> np.ndarray:
        """In the relations as a number the attacker may not know (a ``known`` one is)."""
        return self.exists | self.omitted

    def cell(self, period: int, unit: int) -> int:
        return period * self.n_units + unit

    @property
    def count_columns(self) -> list[int]:
        return sorted(c for pair in self.pairs for c in pair if c is not None)

    @property
    def numerator_columns(self) -> list[int]:
        return [num for num, _ in self.pairs if num is not None]

    @property
    def has_year(self) -> bool:
        return bool(self.periods) and len(self.periods[0]) == 4

    @classmethod
    def build(cls, rows: pl.DataFrame, group: list[str], hierarchy: Hierarchy,
              rule: SmallNumberRule, forced_cells: set[Cell] = frozenset(),
              known_cells: set[Cell] = frozenset()) -> "Grid":
        periods = sorted(set(rows["period"]), key=lambda p: (len(p), p))
        units = sorted(set(zip(rows["level"], rows["unit_code"])),
                       key=lambda u: (LEVEL_ORDER.get(u[0], 9), u[0], u[1]))
        p_at = {p: i for i, p in enumerate(periods)}
        u_at = {u: i for i, u in enumerate(units)}
        n = len(periods) * len(units)
        values = np.zeros((n, 1 + 2 * len(group)), dtype=np.int64)
        exists = np.zeros(n, dtype=bool)
        pairs: list[tuple[int | None, int | None]] = []
        cell_rows: dict[int, list[int]] = {}
        for k, indicator in enumerate(group):
            mine = rows.filter(pl.col("indicator_id") == indicator)
            at = np.array([p_at[p] * len(units) + u_at[(lv, u)] for p, lv, u in
                           zip(mine["period"], mine["level"], mine["unit_code"])], dtype=np.int64)
            exists[at] = True
            values[at, 0] = mine["denominator"].to_numpy()
            if mine["numerator"].null_count() == mine.height:
                pairs.append((None, None))  # a median: no numerator; missing is 0 by contract
            else:
                values[at, 1 + 2 * k] = mine["numerator"].fill_null(0).to_numpy()
                values[at, 2 + 2 * k] = mine["missing"].fill_null(0).to_numpy()
                pairs.append((1 + 2 * k, 2 + 2 * k))
            for cell, row in zip(at.tolist(), mine["_row"].to_list()):
                cell_rows.setdefault(cell, []).append(row)
        levels = {lv for lv, _ in units}
        parts = next((lv for lv in REGION_PARTS if lv in levels), None)
        regions = {code: i for i, (lv, code) in enumerate(units) if lv == "region"}
        region_of = {}
        for i, (lv, code) in enumerate(units):
            region = hierarchy.region_of.get(lv, {}).get(code)
            if lv == parts and region in regions:
                region_of[i] = regions[region]
        den = values[:, 0]
        small = exists & (den >= rule.minimum) & (den <= rule.maximum)
        omitted = _breakdown_of(small, periods, units, region_of)
        primary = small & ~omitted
        low = max(rule.minimum, 1)
        lower = np.where(omitted, 0, np.where(primary, low, rule.maximum + 1 if low <= 1 else 1))
        upper = np.where(primary | omitted, float(rule.maximum), np.inf)
        def marked(cells: set[Cell]) -> np.ndarray:
            at = np.zeros(n, dtype=bool)
            for period, level, unit in cells:
                if period in p_at and (level, unit) in u_at:
                    at[p_at[period] * len(units) + u_at[(level, unit)]] = True
            return at & exists & ~primary & ~omitted
        forced = marked(forced_cells)
        known = marked(known_cells) & ~forced
        return cls(periods, units, exists, values, pairs, parts, region_of, cell_rows,
                   primary, omitted, lower.astype(float), upper, forced, known)

    def relations(self) -> list[tuple[int, np.ndarray]]:
        """(parent, its parts in the relations) for every relation of the module docstring; a parent
        without a row is a published 0. Relations that do not hold are not used."""
        found = []
        kinds = [lv for lv, _ in self.units]
        national = [u for u, k in enumerate(kinds) if k == "national"]
        by_region: dict[int, list[int]] = {}
        for u, r in self.region_of.items():
            by_region.setdefault(r, []).append(u)
        for p in range(len(self.periods)):
            if national:
                for level in sorted(set(kinds) - {"national"}):
                    found.append((self.cell(p, national[0]),
                                  [self.cell(p, u) for u, k in enumerate(kinds) if k == level]))
            for r, members in by_region.items():
                found.append((self.cell(p, r), [self.cell(p, u) for u in members]))
        if self.has_year:
            for u in range(self.n_units):
                found.append((self.cell(0, u),
                              [self.cell(p, u) for p in range(1, len(self.periods))]))
        holds = []
        for parent, children in found:
            children = np.array([c for c in children if self.present[c]], dtype=np.int64)
            if not len(children):
                continue
            if (self.values[children].sum(axis=0) == self.values[parent]).all():
                holds.append((parent, children))
            else:
                log.debug("relation of %s %s does not hold; not used",
                          self.periods[parent // self.n_units], self.units[parent % self.n_units])
        return holds

    # -- moves: two periods x two teams ----------------------------------------------------
    def teams(self) -> tuple[list[list[int]], list[int], list[int]]:
        """Units that move together (all by the same step), their league and their club.

        A rectangle pairs two teams of one league from different clubs, one going up
        where the other goes down: two parts of one region; two units of a level that
        adds up to the nation only; a region with one of its parts against another
        region with one of its parts. A team of the nation (with a region, one of its
        parts and one unit of each other level) moves alone: its league has one club."""
        kinds = [lv for lv, _ in self.units]
        teams: list[list[int]] = []
        league: list[int] = []
        club: list[int] = []
        parts_of: dict[int, list[int]] = {}
        for u, r in sorted(self.region_of.items()):
            parts_of.setdefault(r, []).append(u)
        n_leagues = 0
        for members in parts_of.values():
            for u in members:
                teams.append([u]), league.append(n_leagues), club.append(u)
            n_leagues += 1
        flat = sorted(set(kinds) - {"national", "region", self.parts})
        for level in flat:
            for u in (u for u, k in enumerate(kinds) if k == level):
                teams.append([u]), league.append(n_leagues), club.append(u)
            n_leagues += 1
        for r, members in parts_of.items():
            for u in members:
                teams.append([r, u]), league.append(n_leagues), club.append(r)
        n_leagues += 1
        national = [u for u, k in enumerate(kinds) if k == "national"]
        hidden_nation = bool(national) and (self.primary | self.omitted | self.forced)[
            [self.cell(p, national[0]) for p in range(len(self.periods))]].any()
        if hidden_nation and len(flat) <= 1:
            others = [u for u, k in enumerate(kinds) if k in flat] or [None]
            pairs = [[r, u] for r, members in parts_of.items() for u in members] or [[]]
            for pair in pairs:
                for f in others:
                    teams.append([national[0], *pair] + ([f] if f is not None else []))
                    league.append(n_leagues), club.append(-1)
        return teams, league, club


def _breakdown_of(small: np.ndarray, periods, units, region_of) -> np.ndarray:
    """Cells left out because a total they add up to is small (or itself left out): the
    months of a small year, the units of a small nation, the parts of a small region.
    Their number alone could pin the total down (four rows under a '<5' are 1 each)."""
    n_u = len(units)
    n_p = len(periods)
    kinds = np.array([lv for lv, _ in units])
    national = np.flatnonzero(kinds == "national")
    region = np.array([region_of.get(u, -1) for u in range(n_u)])
    months = np.array([len(p) == 7 for p in periods])
    year = n_p and len(periods[0]) == 4
    omitted = np.zeros(n_p * n_u, dtype=bool)
    while True:
        total = (small | omitted).reshape(n_p, n_u)
        below = np.zeros_like(total)
        if year:
            below |= months[:, None] & total[:1, :]
        if len(national):
            below |= total[:, national[0]][:, None] & (kinds != "national")[None, :]
        parts = region >= 0
        below[:, parts] |= total[:, region[parts]]
        grown = omitted | below.ravel()
        if (grown == omitted).all():
            return omitted
        omitted = grown


# -- single steps at one cell ------------------------------------------------------------------
def variants(grid: Grid) -> list[tuple[int, ...]]:
    """Column sets a move may change together: the denominator with, per indicator, nothing,
    its numerator or its missing count (so numerator + missing <= denominator still holds);
    or a single count alone."""
    options = [[None] + [c for c in pair if c is not None] for pair in grid.pairs]
    found = [tuple([0] + [c for c in combo if c is not None])
             for combo in itertools.product(*options)]
    return found + [(c,) for c in grid.count_columns]


def steps(grid: Grid, moves: list[tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray]:
    """up[v, cell], down[v, cell]: may the columns of variant v all go up (down) by one
    at that cell, hidden, within what the attacker knows?"""
    v = grid.values.astype(float)
    den = v[:, 0]
    up = np.zeros((len(moves), len(den)), dtype=bool)
    down = np.zeros_like(up)
    for i, cols in enumerate(moves):
        if cols[0] == 0:
            up[i] = den + 1 <= grid.upper
            ok = den - 1 >= grid.lower
            for num, mis in grid.pairs:
                if num is None:
                    continue
                moving = [c for c in cols if c in (num, mis)]
                ok &= (v[:, moving[0]] >= 1) if moving else (den - v[:, num] - v[:, mis] >= 1)
            down[i] = ok
        else:
            (c,) = cols
            num, mis = next(p for p in grid.pairs if c in p)
            up[i] = den - v[:, num] - v[:, mis] >= 1
            down[i] = v[:, c] >= 1
    return up & grid.movable, down & grid.movable


def accepted(grid: Grid, relations, hidden: np.ndarray) -> np.ndarray:
    """(cell, column) that may be pinned down: a numerator that a published total of 0
    pins to 0 (its parts, and their parts in turn), and a missing count of 0."""
    out = np.zeros(grid.values.shape, dtype=bool)
    for num, mis in grid.pairs:
        if num is None:
            continue
        out[:, mis] = grid.values[:, mis] == 0
        zero = ~hidden & (grid.values[:, num] == 0)
        grown = True
        while grown:
            grown = False
            for parent, children in relations:
                if zero[parent] and not zero[children].all():
                    zero[children] = True
                    grown = True
        out[:, num] = zero & hidden
    return out


# -- the protection ----------------------------------------------------------------------------
class _Moves:
    """Rectangles of two periods x two teams, for certifying and for choosing complements.

    A rectangle through periods (a, b) moves team t by +1 at a and the partner team by
    -1 at a; at b the signs flip when a and b are two months, and stay when b is the
    year of month a (the year is the sum of its months). Either orientation will do."""

    def __init__(self, grid: Grid):
        self.grid = grid
        self.variants = variants(grid)
        up, down = steps(grid, self.variants)
        teams, league, club = grid.teams()
        self.n_t = len(teams)
        width = max((len(t) for t in teams), default=1)
        self.members = np.array([t + [t[0]] * (width - len(t)) for t in teams],
                                dtype=np.int64).reshape(-1, width)
        self.league = np.array(league, dtype=np.int64)
        self.club = np.array(club, dtype=np.int64)
        n_p = len(grid.periods)
        self.cells = (np.arange(n_p)[None, :, None] * grid.n_units
                      + self.members[:, None, :])  # team x period x member
        self.up = up[:, self.cells].all(axis=-1)  # variant x team x period
        self.down = down[:, self.cells].all(axis=-1)
        self.movable = grid.movable[self.cells].all(axis=-1)
        self.solo = {int(g) for g in set(league) if (self.club[self.league == g] == -1).all()}
        self.by_unit: dict[int, list[int]] = {}
        for t, members in enumerate(teams):
            for u in members:
                self.by_unit.setdefault(u, []).append(t)
        den = grid.values[:, 0]
        self.rank = np.empty(len(den), dtype=np.int64)
        self.rank[np.lexsort((np.arange(len(den)), den))] = np.arange(len(den))
        self.months = np.array([len(p) == 7 for p in grid.periods])

    def certified(self, hidden: np.ndarray) -> np.ndarray:
        """(cell, column) that some rectangle of hidden cells can change."""
        g = self.grid
        out = np.zeros(g.values.shape, dtype=bool)
        if not self.n_t:
            return out
        ready = hidden[self.cells].all(axis=-1)  # team x period
        months = self.months
        year = g.has_year
        for v, cols in enumerate(self.variants):
            u_ = self.up[v] & ready
            d_ = self.down[v] & ready
            free = np.zeros_like(ready)
            for lg in np.unique(self.league):
                at = np.flatnonzero(self.league == lg)
                uu, dd = u_[at].astype(np.int64), d_[at].astype(np.int64)
                if lg in self.solo:  # no partner: the team's own steps must match
                    du = np.ones((len(at), 1, 1), dtype=bool)
                    ud = du
                    yy_d = yy_u = np.ones((len(at), 1), dtype=bool)
                else:
                    clubs, inverse = np.unique(self.club[at], return_inverse=True)

                    def others(x, y):  # per team: sum over teams of other clubs of x[p1] y[p2]
                        per_club = np.zeros((len(clubs), x.shape[1], y.shape[1]), np.int64)
                        np.add.at(per_club, inverse, x[:, :, None] * y[:, None, :])
                        return per_club.sum(axis=0)[None] - per_club[inverse]
                    du = others(dd, uu) > 0  # partner down at p1, up at p2
                    ud = others(uu, dd) > 0
                    if year:
                        yy_d = (others(dd, dd[:, :1]) > 0)[:, :, 0]  # partner down at m and Y
                        yy_u = (others(uu, uu[:, :1]) > 0)[:, :, 0]
                ub, db = uu.astype(bool), dd.astype(bool)
                pair = ((ub[:, :, None] & db[:, None, :] & du)
                        | (db[:, :, None] & ub[:, None, :] & ud))
                pair &= months[None, :, None] & months[None, None, :]
                pair &= ~np.eye(len(months), dtype=bool)[None]
                f = pair.any(axis=2)
                if year:
                    with_year = ((ub & ub[:, :1] & yy_d) | (db & db[:, :1] & yy_u)) & months
                    f |= with_year
                    f[:, 0] = with_year.any(axis=1)
                free[at] |= f
            at = self.cells[free].ravel()
            out[np.ix_(np.unique(at), list(cols))] = True
        return out

    def cheapest(self, cell: int, col: int, hidden: np.ndarray):
        """The rectangle through ``cell`` changing ``col`` that newly hides the least
        denominator (ties: the smaller cells first): (its cells, the columns it moves)."""
        g = self.grid
        p0, u0 = divmod(cell, g.n_units)
        months = np.flatnonzero(self.months)
        if self.months[p0]:
            other = [m for m in months if m != p0] + ([0] if g.has_year else [])
            keep = [-1] * (len(other) - g.has_year) + [1] * g.has_year
        else:
            other, keep = list(months), [1] * len(months)
        mine = self.by_unit.get(u0, [])
        if not other or not mine:
            return None
        pairs = []
        for t in mine:
            lg = self.league[t]
            if lg in self.solo:
                pairs.append((t, -1))
            else:
                for q in np.flatnonzero((self.league == lg) & (self.club != self.club[t])):
                    pairs.append((t, int(q)))
        if not pairs:
            return None
        tq = np.array(pairs, dtype=np.int64)
        t, q = tq[:, :1], tq[:, 1:]
        solo = q < 0
        q = np.where(solo, t, q)  # a solo team stands in as its own (unused) partner
        r = np.array(other, dtype=np.int64)[None, :]
        keep = np.array(keep, dtype=np.int64)[None, :]
        corners = np.stack(np.broadcast_arrays(self.cells[t, p0], self.cells[t, r],
                                               self.cells[q, p0], self.cells[q, r]), axis=2)
        real = np.ones(corners.shape[:-1], dtype=bool)  # pair x period x corner
        real[..., 2:] = ~solo[:, :, None]
        real = np.repeat(real, corners.shape[-1], axis=-1)
        corners = corners.reshape(*corners.shape[:2], -1)
        movable = (g.movable[corners] | ~real).all(axis=-1)
        new = real & ~hidden[corners]
        cost = np.where(new, g.values[corners, 0], 0).sum(axis=-1)
        tie = np.where(real, self.rank[corners], -1).max(axis=-1)
        best, best_key = None, None
        for v, cols in enumerate(self.variants):
            if col not in cols:
                continue
            up, down = self.up[v], self.down[v]
            ok = np.zeros(cost.shape, dtype=bool)
            for step, back in ((up, down), (down, up)):
                go = step[t, p0] & np.where(keep > 0, step[t, r], back[t, r])
                partner = back[q, p0] & np.where(keep > 0, back[q, r], step[q, r])
                ok |= go & (partner | solo)
            ok &= movable
            if not ok.any():
                continue
            i = np.flatnonzero(ok.ravel())
            j = i[np.lexsort((tie.ravel()[i], cost.ravel()[i]))[0]]
            key = (int(cost.ravel()[j]), int(tie.ravel()[j]), v)
            if best_key is None or key < best_key:
                a, b = divmod(int(j), cost.shape[1])
                best_key, best = key, (np.unique(corners[a, b][real[a, b]]), cols)
        return best


def protect(grid: Grid, rule: SmallNumberRule) -> tuple[np.ndarray, bool]:
    """The hidden cells: primary and omitted, then complements until every hidden value
    has a move (or is shown, by linear programming, not to be pinned down); and
    whether that succeeded."""
    hidden = grid.primary | grid.omitted | grid.forced
    if not hidden.any():
        return hidden, True
    relations = grid.relations()
    moves = _Moves(grid)
    columns = [0] + grid.numerator_columns
    certified = np.zeros(grid.values.shape, dtype=bool)
    for _ in range(20):
        certified |= moves.certified(hidden)
        free = accepted(grid, relations, hidden)
        todo = [(int(c), col) for col in columns
                for c in np.flatnonzero(hidden & grid.exists & ~certified[:, col] & ~free[:, col])]
        if not todo:
            return hidden, True
        todo.sort(key=lambda t: (not grid.primary[t[0]], moves.rank[t[0]], t[1]))
        changed = False
        for cell, col in todo:
            if certified[cell, col]:
                continue
            found = moves.cheapest(cell, col, hidden)
            if found is None:
                continue
            chosen, cols = found
            changed |= not hidden[chosen].all()
            hidden[chosen] = True
            certified[np.ix_(chosen, list(cols))] = True
        if not changed:
            break
    return _last_resort(grid, relations, hidden, certified, columns, moves.rank)


def _last_resort(grid, relations, hidden, certified, columns, rank):  # noqa: PLR0913
    """Values no rectangle protects: an exact check (linear programming); if pinned down,
    hide the next-smallest published cell of one of its relations, and check again."""
    for _ in range(int(grid.exists.sum())):
        free = accepted(grid, relations, hidden)
        todo = [(int(c), col) for col in columns for c in np.flatnonzero(
            hidden & grid.exists & ~certified[:, col] & ~free[:, col])]
        if not todo:
            return hidden, True
        pinned = pinned_down(grid, relations, hidden, todo)
        for (cell, col), is_pinned in zip(todo, pinned):
            certified[cell, col] |= not is_pinned
        stuck = [t for t, p in zip(todo, pinned) if p]
        extra = next((e for e in (_next_in_relation(grid, relations, c, col, hidden, rank)
                                  for c, col in stuck) if e is not None), None)
        if extra is None:
            return hidden, not stuck
        hidden[extra] = True  # one at a time: each may settle the others
    return hidden, False


def _next_in_relation(grid, relations, cell, col, hidden, rank) -> int | None:
    """The smallest published part of a relation of ``cell`` (its total if none is left),
    preferring one with a positive count in ``col``."""
    candidates = []
    for parent, children in relations:
        if parent != cell and cell not in children:
            continue
        parts = [int(c) for c in children if not hidden[c] and grid.exists[c]
                 and not grid.known[c]]
        pool = parts or ([int(parent)] if not hidden[parent] and grid.movable[parent] else [])
        useful = [c for c in pool if grid.values[c, col] > 0]
        candidates.extend(useful or pool)
    return min(candidates, key=lambda c: rank[c]) if candidates else None


def pinned_down(grid: Grid, relations, hidden: np.ndarray, targets) -> list[bool]:
    """For each (cell, column): does every solution of the published relations within the
    attacker's bounds give it the same value?"""
    h = np.flatnonzero(hidden & grid.movable)
    pos = {int(c): i for i, c in enumerate(h)}
    columns = [0] + grid.count_columns
    nh, nv = len(h), len(h) * len(columns)
    rows, cols, data, rhs = [], [], [], []
    for parent, children in relations:
        members = np.concatenate([[parent], children])
        signs = np.concatenate([[1.0], -np.ones(len(children))])
        inside = np.array([int(m) in pos for m in members])
        if not inside.any():
            continue
        for k, col in enumerate(columns):
            for m, s in zip(members[inside], signs[inside]):
                rows.append(len(rhs))
                cols.append(k * nh + pos[int(m)])
                data.append(s)
            rhs.append(-float((signs[~inside] * grid.values[members[~inside], col]).sum()))
    a_eq = sparse.csr_array((data, (rows, cols)), shape=(len(rhs), nv))
    rows, cols, data = [], [], []
    for num, mis in grid.pairs:  # numerator + missing <= denominator
        if num is not None:
            for j in range(nh):
                rows += [len(rows) // 3] * 3
                cols += [columns.index(num) * nh + j, columns.index(mis) * nh + j, j]
                data += [1.0, 1.0, -1.0]
    n_ub = len(rows) // 3
    a_ub = sparse.csr_array((data, (rows, cols)), shape=(n_ub, nv))
    lower = np.concatenate([grid.lower[h]] + [np.zeros(nh)] * (len(columns) - 1))
    upper = np.concatenate([grid.upper[h]] * len(columns))
    truth = np.concatenate([grid.values[h, c] for c in columns]).astype(float)
    var = np.array([columns.index(col) * nh + pos[cell] for cell, col in targets], dtype=np.int64)
    return free_to_move(a_eq, np.array(rhs), a_ub, lower, upper, truth, var)


def free_to_move(a_eq, b_eq, a_ub, lower, upper, truth, targets) -> list[bool]:
    """Which target variables every integer solution pins to its true value.

    For each target still open, push it to its largest and its smallest value (with
    a small random push on the other open targets): any integer solution that differs
    from the truth in a target proves that target free."""
    n, k = len(truth), len(targets)
    open_ = np.ones(k, dtype=bool)
    cap = np.where(np.isinf(upper), truth.max(initial=0) * 4 + 100, upper)
    rng = np.random.default_rng(0)
    constraints = {"A_eq": a_eq if a_eq.shape[0] else None,
                   "b_eq": b_eq if a_eq.shape[0] else None,
                   "A_ub": a_ub if a_ub.shape[0] else None,
                   "b_ub": np.zeros(a_ub.shape[0]) if a_ub.shape[0] else None,
                   "bounds": np.c_[lower, cap], "method": "highs"}
    pinned = np.zeros(k, dtype=bool)
    for i in range(k):
        if not open_[i]:
            continue
        for sign in (1.0, -1.0):
            for spread in (0.01, 0.0):
                objective = np.zeros(n)
                objective[targets[open_]] = spread * rng.choice([-1.0, 1.0], open_.sum())
                objective[targets[i]] = -sign
                result = linprog(objective, **constraints)
                x = result.x
                if result.status != 0:
                    raise RuntimeError(f"the published figures admit no solution ({result.message})")
                if np.abs(x - np.round(x)).max() > 1e-6:  # a fractional corner: ask for integers
                    x = linprog(objective, integrality=np.ones(n), **constraints).x
                open_ &= np.abs(x[targets] - truth[targets]) < 0.5
                if not open_[i]:
                    break
            if not open_[i]:
                break
        if open_[i]:
            pinned[i] = True
            open_[i] = False
    return pinned.tolist()
