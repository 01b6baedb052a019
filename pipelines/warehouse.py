"""The DuckDB warehouse: opened in one place, shaped only by the files in sql/."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from pipelines.settings import SQL_DIR


def sql_files(folder: str) -> list[Path]:
    return sorted((SQL_DIR / folder).glob("*.sql"))


def apply_sql(con: duckdb.DuckDBPyConnection, folder: str) -> None:
    for path in sql_files(folder):
        con.execute(path.read_text(encoding="utf-8"))


@contextmanager
def connect(path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the warehouse file, its tables and views created if new."""
    if read_only and not path.exists():
        raise FileNotFoundError(f"no warehouse at {path}; run 'kvalitet ingest' first")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Row order carries no meaning in any table (history rows keep their row_number),
    # and not preserving it halves the time of a large insert. Progress is ours to show:
    # DuckDB's own bar would write into the output of long runs.
    con = duckdb.connect(str(path), read_only=read_only,
                         config={"preserve_insertion_order": False})
    try:
        con.execute("SET enable_progress_bar = false")
        if not read_only:
            for folder in ("warehouse", "current", "results"):
                apply_sql(con, folder)
        yield con
    finally:
        con.close()


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None):
    """One value; fetches the whole (one-row) result so the connection is free again."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0][0] if rows else None
