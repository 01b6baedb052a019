"""One in-memory DuckDB per process for vectorised helpers (HMAC, datetime parsing).

Opening a new in-memory database costs ~12 ms, more than the work of a small
batch; a cursor of a shared one costs ~1 ms and is its own connection, so each
caller (and thread) gets one of its own.
"""

from __future__ import annotations

import threading

import duckdb

_LOCK = threading.Lock()
_DATABASE: duckdb.DuckDBPyConnection | None = None


def cursor() -> duckdb.DuckDBPyConnection:
    """A fresh connection to the process's scratch database; close it after use."""
    global _DATABASE
    with _LOCK:
        if _DATABASE is None:
            _DATABASE = duckdb.connect(":memory:")
        return _DATABASE.cursor()
