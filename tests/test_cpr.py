"""CPR shape, date and century rule; age on the period date."""

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings, strategies as st

from pipelines import cpr


def birth(value: str):
    return pl.select(cpr.birth_date(pl.lit(value))).item()


@pytest.mark.parametrize("value, born", [
    ("0101801234", dt.date(1980, 1, 1)),      # 7th digit 1 -> 19YY
    ("010180-1234", dt.date(1980, 1, 1)),     # hyphen ignored
    ("0101303234", dt.date(1930, 1, 1)),      # 3 -> 19YY
    ("0101364234", dt.date(2036, 1, 1)),      # 4, YY <= 36 -> 20YY
    ("0101374234", dt.date(1937, 1, 1)),      # 4, YY > 36 -> 19YY
    ("0101369234", dt.date(2036, 1, 1)),      # 9, YY <= 36 -> 20YY
    ("0101379234", dt.date(1937, 1, 1)),      # 9, YY > 36 -> 19YY
    ("0101575234", dt.date(2057, 1, 1)),      # 5, YY <= 57 -> 20YY
    ("0101588234", dt.date(1858, 1, 1)),      # 8, YY > 57 -> 18YY
    ("2902004123", dt.date(2000, 2, 29)),     # leap day in a leap year
])
def test_century_rule(value, born):
    assert birth(value) == born
    assert pl.select(cpr.is_valid(pl.lit(value))).item()


@pytest.mark.parametrize("value", [
    "2902014123",   # 29 Feb 2001 does not exist
    "3204801234",   # day 32
    "0113801234",   # month 13
    "01018012345",  # eleven digits
    "0101-801234",  # hyphen in the wrong place
    "01018O1234",   # a letter
    "",
])
def test_invalid(value):
    assert not pl.select(cpr.is_valid(pl.lit(value))).item()


@pytest.mark.parametrize("born, on, age", [
    (dt.date(1950, 5, 17), dt.date(2024, 5, 16), 73),
    (dt.date(1950, 5, 17), dt.date(2024, 5, 17), 74),
    (dt.date(2000, 2, 29), dt.date(2023, 2, 28), 22),   # not yet: turns 23 on 1 March
    (dt.date(2000, 2, 29), dt.date(2023, 3, 1), 23),
    (dt.date(2000, 2, 29), dt.date(2024, 2, 29), 24),
    (dt.date(2006, 3, 10), dt.date(2024, 3, 10), 18),   # 18th birthday on the day
    (dt.date(2006, 3, 11), dt.date(2024, 3, 10), 17),
    (dt.date(1959, 7, 10), dt.date(2024, 2, 2), 64),    # Int8 overflow once said 65
    (dt.date(1959, 12, 31), dt.date(2024, 12, 30), 64),
    (dt.date(1959, 12, 31), dt.date(2024, 12, 31), 65),
])
def test_age_in_full_years(born, on, age):
    assert pl.select(cpr.age_on(pl.lit(born), pl.lit(on))).item() == age


def reference_birth_date(value: str) -> dt.date | None:
    """The century rule written plainly with Python's calendar, to check the vectorised one."""
    text = value.strip()
    if len(text) == 11 and text[6] == "-":
        text = text[:6] + text[7:]
    if len(text) != 10 or not all("0" <= c <= "9" for c in text):
        return None
    day, month, yy, seventh = int(text[:2]), int(text[2:4]), int(text[4:6]), int(text[6])
    if seventh <= 3:
        century = 1900
    elif seventh in (4, 9):
        century = 2000 if yy <= 36 else 1900
    else:
        century = 2000 if yy <= 57 else 1800
    try:
        return dt.date(century + yy, month, day)
    except ValueError:
        return None


cpr_like = st.builds(
    lambda d, m, y, rest, hyphen, pad: f"{pad}{d:02d}{m:02d}{y:02d}{'-' if hyphen else ''}{rest:04d}{pad}",
    st.integers(0, 35), st.integers(0, 14), st.integers(0, 99), st.integers(0, 9999),
    st.booleans(), st.sampled_from(["", " "]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(cpr_like, st.text(alphabet="0123456789- xO\t", max_size=12)), min_size=1, max_size=50))
def test_birth_date_matches_the_calendar(values):
    got = pl.DataFrame({"cpr": values}, schema={"cpr": pl.String}).select(
        cpr.birth_date(pl.col("cpr"))).to_series().to_list()
    assert got == [reference_birth_date(v) for v in values]


def test_1900_is_not_a_leap_year():
    assert birth("2902001234") is None        # 29 Feb 1900 (7th digit 1)
    assert birth("2902004234") == dt.date(2000, 2, 29)


def python_age(born: dt.date, on: dt.date) -> int:
    """Full years with Python's own arithmetic: a 29 February birthday is 1 March in
    non-leap years."""
    birthday = (born.month, born.day)
    if birthday == (2, 29):
        try:
            dt.date(on.year, 2, 29)
        except ValueError:
            birthday = (3, 1)
    return on.year - born.year - ((on.month, on.day) < birthday)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.dates(dt.date(1858, 1, 1), dt.date(2036, 12, 31)),
                          st.dates(dt.date(1900, 1, 1), dt.date(2040, 12, 31))),
                min_size=1, max_size=60))
def test_age_matches_python_arithmetic(pairs):
    """In a frame, as ingest computes it, for arbitrary birth and period dates."""
    frame = pl.DataFrame({"born": [b for b, _ in pairs], "on": [o for _, o in pairs]})
    got = frame.select(cpr.age_on(pl.col("born"), pl.col("on"))).to_series().to_list()
    assert got == [python_age(b, o) for b, o in pairs]


@pytest.mark.parametrize("leap_born", [dt.date(1960, 2, 29), dt.date(2000, 2, 29)])
def test_leap_day_birthday_in_every_later_year(leap_born):
    days = [dt.date(y, m, d) for y in range(leap_born.year, leap_born.year + 9)
            for m, d in ((2, 28), (3, 1)) if dt.date(y, m, d) >= leap_born]
    frame = pl.DataFrame({"born": [leap_born] * len(days), "on": days})
    got = frame.select(cpr.age_on(pl.col("born"), pl.col("on"))).to_series().to_list()
    assert got == [python_age(leap_born, d) for d in days]
