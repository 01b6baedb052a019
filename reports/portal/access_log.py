"""The access log: one appended row per login, logout, page view, download and denied
request; time (UTC), username, action, unit, path, outcome, client address.

Rows are only appended (the table's triggers refuse changes). Every text passes
``scrub``, so no CPR number or pseudonym is ever written, even from a typed URL or
username; passwords and session tokens are never handed to this module.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

from reports.portal.scrub import scrub
from reports.portal.store import Store

COLUMNS = ("time", "username", "action", "unit", "path", "outcome", "client")
ACTIONS = ("login", "logout", "view", "download", "denied", "comment", "admin")


def now_utc() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def append(store: Store, username: str | None, action: str, unit: str | None, path: str,
           outcome: str, client: str | None) -> None:
    store.execute(
        "INSERT INTO access_log (time, username, action, unit, path, outcome, client) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (now_utc(), scrub(username or "")[:100], action, scrub(unit or "")[:100],
         scrub(path)[:500], outcome, scrub(client or "")[:100]))


def rows(store: Store, since: dt.date | None = None) -> list[dict]:
    query = f"SELECT {', '.join(COLUMNS)} FROM access_log"
    params: tuple = ()
    if since is not None:
        query += " WHERE time >= ?"
        params = (since.isoformat(),)
    return [dict(r) for r in store.execute(query + " ORDER BY id", params).fetchall()]


def as_csv(records: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()


def as_json(records: list[dict]) -> str:
    return json.dumps(records, ensure_ascii=False, indent=1)
