"""The DuckDB warehouse: opened in one place, shaped only by the files in sql/.

Opening it is where operational trouble shows first (another run holds it, it is
missing, corrupt or not writable), so that trouble is turned into one line here.
"""

from __future__ import annotations

import hmac
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from pipelines.privacy import mask
from pipelines.settings import SQL_DIR

# Bumped when the layout changes in a way CREATE ... IF NOT EXISTS cannot carry over.
LAYOUT_VERSION = "2"
KEY_LABEL = b"kvalitet warehouse key fingerprint v1"


class WarehouseError(RuntimeError):
    """The warehouse cannot be used; the message says why in one line."""

    masked = True  # its messages are built from paths and our own words only


class WarehouseBusy(WarehouseError):
    """Another process holds the warehouse (DuckDB allows one writer)."""


class KeyMismatch(WarehouseError):
    """The run's pseudonymisation key is not the one the warehouse was built with."""


def sql_files(folder: str) -> list[Path]:
    """Plain SQL and templates (``*.sql.j2``, rendered for the declared registries and
    levels), in the order of their names."""
    return sorted([*(SQL_DIR / folder).glob("*.sql"), *(SQL_DIR / folder).glob("*.sql.j2")],
                  key=lambda p: p.name)


def apply_sql(con: duckdb.DuckDBPyConnection, folder: str) -> None:
    from schemas.declarations import render_sql

    for path in sql_files(folder):
        con.execute(render_sql(path) if path.suffix == ".j2" else path.read_text(encoding="utf-8"))


def operational_problem(path: Path, problem: Exception) -> WarehouseError:
    """What went wrong with the warehouse file, in one line, without DuckDB's internals."""
    text = str(problem)
    holder = re.search(r"Conflicting lock is held in (.*?) \(PID (\d+)\)", text)
    if holder or "Could not set lock" in text:
        who = f" (process {holder.group(2)}, {holder.group(1)})" if holder else ""
        return WarehouseBusy(f"the warehouse {path} is in use by another run{who}; "
                             "wait for it to finish")
    if "No space left" in text:
        return WarehouseError(f"no space left on the device holding {path}")
    if "Permission denied" in text or isinstance(problem, PermissionError):
        return WarehouseError(f"permission denied on {path} or its folder")
    if "not a valid DuckDB database" in text or "corrupt" in text.lower() or \
            "Serialization" in type(problem).__name__:
        return WarehouseError(f"{path} is not a readable Kvalitet warehouse (corrupt, or not a "
                              "DuckDB file); restore it or rebuild it from the extracts")
    first = mask(text).strip().splitlines()[0] if text.strip() else type(problem).__name__
    return WarehouseError(f"cannot use the warehouse {path}: {first}")


# Connections held open by ``held``: resolved path -> (connection, the thread holding it).
_HELD: dict[Path, tuple[duckdb.DuckDBPyConnection, int]] = {}


@contextmanager
def held(path: Path) -> Iterator[None]:
    """Within this block, ``connect(path)`` hands out one connection, opened once (a cursor of
    it in other threads): opening and closing the warehouse costs ~25 ms each time, a tenth
    of a small run's steps. For a run that owns the warehouse from start to end."""
    import threading

    key = path.resolve()
    if key in _HELD:
        yield
        return
    with connect(path) as con:
        _HELD[key] = (con, threading.get_ident())
        try:
            yield
        finally:
            del _HELD[key]


@contextmanager
def transaction(con) -> Iterator[None]:
    """The block's statements as one transaction: committed at its end, rolled back if it
    fails, so the connection is never left in a failed transaction for what comes next."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")  # a full disk may first show here
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:  # the failed statement may have ended the transaction already
            pass
        raise


def has_table(con, name: str) -> bool:
    """A table or view of that name exists."""
    return bool(scalar(con, "SELECT count(*) FROM information_schema.tables "
                            "WHERE table_name = ?", [name]))


@contextmanager
def connect(path: Path, read_only: bool = False, must_exist: bool = False
            ) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the warehouse file, its tables and views created if new (unless it
    is only read, or ``must_exist``)."""
    import threading

    shared = _HELD.get(path.resolve()) if _HELD else None
    if shared is not None:  # read-only or not: the holder owns the file; a reader only reads
        # Another thread gets a cursor: its own connection to the same open database.
        con = shared[0] if shared[1] == threading.get_ident() else shared[0].cursor()
        try:
            yield con
        finally:  # as a fresh connection would have it (ingest lowers the limit for itself)
            try:
                con.execute("RESET memory_limit")
            except duckdb.Error:  # an aborted transaction: the error that ended it is raised
                pass
            if con is not shared[0]:
                con.close()
        return
    if (read_only or must_exist) and not path.exists():
        raise WarehouseError(f"no warehouse at {path}; run 'kvalitet run' or "
                             "'kvalitet ingest' first, or name it with --warehouse")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Row order carries no meaning in any table (history rows keep their row_number),
        # and not preserving it halves the time of a large insert. Progress is ours to show:
        # DuckDB's own bar would write into the output of long runs.
        con = duckdb.connect(str(path), read_only=read_only,
                             config={"preserve_insertion_order": False})
    except (duckdb.Error, OSError) as problem:
        raise operational_problem(path, problem) from None
    try:
        con.execute("SET enable_progress_bar = false")
        if not read_only and not _shaped_by_this_code(con):
            _check_layout(con, path)
            for folder in ("warehouse", "current", "results"):
                apply_sql(con, folder)
            for source in record_sources(con):
                _apply_record_tables(con, source)
            con.execute("INSERT OR IGNORE INTO warehouse_meta VALUES ('layout_version', ?)",
                        [LAYOUT_VERSION])
            set_meta(con, "sql_fingerprint", sql_fingerprint())
        yield con
    finally:
        con.close()


# -- current records, kept at ingest ------------------------------------------------------
RECORDS_SQL = "records"  # sql/records/: templates rendered per registry with a record_id


def _render(name: str, source: str, **parts: str) -> str:
    text = (SQL_DIR / RECORDS_SQL / name).read_text(encoding="utf-8").replace("{source}", source)
    for key, value in parts.items():
        text = text.replace("{" + key + "}", value)
    return text


def _statements(sql: str) -> list[str]:
    """A template's statements, comment lines left out (no statement holds a ';' of its own)."""
    code = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [part.strip() for part in code.split(";") if part.strip()]


def record_sources(con) -> list[str]:
    """Registries whose history has a record_id: their current rows are kept at ingest."""
    return [name for (name,) in con.execute(
        "SELECT DISTINCT regexp_extract(table_name, '^(.*)_history$', 1) FROM "
        "information_schema.columns WHERE table_name LIKE '%\\_history' ESCAPE '\\' "
        "AND column_name = 'record_id' ORDER BY 1").fetchall()]


def _apply_record_tables(con, source: str) -> None:
    existed = has_table(con, f"{source}_current_rows")
    con.execute(_render("10_tables.sql", source))
    if not existed and scalar(con, f"SELECT count(*) FROM {source}_history"):
        refresh_current(con, source)  # a warehouse from before: its current rows, once
    con.execute(_render("20_view.sql", source))


def refresh_current(con, source: str) -> None:
    """The current rows of ``source`` rebuilt from every delivery (after a retraction)."""
    for statement in _statements(_render("rebuild.sql", source,
                                         fingerprint=fingerprint(con, source))):
        con.execute(statement)


def value_columns(con, source: str) -> list[tuple[str, str]]:
    """The history columns that make a version (all but where and when it was delivered),
    with their types."""
    return [(c, t) for c, t in con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
        "ORDER BY ordinal_position", [f"{source}_history"]).fetchall()
        if c not in ("file_id", "row_number", "extract_date", "record_id")]


def fingerprint(con, source: str) -> str:
    """SQL for a version's fingerprint over ``history``'s value columns, each cast to the
    history table's type (so a frame's Int32 hashes as the stored SMALLINT). Two versions of
    one record share a 64-bit hash by chance with probability 2**-64; if they did, the
    later one would count as re-delivered unchanged."""
    return "hash(" + ", ".join(f'CAST(history."{c}" AS {t})'
                               for c, t in value_columns(con, source)) + ")"


def duckdb_memory_mb(share: int) -> int:
    """DuckDB's part of the run's memory limit (1/``share``), never below 256 MB: DuckDB
    cannot work at all in a few megabytes, whatever a tiny limit for the batches says."""
    from pipelines.settings import memory_limit_bytes

    return max(256, memory_limit_bytes() // share // 2**20)


def store_rows(con, source: str, rows, file_id: int, extract_date, file_name: str) -> None:
    """A batch of validated history-shaped rows (a Polars frame) into ``source``. For a registry
    with record ids only changed versions are stored, and the current rows are kept up to
    date, in the caller's transaction. Other registries (LPR) keep every row."""
    incoming = f"{source}_incoming"
    con.register(incoming, rows)
    try:
        if source not in record_sources(con):
            con.execute(f"INSERT INTO {source}_history BY NAME SELECT * FROM {incoming}")
            return
        sql = _render("store.sql", source, fingerprint=fingerprint(con, source))
        for statement in _statements(sql):
            parameters = {k: v for k, v in (("file_id", file_id), ("extract_date", extract_date),
                                            ("file_name", file_name))
                          if f"${k}" in statement}
            con.execute(statement, parameters)
    finally:
        con.unregister(incoming)


def sql_fingerprint() -> str:
    """A hash of everything that shapes the warehouse: the layout version, every file under
    sql/ and the schema declarations (tables may be rendered from them)."""
    import hashlib

    from pipelines.settings import PROJECT_ROOT

    digest = hashlib.sha256(LAYOUT_VERSION.encode())
    for folder in (SQL_DIR, PROJECT_ROOT / "schemas"):
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix in (".sql", ".yaml", ".yml", ".py"):
                digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _shaped_by_this_code(con) -> bool:
    """The warehouse's tables and views were last created from the same SQL: applying it
    again would change nothing (and costs a noticeable part of a small run, per connection)."""
    return has_table(con, "warehouse_meta") and meta(con, "sql_fingerprint") == sql_fingerprint()


def _check_layout(con, path: Path) -> None:
    """A warehouse written by an older layout is refused rather than silently mixed."""
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables").fetchall()}
    if "extract_files" in tables and "warehouse_meta" not in tables:
        raise WarehouseError(f"{path} was built by an older Kvalitet (layout 1); rebuild it "
                             "from the extracts into a new warehouse file")


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None):
    """One value; fetches the whole (one-row) result so the connection is free again."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0][0] if rows else None


def meta(con, name: str) -> str | None:
    return scalar(con, "SELECT value FROM warehouse_meta WHERE name = ?", [name])


def set_meta(con, name: str, value: str) -> None:
    con.execute("INSERT OR REPLACE INTO warehouse_meta VALUES (?, ?)", [name, value])


def key_fingerprint(key: bytes) -> str:
    """A keyed hash of a fixed label: equal for equal keys, and it reveals nothing of the key."""
    return hmac.new(key, KEY_LABEL, "sha256").hexdigest()


def claim_key(con, key: bytes, path: Path) -> None:
    """The warehouse belongs to the key it was first loaded with; another key is refused
    before anything is loaded (the same patients would get a second pseudonym)."""
    fingerprint = key_fingerprint(key)
    stored = meta(con, "key_fingerprint")
    if stored is None:
        set_meta(con, "key_fingerprint", fingerprint)
    elif not hmac.compare_digest(stored, fingerprint):
        raise KeyMismatch(f"the warehouse {path} was built with another pseudonymisation key; "
                          "this run's key would give every patient a second pseudonym. Use the "
                          "warehouse's key, or a new warehouse for a new key")
