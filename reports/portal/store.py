"""The portal's embedded database (SQLite, standard library): users, sessions, failed
logins, the access log, audit-round windows and comments.

One file, by default ``~/.local/state/kvalitet/portal.sqlite3``; ``KVALITET_PORTAL_DB``
or ``--db`` says where instead. WAL mode so page views (readers) never wait on a
writer; the access log is append-only (triggers refuse UPDATE and DELETE).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

DB_ENV = "KVALITET_PORTAL_DB"

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username      TEXT PRIMARY KEY,
    role          TEXT NOT NULL CHECK (role IN ('unit', 'region', 'national', 'admin')),
    unit          TEXT,            -- level:code, for role unit
    region        TEXT,            -- region code, for role region
    is_admin      INTEGER NOT NULL DEFAULT 0,   -- a data role may also administer
    password_hash TEXT,            -- NULL when an external identity provider vouches
    created_at    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash  TEXT PRIMARY KEY,  -- SHA-256 of the cookie value; the value is never stored
    username    TEXT NOT NULL,
    csrf_token  TEXT NOT NULL,
    created_at  REAL NOT NULL,
    last_seen   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (username);
CREATE TABLE IF NOT EXISTS login_failures (
    username TEXT NOT NULL,
    at       REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_user ON login_failures (username, at);
CREATE TABLE IF NOT EXISTS lockouts (
    username     TEXT PRIMARY KEY,
    locked_until REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS access_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    time      TEXT NOT NULL,       -- UTC, ISO 8601
    username  TEXT NOT NULL,
    action    TEXT NOT NULL,
    unit      TEXT NOT NULL,       -- level:code, or '' when no unit
    path      TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    client    TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS access_log_no_update BEFORE UPDATE ON access_log
BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS access_log_no_delete BEFORE DELETE ON access_log
BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END;
CREATE TABLE IF NOT EXISTS audit_windows (
    year       INTEGER PRIMARY KEY,
    opened_at  TEXT NOT NULL,
    opened_by  TEXT NOT NULL,
    closed_at  TEXT,
    closed_by  TEXT
);
CREATE TABLE IF NOT EXISTS comments (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    year         INTEGER NOT NULL,
    unit         TEXT NOT NULL,    -- level:code (region:CODE for a region's own results)
    indicator_id TEXT NOT NULL,
    author       TEXT NOT NULL,
    written_at   TEXT NOT NULL,
    text         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS comments_year ON comments (year, unit, indicator_id);
CREATE TABLE IF NOT EXISTS settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


def default_path() -> Path:
    """``KVALITET_PORTAL_DB`` if set, else the user's state folder (not the working
    directory: every command finds the same database from wherever it is run)."""
    told = os.environ.get(DB_ENV, "").strip()
    if told:
        return Path(told)
    state = os.environ.get("XDG_STATE_HOME", "").strip() or str(Path.home() / ".local" / "state")
    return Path(state) / "kvalitet" / "portal.sqlite3"


class Store:
    """One connection per thread to one database file."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else default_path()
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.connect().con.executescript(SCHEMA)
        try:
            os.chmod(self.path, 0o600)  # password hashes and the access log: owner only
        except OSError:
            pass

    def connect(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                  check_same_thread=False)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            con.execute("PRAGMA busy_timeout=30000")
            con.row_factory = sqlite3.Row
            self._local.con = con
        return _Autocommit(con)

    def execute(self, sql: str, params=()) -> sqlite3.Cursor:
        return self.connect().con.execute(sql, params)

    def setting(self, name: str) -> str | None:
        row = self.execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_setting(self, name: str, value: str) -> None:
        self.execute("INSERT INTO settings VALUES (?, ?) ON CONFLICT (name) DO UPDATE "
                     "SET value = excluded.value", (name, value))


def existing(path: Path | None = None) -> Store | None:
    """The store if its file exists (readers such as the annual report never create one)."""
    target = Path(path) if path else default_path()
    return Store(target) if target.is_file() else None


class _Autocommit:
    """``with store.connect() as con``: one transaction; statements outside autocommit."""

    def __init__(self, con: sqlite3.Connection):
        self.con = con

    def __enter__(self) -> sqlite3.Connection:
        self.con.execute("BEGIN IMMEDIATE")
        return self.con

    def __exit__(self, kind, value, traceback) -> None:
        self.con.execute("ROLLBACK" if kind else "COMMIT")

    def __getattr__(self, name):
        return getattr(self.con, name)
