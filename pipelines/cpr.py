"""The Danish CPR number: shape, century rule, birth date and age, as Polars expressions.

Kept vectorised so a million rows validate in well under a second.
"""

from __future__ import annotations

import polars as pl

CPR_SHAPE = r"^[0-9]{6}-?[0-9]{4}$"
# Anything that looks like a CPR number, used to keep such values out of reports.
CPR_LIKE = r"[0-9]{6}-?[0-9]{4}"


def normalised(cpr: pl.Expr) -> pl.Expr:
    """Ten digits, the optional hyphen after the sixth digit removed."""
    return cpr.str.strip_chars().str.replace(r"^([0-9]{6})-([0-9]{4})$", "${1}${2}")


def birth_date(cpr: pl.Expr) -> pl.Expr:
    """Birth date by the century rule; null when the shape or the date is not valid."""
    digits = normalised(cpr)
    well_formed = digits.str.contains(r"^[0-9]{10}$")
    yy = digits.str.slice(4, 2).cast(pl.Int32, strict=False)
    seventh = digits.str.slice(6, 1).cast(pl.Int32, strict=False)
    century = (
        pl.when(seventh <= 3).then(1900)
        .when(seventh.is_in([4, 9])).then(pl.when(yy <= 36).then(2000).otherwise(1900))
        .otherwise(pl.when(yy <= 57).then(2000).otherwise(1800))
    )
    iso = pl.concat_str(
        (century + yy).cast(pl.String).str.zfill(4),
        pl.lit("-"), digits.str.slice(2, 2), pl.lit("-"), digits.str.slice(0, 2),
    )
    return pl.when(well_formed).then(iso.str.to_date("%Y-%m-%d", strict=False))


def is_valid(cpr: pl.Expr) -> pl.Expr:
    return cpr.str.strip_chars().str.contains(CPR_SHAPE) & birth_date(cpr).is_not_null()


def age_on(born: pl.Expr, on: pl.Expr) -> pl.Expr:
    """Full years on a date; a 29 February birthday counts from 1 March in other years."""
    not_yet = (on.dt.month() * 100 + on.dt.day()) < (born.dt.month() * 100 + born.dt.day())
    return (on.dt.year() - born.dt.year() - not_yet.cast(pl.Int32)).cast(pl.Int16)
