"""Why a unit's record does not meet an indicator, in words ("indlagt på apopleksiafsnit
efter 31 timer", "tidspunkt for trombolyse mangler").

For a higher-is-better indicator the records listed are those outside the
numerator; for a lower-is-better one (mortality, reoperation) those inside it,
the events a unit reviews. A time window (``within``) is measured on the record
itself; any other numerator says the indicator's own sentence; an empty
``missing_field`` says what is missing. The words come from the message
catalogue (``indicators.<id>.not_met`` and ``.missing``).
"""

from __future__ import annotations

import polars as pl

from pipelines.definitions import Definition, Within
from reports.labels import TEXT, indicator_words, number


def listed(records: pl.DataFrame, definitions: list[Definition]) -> pl.DataFrame:
    """The records a unit should look at: not meeting a higher-is-better indicator,
    meeting (the event) a lower-is-better one."""
    if records.is_empty():
        return records
    lower = [d.id for d in definitions if d.standard.lower_is_better]
    return records.filter(pl.when(pl.col("indicator_id").is_in(lower))
                          .then(pl.col("meets_numerator"))
                          .otherwise(~pl.col("meets_numerator")))


def elapsed(window: Within, start, end, language: str) -> str | None:
    w = TEXT[language]["words"]
    if start is None or end is None:
        return None
    c = window.within
    if c.days is not None:  # days count on dates, as the engine counts them
        as_date = lambda v: v.date() if hasattr(v, "hour") else v  # noqa: E731
        return f"{number((as_date(end) - as_date(start)).days, language, 0)} {w['days']}"
    seconds = (end - start).total_seconds()
    if c.minutes is not None:
        return f"{number(seconds / 60, language, 0)} {w['minutes']}"
    if c.hours is not None:
        hours = seconds / 3600
        return f"{number(hours, language, 0 if hours == int(hours) else 1)} {w['hours']}"
    raise ValueError(window)


def reasons(con, definitions: list[Definition], records: pl.DataFrame,
            language: str) -> pl.DataFrame:
    """``records`` (indicator_id, record_id, ...) with a ``reason`` column."""
    if records.is_empty():
        return records.with_columns(pl.lit(None, pl.String).alias("reason"))
    by_id = {d.id: d for d in definitions}
    parts = []
    for (indicator,), rows in records.group_by(["indicator_id"], maintain_order=True):
        d = by_id[indicator]
        words = indicator_words(indicator, language)
        window = d.numerator if isinstance(d.numerator, Within) else None
        columns = []
        if window is not None:
            columns += [window.within.from_, window.within.to]
        if d.missing_field:
            columns.append(d.missing_field)
        columns = list(dict.fromkeys(columns))
        if columns:
            ids = rows.select("record_id").unique()  # noqa: F841 - read by DuckDB
            values = con.sql(
                f"SELECT record_id, {', '.join(columns)} FROM {d.registry} "
                "WHERE record_id IN (SELECT record_id FROM ids)").pl().unique("record_id")
            rows = rows.join(values, on="record_id", how="left", suffix="_value")
        texts = []
        for r in rows.iter_rows(named=True):
            if d.missing_field and r.get(d.missing_field) is None:
                texts.append(words["missing"])
            elif window is not None:
                length = elapsed(window, r.get(window.within.from_), r.get(window.within.to),
                                 language)
                texts.append(words["missing"] if length is None
                             else words["not_met"].format(elapsed=length))
            else:
                texts.append(words["not_met"].format(elapsed=""))
        parts.append(rows.select(records.columns).with_columns(
            pl.Series("reason", texts, dtype=pl.String)))
    return pl.concat(parts)
