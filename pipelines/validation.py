"""Split an extract into rows that load and rows that go to quarantine, and say why.

Pandera runs every contract rule at once (``lazy=True``); its failure cases give
the row position, column and rule. The value shown is the delivered text,
except that anything shaped like a CPR number is never shown.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandera.errors
import pandera.polars as pa
import polars as pl
from pandera.constants import CHECK_OUTPUT_KEY

from pipelines import cpr as cpr_rules
from pipelines import privacy
from pipelines.extract_reader import ROW_NUMBER, RawExtract
from schemas.columns import ExtractSchema, ValidationContext, raw
from schemas.declarations import LEVELS

HIDDEN_CPR = privacy.HIDDEN_CPR
# The unit columns (one per declared level) let each reporting unit get its own rejected rows.
UNIT_COLUMNS = [level.code for level in LEVELS.units]
QUARANTINE_COLUMNS = {
    "row_number": pl.Int64, "column_name": pl.String, "rule": pl.String, "value": pl.String,
    "record_id": pl.String, **{c: pl.String for c in UNIT_COLUMNS},
}


@dataclass
class ValidatedExtract:
    valid: pl.DataFrame  # typed rows that pass every rule, with __row_number (and the birth
    # date, for an extract with a CPR number)
    quarantine: pl.DataFrame  # one row per broken rule (QUARANTINE_COLUMNS)
    rows_quarantined: int


def shown(value: pl.Expr, column: pl.Expr) -> pl.Expr:
    """The offending value as a report may show it: the cpr column never, and anything
    shaped like a CPR number in other columns masked by the privacy gate."""
    hide = value.is_not_null() & (column == "cpr")
    return pl.when(hide).then(pl.lit(HIDDEN_CPR)).otherwise(privacy.masked(value))


FAILURES_SCHEMA = {"index": pl.Int64, "column": pl.String, "check": pl.String}


def _schema_level(problems: pl.DataFrame, file_name: str) -> RuntimeError:
    return RuntimeError(f"schema-level validation failure in {file_name}: {problems.to_dicts()}")


def pandera_failures(typed: pl.DataFrame, contract: pa.DataFrameSchema, file_name: str
                     ) -> pl.DataFrame:
    """Pandera's own run of the schema (a pass per check): the reference the one-pass
    evaluation is tested against, and the way for checks it does not handle."""
    try:
        contract.validate(typed, lazy=True)
        return pl.DataFrame(schema=FAILURES_SCHEMA)
    except pandera.errors.SchemaErrors as errors:
        failures = errors.failure_cases.select(pl.col("index").cast(pl.Int64), "column", "check")
    if failures["index"].null_count():
        raise _schema_level(failures.filter(pl.col("index").is_null()), file_name)
    return failures.unique().sort("index", "column", "check")


_SHAPES_PASSED: set[tuple] = set()


def check_failures(typed: pl.DataFrame, contract: pa.DataFrameSchema, file_name: str
                   ) -> pl.DataFrame:
    """(row position, column, rule) for every check a row fails: Pandera's schema, its checks
    evaluated together in one parallel pass instead of a collect and a failure-case frame
    per check. Columns and types are Pandera's to judge (on the empty frame, where no data
    check costs anything); each check is applied by Pandera's own check backend, and its
    result read as Pandera reads it (null fails unless ``ignore_na``)."""
    from pandera.api.polars.types import PolarsData
    from pandera.backends.polars.checks import PolarsCheckBackend

    shape = (tuple((n, str(c.dtype), c.nullable, c.required)
                   for n, c in contract.columns.items()),
             contract.strict, tuple(typed.schema.items()))
    if shape not in _SHAPES_PASSED:  # names and dtypes, once per schema and frame shape
        from pandera.config import ValidationDepth, config_context

        # Schema level only: an empty frame has no data to check, and Pandera's walk over every
        # check costs ~20 ms per registry even so.
        with config_context(validation_depth=ValidationDepth.SCHEMA_ONLY):
            pandera_failures(typed.clear(), contract, file_name)
        _SHAPES_PASSED.add(shape)
    checks = [(name, check) for name, column in contract.columns.items()
              for check in column.checks]
    if any(c.groupby is not None or c.raise_warning or c.n_failure_cases is not None
           for _, c in checks):
        return pandera_failures(typed, contract, file_name)
    frame = typed.lazy()
    outputs, labels = [], []
    for i, (name, check) in enumerate(checks):
        out = PolarsCheckBackend(check).apply(PolarsData(frame, name))
        if isinstance(out, bool):  # a check of the whole column: a schema-level failure
            if not out:
                raise _schema_level(pl.DataFrame({"column": [name], "check": [str(check)]}),
                                    file_name)
            continue
        flag = pl.col(CHECK_OUTPUT_KEY)
        flag = (flag | flag.is_null()) if check.ignore_na else flag.fill_null(False)
        outputs.append(out.select(flag.alias(f"c{i}")))
        labels.append((f"c{i}", name, check.error or check.name or str(check)))
    if not outputs:
        return pl.DataFrame(schema=FAILURES_SCHEMA)
    passed = pl.concat(outputs, how="horizontal").with_row_index("index")
    failing = passed.filter(~pl.all_horizontal([pl.col(c) for c, _, _ in labels])).collect()
    names = pl.DataFrame({"flag": [c for c, _, _ in labels], "column": [n for _, n, _ in labels],
                          "check": [r for _, _, r in labels]})
    return (failing.unpivot(index="index", variable_name="flag", value_name="passed")
            .filter(~pl.col("passed"))
            .join(names, on="flag")
            .select(pl.col("index").cast(pl.Int64), "column", "check")
            .unique().sort("index", "column", "check"))


def validate(extract: RawExtract, schema: ExtractSchema, context: ValidationContext
             ) -> ValidatedExtract:
    typed = schema.typed(extract.rows).with_columns(extract.rows[ROW_NUMBER])
    failures = check_failures(typed, schema.pandera(context), extract.path.name)

    # The row's record_id and its unit at each level, under the level's code column name.
    unit_columns = {c.name: c.name for c in schema.columns if c.name == "record_id"}
    unit_columns |= {c.name: LEVELS.levels[c.reference].code for c in schema.columns
                     if c.reference in LEVELS.levels}
    failing = typed.with_row_index("index").filter(
        pl.col("index").cast(pl.Int64).is_in(failures["index"].unique().implode())
    ).with_columns(pl.col("index").cast(pl.Int64))
    context_columns = failing.select(
        "index", ROW_NUMBER, *[pl.col(raw(c)).alias(q) for c, q in unit_columns.items()])
    value_lookup = failing.select("index", *[raw(c) for c in schema.names]).unpivot(
        index="index", variable_name="column", value_name="value").with_columns(
        pl.col("column").str.strip_prefix("__raw__"))
    broken = (
        failures.join(value_lookup, on=["index", "column"], how="left")
        .join(context_columns, on="index", how="left")
        .select(
            pl.col(ROW_NUMBER).alias("row_number"),
            pl.col("column").alias("column_name"),
            pl.col("check").alias("rule"),
            shown(pl.col("value"), pl.col("column")).alias("value"),
            *[shown(pl.col(q), pl.lit(q)).alias(q) for q in unit_columns.values()],
        )
    )
    # Lines the reader could not split: the value says where and what, never the line itself.
    ragged = extract.unparseable.select(
        "row_number", pl.lit("unparseable_row").alias("rule"),
        pl.concat_str(pl.lit("line "), pl.col("line_number").cast(pl.String), pl.lit(": "),
                      "problem").alias("value"))
    quarantine = pl.concat(
        [broken.with_columns(pl.col(c).cast(t) for c, t in QUARANTINE_COLUMNS.items()
                             if c in broken.columns),
         ragged], how="diagonal_relaxed",
    ).select([pl.col(c).cast(t) if c in ragged.columns or c in broken.columns
              else pl.lit(None, t).alias(c) for c, t in QUARANTINE_COLUMNS.items()]
    ).sort("row_number", "column_name", nulls_last=False)

    bad_positions = failures["index"].unique()
    # The stored columns only, then the rows: the raw text columns are never copied.
    valid = typed.select([ROW_NUMBER, *schema.names,
                          *[c for c in (cpr_rules.BIRTH_DATE,) if c in typed.columns]])
    if bad_positions.len():
        valid = valid.filter(
            ~pl.int_range(pl.len(), dtype=pl.Int64).is_in(bad_positions.implode()))
    return ValidatedExtract(valid=valid, quarantine=quarantine,
                            rows_quarantined=bad_positions.len() + extract.unparseable.height)
