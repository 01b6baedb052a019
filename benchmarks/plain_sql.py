"""The catalogue as a plain DuckDB-SQL + statsmodels script: the baseline ``kvalitet run`` is
timed against (issue #16, benchmarks/e2e.py) and a second, independent count of its results
(tests/test_plain_baseline.py).

    KVALITET_PSEUDONYM_KEY=... python -m benchmarks.plain_sql --input INPUT --output OUT
                                                              [--cutoff YYYY-MM-DD]

What a competent registry analyst writes as one script, without Kvalitet's machinery: DuckDB
reads every extract (delimiter from the header line; UTF-8, else latin-1), types the declared
columns and drops the rows whose values do not parse (no quarantine, no other contract rule),
replaces the CPR number by its HMAC-SHA256 and the age on the period date, keeps the latest
extract's version of each record, then counts every indicator at every level and period in
SQL (benchmarks/sql_baseline.py's rendering of the definitions, all levels in one pass per
indicator). STROKE_06 and HIP_05 get a statsmodels Binomial GLM per year fitted on the
record-level design. Results (Wilson intervals, O/E, adjusted proportions; no smoothing, no
small-number rule) go to one Parquet or CSV file. Only definitions and column lists come from
the project: no ingest, engine, steps or Polars compiler.
"""

from __future__ import annotations

import argparse
import codecs
import datetime as dt
import hashlib
import os
import re
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from benchmarks.sql_baseline import _unit, completeness_flags_sql, flags_sql
from pipelines.definitions import Definition, definition_files, read_definition_file
from schemas.declarations import LEVELS, REGISTRIES

FILE_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})\.(csv|parquet)$", re.IGNORECASE)
Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile


# -- reading ----------------------------------------------------------------------------------
def _quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _encoding(path: Path) -> str:
    """UTF-8 if the whole file decodes, else latin-1. DuckDB's ignore_errors would drop the
    lines with a cp1252 byte without a word, so the script checks first."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as handle:
        try:
            while chunk := handle.read(1 << 24):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "latin-1"
    return "utf-8"


def _csv(path: Path) -> tuple[str, list[str]]:
    """read_csv of a delimited file, all text, and its header's column names."""
    with open(path, "rb") as handle:
        head = handle.readline().removeprefix(b"\xef\xbb\xbf").rstrip(b"\r\n")
    delimiter = ";" if head.count(b";") > head.count(b",") else ","
    encoding = _encoding(path)
    names = [n.strip().strip('"') for n in head.decode(encoding).split(delimiter)]
    return (f"read_csv({_quoted(path)}, header=true, all_varchar=true, delim='{delimiter}', "
            f"quote='\"', encoding='{encoding}', null_padding=true, ignore_errors=true)", names)


def _source(con, path: Path) -> tuple[str, dict[str, str]]:
    """A file as a SQL source and its columns with their DuckDB types."""
    if path.suffix.lower() == ".parquet":
        source = f"read_parquet({_quoted(path)})"
        return source, {n: t for n, t, *_ in con.sql(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    source, names = _csv(path)
    return source, {n: "VARCHAR" for n in names}


def _text(name: str, kind: str) -> str:
    """A file column as the script works with it: trimmed text (empty = missing), or the
    Parquet value itself, zoned timestamps in Danish local time."""
    column = f'"{name}"'
    if kind == "VARCHAR":
        return f"NULLIF(trim({column}), '')"
    if kind.startswith("TIMESTAMP WITH TIME ZONE"):
        return f"timezone('Europe/Copenhagen', {column})"
    return column


def _typed(value: str, column, level=None) -> str:
    """A declared column's typed value from its text (null where it does not parse)."""
    kind = column.type
    if kind == "unit":
        kind = {"integer": "int", "code": "code", "text": "text"}[level.code_type]
    return {
        "record_id": f"CAST({value} AS VARCHAR)", "link": f"CAST({value} AS VARCHAR)",
        "text": f"CAST({value} AS VARCHAR)",
        "code": f"upper(CAST({value} AS VARCHAR))",
        "answer": f"coalesce(lower(CAST({value} AS VARCHAR)), 'uoplyst')",
        "integer": f"TRY_CAST({value} AS BIGINT)", "int": f"TRY_CAST({value} AS INTEGER)",
        "date": f"TRY_CAST({value} AS DATE)", "datetime": f"TRY_CAST({value} AS TIMESTAMP)",
    }[kind]


def _pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC's inner and outer key pads for SHA-256 (RFC 2104)."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def extract_select(registry, columns: dict[str, str], source: str, extract_date: dt.date,
                   order: int) -> str | None:
    """SELECT of one extract's typed rows (pseudonym and age instead of the CPR number); None
    if a required column is absent. A row is dropped when a value does not parse."""
    units = {c: LEVELS.levels[lv] for lv, c in registry.units.items()}
    texts, typed, keep, out = [], [], ["born IS NOT NULL"], []
    period = f"CAST({registry.period} AS DATE)"
    for name, column in registry.columns.items():
        if name not in columns:
            if column.required and column.type != "answer":
                return None
            texts.append(f"NULL AS {name}")
        else:
            texts.append(f"{_text(name, columns[name])} AS {name}")
        if column.type == "cpr":
            typed.append(f"CASE WHEN regexp_full_match({name}, '[0-9]{{6}}-?[0-9]{{4}}') "
                         f"THEN replace({name}, '-', '') END AS cpr10")
            out += ["sha256($outer || unhex(sha256($inner || cpr10::BLOB))) AS pseudonym",
                    f"year({period}) - year(born) - CASE WHEN month({period}) * 100 + "
                    f"day({period}) < month(born) * 100 + day(born) THEN 1 ELSE 0 END AS age"]
            continue
        typed.append(f"{_typed(name, column, units.get(name))} AS {name}")
        out.append(name)
        if column.required and column.type != "answer":
            keep.append(f"{name} IS NOT NULL")
        elif column.type != "answer":
            typed.append(f"{name} AS raw__{name}")
            keep.append(f"(raw__{name} IS NULL OR {name} IS NOT NULL)")
    century = ("CASE WHEN substr(cpr10, 7, 1) <= '3' THEN 1900 "
               "WHEN substr(cpr10, 7, 1) IN ('4', '9') THEN "
               "CASE WHEN substr(cpr10, 5, 2) <= '36' THEN 2000 ELSE 1900 END "
               "ELSE CASE WHEN substr(cpr10, 5, 2) <= '57' THEN 2000 ELSE 1800 END END")
    born = (f"CAST(try_strptime(substr(cpr10, 1, 4) || CAST({century} + "
            "CAST(substr(cpr10, 5, 2) AS INTEGER) AS VARCHAR), '%d%m%Y') AS DATE)")
    return f"""
        SELECT {", ".join(out)}, DATE '{extract_date}' AS extract_date, {order} AS file_order
        FROM (SELECT *, {born} AS born
              FROM (SELECT {", ".join(typed)}
                    FROM (SELECT {", ".join(texts)} FROM {source})))
        WHERE {" AND ".join(keep)}"""


def load_registry(con, registry, files: list[tuple[Path, dt.date]], key: bytes) -> int:
    """Every extract of a registry into ``<name>_rows``, then ``<name>``: the current records
    (the latest extract's version of each record_id; within a file the first row). LPR rows
    have no record_id: all of them count."""
    inner, outer = _pads(key)
    name = registry.name
    con.execute(f"DROP TABLE IF EXISTS {name}_rows")
    for order, (path, extract_date) in enumerate(files):
        source, columns = _source(con, path)
        select = extract_select(registry, columns, source, extract_date, order)
        if select is None:
            print(f"{path.name}: a required column is missing; file skipped")
            continue
        verb = (f"INSERT INTO {name}_rows BY NAME" if order and _exists(con, f"{name}_rows")
                else f"CREATE TABLE {name}_rows AS")
        con.execute(f"{verb} {select}", {"inner": inner, "outer": outer})
    if not _exists(con, f"{name}_rows"):
        return 0
    if registry.has_record_id:
        con.execute(f"""
            CREATE OR REPLACE TABLE {name} AS
            SELECT * EXCLUDE (file_order) FROM {name}_rows
            QUALIFY row_number() OVER (PARTITION BY record_id
                                       ORDER BY extract_date DESC, file_order DESC, rowid) = 1""")
        con.execute(f"DROP TABLE {name}_rows")
    else:
        con.execute(f"ALTER TABLE {name}_rows RENAME TO {name}")
    return con.sql(f"SELECT count(*) FROM {name}").fetchall()[0][0]


def _exists(con, table: str) -> bool:
    return bool(con.sql("SELECT 1 FROM duckdb_tables() WHERE table_name = $t",
                        params={"t": table}).fetchall())


def load_reference(con, folder: Path) -> None:
    """regions and every level's table (clinics only when present), codes typed as in the
    warehouse: hospital codes upper case, municipality codes whole numbers, clinic codes text."""
    def read(table: str, columns: dict[str, str]) -> None:
        path = folder / f"{table}.csv"
        if not path.exists():
            return
        source, _ = _csv(path)
        con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT "
                    + ", ".join(f"{expr.format(f'NULLIF(trim({c}), {chr(39) * 2})')} AS {c}"
                                for c, expr in columns.items()) + f" FROM {source}")

    as_type = {"integer": "TRY_CAST({} AS INTEGER)", "code": "upper({})", "text": "{}"}
    read(LEVELS.region.table, {LEVELS.region.code: as_type["integer"],
                               LEVELS.region.name: "{}"})
    for level in LEVELS.units:
        up = ({level.region: as_type["integer"]} if level.region else
              {LEVELS.levels[level.via].code: as_type[LEVELS.levels[level.via].code_type]})
        read(level.table, {level.code: as_type[level.code_type], level.name: "{}", **up})


# -- indicators -------------------------------------------------------------------------------
def read_definitions(folder: Path) -> list[Definition]:
    """The definition files as written (read and typed, not compiled)."""
    return [Definition.model_validate(read_definition_file(p)) for p in definition_files(folder)]


def case_mix_sql(d: Definition) -> list[str]:
    """Each case-mix variable as the index of the record's category (first that fits)."""
    out = []
    for v in d.risk_adjustment.case_mix:
        whens = []
        for i, c in enumerate(v.categories):
            if c.missing:
                test = f"{v.column} IS NULL"
            elif c.values is not None:
                test = f"CAST({v.column} AS VARCHAR) IN ({', '.join(repr(x) for x in c.values)})"
            else:
                test = " AND ".join(([f"{v.column} >= {c.min}"] if c.min is not None else [])
                                    + ([f"{v.column} <= {c.max}"] if c.max is not None else []))
            whens.append(f"WHEN {test} THEN {i}")
        out.append(f"CASE {' '.join(whens)} END AS cm__{v.name}")
    return out


def counted_sql(d: Definition, cutoff: dt.date) -> str:
    """The indicator's denominator records: flags, period and the unit at every level."""
    registry = "lpr" if d.completeness else d.registry
    flags = completeness_flags_sql(d, cutoff) if d.completeness else flags_sql(d, cutoff)
    units = [f"{_unit(level, registry)} AS u__{level}" for level in d.levels]
    extra = case_mix_sql(d) if d.risk_adjustment else []
    return f"""
        SELECT num, mis, value, strftime(period_date, '%Y-%m') AS month,
               strftime(period_date, '%Y') AS year, {", ".join(units + extra)}
        FROM ({flags}) WHERE den"""


def aggregate_sql(d: Definition, records: str, expected: bool) -> str:
    """Counts per level, unit and period (month and year) in one pass over the records."""
    each = " UNION ALL ".join(
        f"SELECT '{level}' AS level, u__{level} AS unit_code, month, year, num, mis, value"
        + (", p" if expected else "") + f" FROM {records}" for level in d.levels)
    median = "median(value)" if d.median_minutes else "NULL::DOUBLE"
    numerator = "NULL::BIGINT" if d.median_minutes else "count(*) FILTER (WHERE num)"
    missing = "0" if d.median_minutes else "count(*) FILTER (WHERE mis)"
    return f"""
        SELECT '{d.id}' AS indicator_id,
               CASE WHEN month IS NULL THEN 'year' ELSE 'month' END AS period_type,
               coalesce(month, year) AS period, level, unit_code,
               {numerator} AS numerator, count(*) AS denominator, {missing} AS missing,
               {median} AS median, {"sum(p)" if expected else "NULL::DOUBLE"} AS expected
        FROM ({each}) WHERE unit_code IS NOT NULL
        GROUP BY GROUPING SETS ((level, unit_code, month), (level, unit_code, year))"""


def predicted(d: Definition, records: pa.Table) -> np.ndarray:
    """Each record's predicted probability from its year's logistic model (statsmodels GLM,
    Binomial) on the record-level design: intercept and a dummy per category present in the
    year but the first; NaN for records of a year without events or outside every category."""
    from statsmodels.genmod import families
    from statsmodels.genmod.generalized_linear_model import GLM

    names = [f"cm__{v.name}" for v in d.risk_adjustment.case_mix]
    years = records["year"].to_numpy(zero_copy_only=False)
    outcome = records["num"].to_numpy(zero_copy_only=False).astype(float)
    codes = np.column_stack([records[n].to_numpy(zero_copy_only=False).astype(float)
                             for n in names])
    p = np.full(len(years), np.nan)
    for year in np.unique(years):
        rows = (years == year) & ~np.isnan(codes).any(axis=1)
        if not outcome[rows].any():
            continue
        columns = [np.ones(rows.sum())]
        for j in range(len(names)):
            present = np.unique(codes[rows, j])
            columns += [codes[rows, j] == c for c in present[1:]]
        X = np.column_stack(columns).astype(float)
        fit = GLM(outcome[rows], X, family=families.Binomial()).fit()
        p[rows] = fit.predict(X)
    return p


def indicator(con, d: Definition, cutoff: dt.date) -> None:
    """One indicator's rows into ``results``."""
    if not d.risk_adjustment:
        con.execute(f"INSERT INTO results WITH r AS ({counted_sql(d, cutoff)}) "
                    f"{aggregate_sql(d, 'r', expected=False)}")
        return
    records = con.sql(counted_sql(d, cutoff)).to_arrow_table()
    p = predicted(d, records)
    with_p = records.append_column("p", pa.array(p, mask=np.isnan(p)))  # noqa: F841
    con.execute(f"INSERT INTO results {aggregate_sql(d, 'with_p', expected=True)}")


def poisson_limits(counts: np.ndarray) -> pa.Table:
    """Exact (Garwood) 95 % interval of each observed count."""
    from scipy import stats

    counts = counts.astype(float)
    low = np.where(counts > 0, stats.chi2.ppf(0.025, 2 * counts) / 2, 0.0)
    high = stats.chi2.ppf(0.975, 2 * (counts + 1)) / 2
    return pa.table({"observed": counts.astype(np.int64), "low": low, "high": high})


def finish_sql(definitions: list[Definition], tables: set[str]) -> str:
    """Names, proportion, Wilson interval, standard, and O/E with the adjusted proportion."""
    standards = ", ".join(f"('{d.id}', {d.standard.value}::DOUBLE, {d.standard.lower_is_better})"
                          for d in definitions)
    names = [f"SELECT 'national' AS level, '{LEVELS.national.code}' AS unit_code, "
             f"'{LEVELS.national.name}' AS unit_name",
             f"SELECT 'region', CAST({LEVELS.region.code} AS VARCHAR), {LEVELS.region.name} "
             f"FROM {LEVELS.region.table}"]
    names += [f"SELECT '{lv.level}', CAST({lv.code} AS VARCHAR), {lv.name} FROM {lv.table}"
              for lv in LEVELS.units if lv.table in tables]
    z = Z95
    return f"""
        WITH standards(indicator_id, standard, lower_is_better) AS (VALUES {standards}),
        names AS ({" UNION ALL ".join(names)}),
        national AS (SELECT indicator_id, period, numerator / denominator AS national_proportion
                     FROM results WHERE level = 'national'),
        rows AS (
            SELECT r.*, coalesce(n.unit_name, r.unit_code) AS unit_name,
                   CASE WHEN r.numerator IS NOT NULL THEN r.numerator / r.denominator END AS p,
                   s.standard, s.lower_is_better, nat.national_proportion,
                   CASE WHEN r.expected > 0 THEN r.expected END AS e,
                   pl.low AS o_low, pl.high AS o_high
            FROM results r
            JOIN standards s USING (indicator_id)
            LEFT JOIN names n USING (level, unit_code)
            LEFT JOIN national nat USING (indicator_id, period)
            LEFT JOIN poisson pl ON pl.observed = r.numerator AND r.expected IS NOT NULL)
        SELECT indicator_id, period_type, period, level, unit_code, unit_name, numerator,
               denominator, missing, p AS proportion,
               CASE WHEN p IS NOT NULL THEN greatest(0, (p + {z}^2 / (2 * denominator)
                 - {z} * sqrt(p * (1 - p) / denominator + {z}^2 / (4 * denominator^2)))
                 / (1 + {z}^2 / denominator)) END AS ci_low,
               CASE WHEN p IS NOT NULL THEN least(1, (p + {z}^2 / (2 * denominator)
                 + {z} * sqrt(p * (1 - p) / denominator + {z}^2 / (4 * denominator^2)))
                 / (1 + {z}^2 / denominator)) END AS ci_high,
               standard,
               CASE WHEN median IS NOT NULL THEN median <= standard
                    WHEN lower_is_better THEN p <= standard ELSE p >= standard END
                 AS standard_met,
               median, expected, numerator / e AS oe_ratio, o_low / e AS oe_low,
               o_high / e AS oe_high,
               CASE WHEN denominator >= 3 THEN numerator / e * national_proportion END
                 AS adjusted_proportion,
               CASE WHEN denominator >= 3 THEN o_low / e * national_proportion END
                 AS adjusted_low,
               CASE WHEN denominator >= 3 THEN o_high / e * national_proportion END
                 AS adjusted_high
        FROM rows
        ORDER BY indicator_id, period_type, period, level, unit_code"""



def registry_files(input_dir: Path) -> dict[str, list[tuple[Path, dt.date]]]:
    """The extracts of every registry folder present, oldest extract first."""
    out = {}
    for name in REGISTRIES:
        files = []
        for path in sorted((input_dir / name).glob("*")) if (input_dir / name).is_dir() else []:
            match = FILE_DATE.search(path.name)
            if match:
                files.append((path, dt.date.fromisoformat(match.group(1))))
        if files:
            out[name] = sorted(files, key=lambda f: (f[1], f[0].name))
    return out


def run(input_dir: Path, output: Path, key: bytes, cutoff: dt.date | None = None,
        indicators_dir: Path | None = None) -> Path:
    """The whole script: extracts in, one results file out (Parquet, or CSV by its suffix;
    a folder gets indicator_results.parquet)."""
    from pipelines.settings import INDICATORS_DIR

    if output.suffix.lower() not in (".parquet", ".csv"):
        output.mkdir(parents=True, exist_ok=True)
        output = output / "indicator_results.parquet"
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    load_reference(con, input_dir / "reference")
    tables = {t for (t,) in con.sql("SELECT table_name FROM duckdb_tables()").fetchall()}
    files = registry_files(input_dir)
    loaded = {name: load_registry(con, REGISTRIES[name], found, key)
              for name, found in files.items()}
    cutoff = cutoff or max(d for found in files.values() for _, d in found)
    definitions = [d for d in read_definitions(indicators_dir or INDICATORS_DIR)
                   if loaded.get(d.registry)
                   and (d.completeness is None or loaded.get(d.completeness.registry))]
    con.execute("""CREATE TABLE results (indicator_id VARCHAR, period_type VARCHAR,
                   period VARCHAR, level VARCHAR, unit_code VARCHAR, numerator BIGINT,
                   denominator BIGINT, missing BIGINT, median DOUBLE, expected DOUBLE)""")
    for d in definitions:
        indicator(con, d, cutoff)
    observed = con.sql("SELECT DISTINCT numerator FROM results WHERE expected IS NOT NULL"
                       ).fetchnumpy()["numerator"]
    poisson = poisson_limits(np.asarray(observed, dtype=np.int64))  # noqa: F841
    form = "(FORMAT csv, HEADER)" if output.suffix.lower() == ".csv" else "(FORMAT parquet)"
    con.execute(f"COPY ({finish_sql(definitions, tables)}) TO {_quoted(output)} {form}")
    con.close()
    return output


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True,
                        help="a .parquet or .csv file, or a folder")
    parser.add_argument("--cutoff", type=dt.date.fromisoformat, default=None)
    args = parser.parse_args(argv)
    key = os.environ.get("KVALITET_PSEUDONYM_KEY", "")
    if not key:
        raise SystemExit("set KVALITET_PSEUDONYM_KEY (the pseudonymisation secret)")
    written = run(args.input, args.output, key.encode(), args.cutoff)
    print(f"results -> {written}")


if __name__ == "__main__":
    main()
