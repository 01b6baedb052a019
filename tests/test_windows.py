"""Every time window the engine compiles, against the catalogue's rule in plain Python.

The catalogue: "within N hours" is 0 <= later - earlier <= N*60 minutes on the datetimes,
exactly (24 h 30 s is outside 24 h); "within N days" is 0 <= later date - earlier date <= N;
a missing timestamp meets no window; "event <= anchor date + D" compares dates; a follow-up
of D days counts a record when anchor date + D <= the cutoff. Random datetimes cluster on the
boundaries (equal times, one microsecond or second either side, sub-minute offsets) and
include nulls.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.criteria import Compiler, compile_definition
from pipelines.definitions import (
    All, AnyOf, Linked, Not, OnOrBefore, Within, load_definitions, registry_columns,
)
from pipelines.settings import INDICATORS_DIR

DEFINITIONS = {d.id: d for d in load_definitions(INDICATORS_DIR)}


# -- the catalogue's rules, in plain Python -----------------------------------------------------

def day_of(value):
    return value.date() if isinstance(value, dt.datetime) else value


def within(earlier, later, *, minutes=None, days=None) -> bool:
    if earlier is None or later is None:
        return False
    if days is not None:
        return 0 <= (day_of(later) - day_of(earlier)).days <= days
    return dt.timedelta(0) <= later - earlier <= dt.timedelta(minutes=minutes)


def on_or_before(event, anchor, days: int) -> bool:
    if event is None or anchor is None:
        return False
    return day_of(event) <= day_of(anchor) + dt.timedelta(days=days)


def followed(anchor, days: int, cutoff: dt.date) -> bool:
    return anchor is not None and day_of(anchor) + dt.timedelta(days=days) <= cutoff


# -- the criteria the definitions use -----------------------------------------------------------

def walk(criterion):
    yield criterion
    if isinstance(criterion, (All, AnyOf)):
        for part in (criterion.all if isinstance(criterion, All) else criterion.any):
            yield from walk(part)
    elif isinstance(criterion, Not):
        yield from walk(criterion.not_)
    elif isinstance(criterion, Linked):
        yield from walk(criterion.linked.where)


def used(kind) -> list[tuple[str, str, object]]:
    """(definition id, registry whose columns the criterion sees, criterion) of a kind."""
    out = []
    for d in DEFINITIONS.values():
        for part in [d.population, *d.denominator, *d.exclusions, d.numerator]:
            for c in walk(part) if part is not None else ():
                if isinstance(c, kind):
                    linked = isinstance(part, Linked)
                    out.append((d.id, part.linked.registry if linked else d.registry, c,
                                d.registry if linked else None))
    return out


WINDOWS = used(Within)
BOUNDS = used(OnOrBefore)


def compiler_for(registry: str, parent: str | None) -> Compiler:
    """A linked condition sees its own registry's columns plus the linking registry's."""
    compiler = Compiler(registry)
    if parent is not None:
        compiler.columns = {**registry_columns(parent), **compiler.columns}
    return compiler


def evaluate(compiler: Compiler, criterion, rows: list[dict]) -> list[bool]:
    names = sorted({k for row in rows for k in row})
    frame = pl.DataFrame({n: [row[n] for row in rows] for n in names},
                         schema={n: compiler.columns[n] for n in names})
    return frame.select(compiler.compile(criterion, "test").alias("x"))["x"].to_list()


# -- values near the boundaries -----------------------------------------------------------------

BASES = st.datetimes(min_value=dt.datetime(1999, 12, 1), max_value=dt.datetime(2031, 1, 31))
NUDGES = st.sampled_from([dt.timedelta(0), dt.timedelta(microseconds=1), dt.timedelta(seconds=1),
                          dt.timedelta(seconds=30), dt.timedelta(seconds=59),
                          dt.timedelta(minutes=1), dt.timedelta(hours=23, minutes=59)])


@st.composite
def offsets(draw, limit: dt.timedelta) -> dt.timedelta:
    """A gap between two events: the limit or zero nudged either way, or anything."""
    anchor = draw(st.sampled_from([limit, dt.timedelta(0), -limit]))
    nudge = draw(NUDGES) * draw(st.sampled_from([1, -1]))
    wide = draw(st.timedeltas(min_value=-3 * limit - dt.timedelta(days=2),
                              max_value=3 * limit + dt.timedelta(days=2)))
    return draw(st.sampled_from([anchor + nudge, wide]))


def cast(value: dt.datetime | None, dtype):
    if value is None or isinstance(dtype, pl.Datetime):
        return value
    return value.date()


@st.composite
def pairs(draw, earlier: str, later: str, columns: dict, limit: dt.timedelta, size=20):
    rows = []
    for _ in range(draw(st.integers(1, size))):
        start = draw(BASES)
        end = start + draw(offsets(limit))
        if draw(st.integers(0, 9)) == 0:
            start = None
        if draw(st.integers(0, 9)) == 0:
            end = None
        rows.append({earlier: cast(start, columns[earlier]), later: cast(end, columns[later])})
    return rows


def window_limit(w) -> tuple[dict, dt.timedelta]:
    if w.days is not None:
        return {"days": w.days}, dt.timedelta(days=w.days)
    minutes = w.minutes if w.minutes is not None else w.hours * 60
    return {"minutes": minutes}, dt.timedelta(minutes=minutes)


# -- the tests ----------------------------------------------------------------------------------

def test_the_definitions_use_every_kind_of_window():
    kinds = {("days" if c.within.days is not None else
              "hours" if c.within.hours is not None else "minutes") for _, _, c, _ in WINDOWS}
    assert kinds == {"minutes", "hours", "days"}
    assert {i for i, *_ in WINDOWS} >= {"STROKE_01", "STROKE_03", "STROKE_04", "STROKE_05",
                                        "STROKE_06", "HIP_01", "HIP_02", "HIP_05", "HIP_06",
                                        "DHRD_02", "DHRD_05"}
    assert {i for i, *_ in BOUNDS} == {"STROKE_04", "HIP_02", "HIP_03", "HIP_04"}


@pytest.mark.parametrize("indicator, registry, criterion, parent", WINDOWS,
                         ids=[f"{i}-{c.within.from_}-{c.within.to}" for i, _, c, _ in WINDOWS])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_each_window_of_the_definitions_follows_the_catalogue(indicator, registry, criterion,
                                                              parent, data):
    compiler = compiler_for(registry, parent)
    w = criterion.within
    rule, limit = window_limit(w)
    rows = data.draw(pairs(w.from_, w.to, compiler.columns, limit))
    expected = [within(r[w.from_], r[w.to], **rule) for r in rows]
    assert evaluate(compiler, criterion, rows) == expected


DATETIME_PAIRS = [("stroke", a, b) for a in ("admission_at", "thrombolysis_at")
                  for b in ("stroke_unit_at", "discharge_at")]
DATE_PAIRS = [("stroke", "admission_at", "death_date"),
              ("cardiac_rehab_municipal", "referral_received_date", "rehab_start_date"),
              ("hipfracture", "surgery_at", "reoperation_date")]


@settings(max_examples=60, deadline=None)
@given(data=st.data(), columns=st.sampled_from(DATETIME_PAIRS),
       unit=st.sampled_from(["minutes", "hours"]), n=st.integers(0, 3000))
def test_any_window_in_minutes_or_hours_is_exact(data, columns, unit, n):
    registry, earlier, later = columns
    n = n if unit == "minutes" else n % 100
    criterion = Within.model_validate({"within": {"from": earlier, "to": later, unit: n}})
    compiler = Compiler(registry)
    limit = dt.timedelta(minutes=n if unit == "minutes" else n * 60)
    rows = data.draw(pairs(earlier, later, compiler.columns, limit))
    assert evaluate(compiler, criterion, rows) == [
        within(r[earlier], r[later], minutes=limit / dt.timedelta(minutes=1)) for r in rows]


@settings(max_examples=40, deadline=None)
@given(data=st.data(), columns=st.sampled_from(DATE_PAIRS + DATETIME_PAIRS),
       n=st.integers(0, 1000))
def test_any_window_in_days_compares_dates(data, columns, n):
    registry, earlier, later = columns
    criterion = Within.model_validate({"within": {"from": earlier, "to": later, "days": n}})
    compiler = Compiler(registry)
    rows = data.draw(pairs(earlier, later, compiler.columns, dt.timedelta(days=n)))
    assert evaluate(compiler, criterion, rows) == [
        within(r[earlier], r[later], days=n) for r in rows]


@pytest.mark.parametrize("indicator, registry, criterion, parent", BOUNDS,
                         ids=[f"{i}-{c.on_or_before.event}" for i, _, c, _ in BOUNDS])
@settings(max_examples=25, deadline=None)
@given(data=st.data(), extra_days=st.integers(0, 400))
def test_on_or_before_compares_dates(indicator, registry, criterion, parent, data, extra_days):
    compiler = compiler_for(registry, parent)
    for bound in (criterion, OnOrBefore.model_validate({"on_or_before": {
            "event": criterion.on_or_before.event, "anchor": criterion.on_or_before.anchor,
            "days": extra_days}})):
        b = bound.on_or_before
        rows = data.draw(pairs(b.anchor, b.event, compiler.columns, dt.timedelta(days=b.days)))
        assert evaluate(compiler, bound, rows) == [
            on_or_before(r[b.event], r[b.anchor], b.days) for r in rows]


FOLLOWED = [d for d in DEFINITIONS.values() if d.follow_up is not None]


@pytest.mark.parametrize("definition", FOLLOWED, ids=[d.id for d in FOLLOWED])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_follow_up_counts_anchor_date_plus_days_up_to_the_cutoff(definition, data):
    """The denominator of a definition whose only other rule is its follow-up."""
    bare = definition.model_copy(update={"population": "TRUE", "denominator": [],
                                         "exclusions": []})
    compiler = Compiler(definition.registry)
    cutoff = data.draw(st.dates(dt.date(2001, 1, 1), dt.date(2030, 12, 31)))
    anchor = definition.follow_up.from_
    limit = dt.timedelta(days=definition.follow_up.days)
    rows = []
    for _ in range(data.draw(st.integers(1, 30))):
        value = dt.datetime.combine(cutoff, data.draw(st.times())) - limit \
            + data.draw(st.sampled_from([dt.timedelta(0), dt.timedelta(days=1),
                                         -dt.timedelta(days=1), dt.timedelta(seconds=1)]))
        rows.append({anchor: None if data.draw(st.integers(0, 9)) == 0
                     else cast(value, compiler.columns[anchor])})
    compiled = compile_definition(bare, compiler, cutoff)
    frame = pl.DataFrame({anchor: [r[anchor] for r in rows]},
                         schema={anchor: compiler.columns[anchor]})
    got = frame.select(compiled.denominator.alias("x"))["x"].to_list()
    assert got == [followed(r[anchor], definition.follow_up.days, cutoff) for r in rows]


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_the_median_indicator_measures_exact_minutes(data):
    definition = DEFINITIONS["STROKE_07"]
    compiler = Compiler("stroke")
    compiled = compile_definition(definition, compiler, dt.date(2030, 1, 1))
    between = definition.median_minutes
    rows = data.draw(pairs(between.from_, between.to, compiler.columns, dt.timedelta(hours=1)))
    frame = pl.DataFrame({c: [r[c] for r in rows] for c in (between.from_, between.to)},
                         schema={c: compiler.columns[c] for c in (between.from_, between.to)})
    got = frame.select(compiled.value.alias("x"))["x"].to_list()
    for row, value in zip(rows, got):
        start, end = row[between.from_], row[between.to]
        if start is None or end is None:
            assert value is None
        else:
            assert value == pytest.approx((end - start) / dt.timedelta(minutes=1), abs=1e-9)
