"""What earlier releases published, so that a later one cannot be subtracted from them.

Each release computes its suppression pattern from the data it has. A June delivery and
the annual report made in January publish the same closed months, mostly with the same
counts; if they hid different cells, a reader holding both fills the annual report's
hidden cells with the June delivery's shown ones and subtracts (an attack recovered 36
hidden counts of the sample this way). So every release is recorded in the warehouse
(``released_cells``: each cell it published, its counts, hidden or shown), and a later
release, for every cell whose counts have not changed since, hides what was hidden
(``forced``) and keeps shown what was shown (``known``: hiding it would hide nothing).
A cell whose counts changed is a new number and gets the pattern of the new data.
"""

from __future__ import annotations

import polars as pl

from pipelines.warehouse import scalar

KEYS = ["indicator_id", "period", "level", "unit_code"]
COUNTS = ["denominator", "numerator", "missing"]
HIDDEN, SHOWN = "hidden", "shown"


def earlier(con) -> pl.DataFrame:
    """Every cell some release published with the counts it had then, and whether it was
    hidden (in any release that had these counts) or shown (in every one)."""
    return pl.from_arrow(con.sql(
        f"SELECT {', '.join(KEYS + COUNTS)}, bool_or(hidden) AS hidden FROM released_cells "
        f"GROUP BY ALL").to_arrow_table())


def with_release_state(frame: pl.DataFrame, released: pl.DataFrame | None) -> pl.DataFrame:
    """``frame`` with ``_released``: 'hidden' or 'shown' where an earlier release published
    the row's cell with the same counts, null where none did."""
    if released is None or released.is_empty():
        return frame.with_columns(pl.lit(None, pl.String).alias("_released"))
    same = (frame.select(*KEYS, *COUNTS).with_row_index("_at")
            .join(released, on=KEYS + COUNTS, how="inner", nulls_equal=True)
            .group_by("_at").agg(pl.col("hidden").any()))
    state = pl.when(pl.col("hidden")).then(pl.lit(HIDDEN)).otherwise(pl.lit(SHOWN))
    return (frame.with_row_index("_at").join(same.with_columns(state.alias("_released")),
                                             on="_at", how="left")
            .sort("_at").drop("_at", "hidden"))


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
