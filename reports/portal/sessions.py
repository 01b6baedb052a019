"""Server-side sessions: a new random id at every login, only its hash stored, ended on
the server at logout or after idling; an anti-forgery token per session for every form.

The login form, shown before any session exists, carries a signed, time-limited token
instead (``login_token``); the browser's Origin header is checked on every POST too.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from reports.portal.store import Store

COOKIE = "kvalitet_session"
CSRF_FIELD = "csrf_token"
IDLE = 30 * 60          # a session unused for 30 minutes ends
ABSOLUTE = 10 * 60 * 60  # and every session ends after 10 hours
LOGIN_TOKEN_AGE = 60 * 60


@dataclass(frozen=True)
class Session:
    username: str
    csrf_token: str
    token_hash: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Sessions:
    def __init__(self, store: Store):
        self.store = store
        secret = store.setting("session_secret")
        if secret is None:
            store.set_setting("session_secret", secrets.token_hex(32))
            secret = store.setting("session_secret")
        self._secret = bytes.fromhex(secret)

    def start(self, username: str) -> str:
        """A new session for ``username``; returns the cookie value (never stored)."""
        token = secrets.token_urlsafe(32)
        now = time.time()
        with self.store.connect() as con:
            con.execute("DELETE FROM sessions WHERE last_seen < ? OR created_at < ?",
                        (now - IDLE, now - ABSOLUTE))
            con.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
                        (_hash(token), username, secrets.token_urlsafe(32), now, now))
        return token

    def get(self, token: str | None) -> Session | None:
        if not token or len(token) > 200:
            return None
        now = time.time()
        digest = _hash(token)
        row = self.store.execute("SELECT username, csrf_token, created_at, last_seen FROM "
                                 "sessions WHERE token_hash = ?", (digest,)).fetchone()
        if row is None:
            return None
        if row[3] < now - IDLE or row[2] < now - ABSOLUTE:
            self.store.execute("DELETE FROM sessions WHERE token_hash = ?", (digest,))
            return None
        if now - row[3] > 30:  # touch at most every 30 s: page views stay read-mostly
            self.store.execute("UPDATE sessions SET last_seen = ? WHERE token_hash = ?",
                               (now, digest))
        return Session(row[0], row[1], digest)

    def end(self, session: Session) -> None:
        self.store.execute("DELETE FROM sessions WHERE token_hash = ?", (session.token_hash,))

    @staticmethod
    def form_token_ok(session: Session, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(session.csrf_token.encode(),
                                                   str(given).encode())

    # -- the login form's token -----------------------------------------------------
    def login_token(self) -> str:
        stamp = str(int(time.time()))
        nonce = secrets.token_urlsafe(12)
        mac = hmac.new(self._secret, f"login|{stamp}|{nonce}".encode(), "sha256").hexdigest()
        return f"{stamp}.{nonce}.{mac}"

    def login_token_ok(self, given: str | None) -> bool:
        try:
            stamp, nonce, mac = str(given).split(".")
            age = time.time() - int(stamp)
        except (ValueError, TypeError):
            return False
        expected = hmac.new(self._secret, f"login|{stamp}|{nonce}".encode(), "sha256").hexdigest()
        return 0 <= age <= LOGIN_TOKEN_AGE and hmac.compare_digest(expected, mac)
