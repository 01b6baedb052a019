"""What earlier releases published, so that a later one cannot be subtracted from them.

Each release computes its suppression pattern from the data it has. A June delivery and
the annual report made in January publish the same closed months, mostly with the same
counts; if they hid different cells, a reader holding both fills the annual report's
hidden cells with the June delivery's shown ones and subtracts (an attack recovered 36
hidden counts of the sample this way). So every release is recorded in the warehouse
(``released_cells``: each cell it published, its counts, hidden or shown), and a later
release hides every cell an earlier one hid, whatever its counts now (``forced``: a
hidden 4 that became a 5 would otherwise be the difference of two published totals), and
keeps shown a cell an earlier one showed with the same denominator (``known``: hiding it
would hide nothing). Other cells get the pattern of the new data.
"""

from __future__ import annotations

import polars as pl

from pipelines.warehouse import scalar

KEYS = ["indicator_id", "period", "level", "unit_code"]
COUNTS = ["denominator", "numerator", "missing"]
HIDDEN, SHOWN = "hidden", "shown"


def cell_counts() -> pl.Expr:
    """A cell's counts as one list: its denominator, numerator and denominator less missing
    (a null where the indicator has none); what two releases or two linked indicators
    compare."""
    return pl.concat_list("denominator", "numerator", pl.col("denominator") - pl.col("missing"))


def earlier(con) -> pl.DataFrame:
    """Every cell some release published, with the counts it had then, and whether some
    release hid it with those counts."""
    return pl.from_arrow(con.sql(
        f"SELECT {', '.join(KEYS + COUNTS)}, bool_or(hidden) AS hidden "
        f"FROM released_cells GROUP BY ALL").to_arrow_table())


def with_release_state(frame: pl.DataFrame, released: pl.DataFrame | None) -> pl.DataFrame:
    """``frame`` with ``_released``: 'hidden' where an earlier release hid the row's cell
    (with any counts), 'shown' where one showed it with the row's denominator and none hid
    it, null otherwise; and ``_shown_counts``: the counts earlier releases showed for the
    cell (denominator, numerator, denominator less missing), whatever they are now."""
    if released is None or released.is_empty():
        return frame.with_columns(pl.lit(None, pl.String).alias("_released"),
                                  pl.lit(None, pl.List(pl.Int64)).alias("_shown_counts"))
    hidden = released.filter(pl.col("hidden")).select(KEYS).unique().with_columns(
        pl.lit(HIDDEN).alias("_hidden"))
    shown = released.filter(~pl.col("hidden"))
    same = shown.select(*KEYS, "denominator").unique().with_columns(pl.lit(SHOWN).alias("_shown"))
    counts = (shown.select(*KEYS, cell_counts().alias("_v"))
              .explode("_v").drop_nulls("_v").group_by(KEYS)
              .agg(pl.col("_v").unique().cast(pl.Int64).alias("_shown_counts")))
    return (frame.with_row_index("_at")
            .join(hidden, on=KEYS, how="left", nulls_equal=True)
            .join(same, on=[*KEYS, "denominator"], how="left", nulls_equal=True)
            .join(counts, on=KEYS, how="left", nulls_equal=True)
            .sort("_at")
            .with_columns(pl.coalesce("_hidden", "_shown").alias("_released"))
            .drop("_at", "_hidden", "_shown"))


def record(con, release: str, results: pl.DataFrame, published: pl.DataFrame) -> int:
    """Record the cells ``published`` shows or hides with their counts in ``results``;
    returns how many were new. Rebuilding a release (same name, same counts) adds nothing."""
    cells = (published.select(*KEYS, pl.col("suppression").is_not_null().alias("hidden"))
             .join(results.select(*KEYS, *COUNTS), on=KEYS, how="left")
             .select(pl.lit(release).alias("release"), *KEYS, *COUNTS, "hidden").unique())
    before = scalar(con, "SELECT count(*) FROM released_cells")
    con.register("_release", cells.to_arrow())
    try:
        con.execute("INSERT INTO released_cells SELECT * FROM _release "
                    "EXCEPT SELECT * FROM released_cells")
    finally:
        con.unregister("_release")
    return scalar(con, "SELECT count(*) FROM released_cells") - before
