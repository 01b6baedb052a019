"""Who someone is: the one interface the portal asks, and local passwords behind it.

The routes call only ``IdentityProvider.authenticate`` and ``IdentityProvider.identity``.
A regional identity provider (OIDC or SAML) replaces ``LocalPasswords`` by
implementing the same two methods (its callback route then starts a session with
``sessions.start``); roles stay in the portal's ``users`` table either way.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import time
from dataclasses import dataclass
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from reports.portal.store import Store

ROLES = ("unit", "region", "national", "admin")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
# After this many failed logins for one username within the window, it is locked for LOCKOUT.
MAX_FAILURES = 10
FAILURE_WINDOW = 15 * 60
LOCKOUT = 15 * 60


@dataclass(frozen=True)
class Identity:
    username: str
    role: str                 # the data role: unit, region, national; or admin only
    unit: str | None = None   # level:code for role unit
    region: str | None = None  # region code for role region
    is_admin: bool = False

    @property
    def describes(self) -> str:
        where = self.unit or (f"region:{self.region}" if self.region else "")
        return f"{self.role}{' ' + where if where else ''}{' +admin' if self.is_admin and self.role != 'admin' else ''}"


class Outcome(enum.Enum):
    OK = "success"
    FAILED = "failure"
    LOCKED = "locked"


class IdentityProvider(Protocol):
    def authenticate(self, username: str, password: str) -> tuple[Outcome, Identity | None]:
        """Check a login; ``LOCKED`` refuses even the right password."""

    def identity(self, username: str) -> Identity | None:
        """The current identity of a logged-in user (None once removed)."""


class BadUser(ValueError):
    """Wrong usage of ``portal user add``: the message says what to change."""


class LocalPasswords:
    """Argon2id password hashes in the portal database, with a per-username lockout."""

    def __init__(self, store: Store, hasher: PasswordHasher | None = None):
        self.store = store
        self.hasher = hasher or PasswordHasher()
        self._dummy = self.hasher.hash("not a password of anyone")

    # -- users ------------------------------------------------------------------------
    def add_user(self, username: str, roles: list[str], password: str, unit: str | None = None,
                 region: str | None = None) -> Identity:
        if not USERNAME.match(username or ""):
            raise BadUser("a username is 1-64 letters, digits or . _ @ - (starting with a "
                          "letter or digit)")
        from pipelines.privacy import holds_cpr

        if holds_cpr(username):  # shown on pages and in comments: never a CPR number
            raise BadUser("a username must not hold a CPR number; choose a name")
        roles = list(dict.fromkeys(roles))
        unknown = [r for r in roles if r not in ROLES]
        if not roles or unknown:
            raise BadUser(f"--role must be one of {', '.join(ROLES)}")
        data = [r for r in roles if r != "admin"]
        if len(data) > 1:
            raise BadUser("give at most one data role (unit, region or national), "
                          "optionally with admin")
        role = data[0] if data else "admin"
        if role == "unit" and not unit:
            raise BadUser("--role unit needs --unit LEVEL:CODE")
        if role == "region" and not region:
            raise BadUser("--role region needs --region CODE")
        if role != "unit" and unit:
            raise BadUser("--unit goes only with --role unit")
        if role != "region" and region:
            raise BadUser("--region goes only with --role region")
        if len(password) < MIN_PASSWORD:
            raise BadUser(f"the password is shorter than {MIN_PASSWORD} characters")
        if len(password) > MAX_PASSWORD:
            raise BadUser(f"the password is longer than {MAX_PASSWORD} characters")
        with self.store.connect() as con:
            if con.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
                raise BadUser(f"user {username} exists; remove it first")
            con.execute("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (username, role, unit, region, int("admin" in roles),
                         self.hasher.hash(password),
                         dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")))
        return Identity(username, role, unit, region, "admin" in roles)

    def remove_user(self, username: str) -> bool:
        with self.store.connect() as con:
            gone = con.execute("DELETE FROM users WHERE username = ?", (username,)).rowcount
            con.execute("DELETE FROM sessions WHERE username = ?", (username,))
        return bool(gone)

    def users(self) -> list[Identity]:
        rows = self.store.execute("SELECT username, role, unit, region, is_admin FROM users "
                                  "ORDER BY username").fetchall()
        return [Identity(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]

    def identity(self, username: str) -> Identity | None:
        r = self.store.execute("SELECT username, role, unit, region, is_admin FROM users "
                               "WHERE username = ?", (username,)).fetchone()
        return Identity(r[0], r[1], r[2], r[3], bool(r[4])) if r else None

    # -- login ------------------------------------------------------------------------
    def locked(self, username: str, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        row = self.store.execute("SELECT locked_until FROM lockouts WHERE username = ?",
                                 (username,)).fetchone()
        return bool(row and row[0] > now)

    def authenticate(self, username: str, password: str) -> tuple[Outcome, Identity | None]:
        now = time.time()
        if self.locked(username, now):
            return Outcome.LOCKED, None
        row = self.store.execute("SELECT password_hash FROM users WHERE username = ?",
                                 (username,)).fetchone()
        stored = row[0] if row and row[0] else None
        ok = False
        if len(password) <= MAX_PASSWORD:
            try:  # an unknown user costs the same hashing time as a known one
                ok = self.hasher.verify(stored or self._dummy, password) and stored is not None
            except (VerificationError, InvalidHashError):
                ok = False
        if ok:
            with self.store.connect() as con:
                con.execute("DELETE FROM login_failures WHERE username = ?", (username,))
            if self.hasher.check_needs_rehash(stored):
                self.store.execute("UPDATE users SET password_hash = ? WHERE username = ?",
                                   (self.hasher.hash(password), username))
            return Outcome.OK, self.identity(username)
        with self.store.connect() as con:
            con.execute("INSERT INTO login_failures VALUES (?, ?)", (username, now))
            con.execute("DELETE FROM login_failures WHERE at < ?", (now - FAILURE_WINDOW,))
            recent = con.execute("SELECT count(*) FROM login_failures WHERE username = ? "
                                 "AND at >= ?", (username, now - FAILURE_WINDOW)).fetchone()[0]
            if recent >= MAX_FAILURES:
                con.execute("INSERT INTO lockouts VALUES (?, ?) ON CONFLICT (username) DO "
                            "UPDATE SET locked_until = excluded.locked_until",
                            (username, now + LOCKOUT))
                con.execute("DELETE FROM login_failures WHERE username = ?", (username,))
        return Outcome.FAILED, None
