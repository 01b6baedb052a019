"""The annual audit round: an admin opens a commenting window for a year; unit and region
users write a comment per indicator on their preliminary annual results; the annual
report prints the comments and is marked "Foreløbig" while the window is open.

``window_open`` and ``comments_for_year`` are what the annual report asks; they read
the portal database if it exists and never create one.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from pathlib import Path

from reports.portal.scrub import scrub
from reports.portal.store import Store, existing

MAX_COMMENT = 4000
PRELIMINARY = "Foreløbig"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _store(store: Store | Path | None) -> Store | None:
    if isinstance(store, Store):
        return store
    return existing(store)


def open_window(store: Store, year: int, by: str) -> None:
    store.execute("INSERT INTO audit_windows (year, opened_at, opened_by) VALUES (?, ?, ?) "
                  "ON CONFLICT (year) DO UPDATE SET opened_at = excluded.opened_at, "
                  "opened_by = excluded.opened_by, closed_at = NULL, closed_by = NULL",
                  (int(year), _now(), by))


def close_window(store: Store, year: int, by: str) -> bool:
    return bool(store.execute("UPDATE audit_windows SET closed_at = ?, closed_by = ? "
                              "WHERE year = ? AND closed_at IS NULL",
                              (_now(), by, int(year))).rowcount)


def window_open(year: int, store: Store | Path | None = None) -> bool:
    """True while the commenting window for ``year`` is open (the report is preliminary)."""
    found = _store(store)
    if found is None:
        return False
    row = found.execute("SELECT closed_at FROM audit_windows WHERE year = ?",
                        (int(year),)).fetchone()
    return row is not None and row[0] is None


def windows(store: Store) -> list[dict]:
    return [dict(r) for r in store.execute("SELECT * FROM audit_windows ORDER BY year DESC")]


def add_comment(store: Store, year: int, unit: str, indicator_id: str, author: str,
                text: str) -> None:
    text = scrub(text.strip())[:MAX_COMMENT]
    if not text:
        raise ValueError("an empty comment")
    if not window_open(year, store):
        raise PermissionError(f"the commenting window for {year} is not open")
    store.execute("INSERT INTO comments (year, unit, indicator_id, author, written_at, text) "
                  "VALUES (?, ?, ?, ?, ?, ?)", (int(year), unit, indicator_id, author, _now(), text))


def comments_for_year(year: int, store: Store | Path | None = None,
                      units: set[str] | None = None) -> list[dict]:
    """Every comment of ``year`` (unit, indicator_id, author, written_at, text), oldest
    first; ``units`` keeps only those units' comments."""
    found = _store(store)
    if found is None:
        return []
    rows = [dict(r) for r in found.execute(
        "SELECT unit, indicator_id, author, written_at, text FROM comments WHERE year = ? "
        "ORDER BY indicator_id, unit, id", (int(year),)).fetchall()]
    return [r for r in rows if units is None or r["unit"] in units]


def mark_report(page: str, year: int, indicator_ids: list[str],
                store: Store | Path | None = None) -> str:
    """The annual report's HTML with a "Foreløbig" banner while the window is open, and
    the comments on its indicators as a section before the end of the page."""
    preliminary = window_open(year, store)
    comments = [c for c in comments_for_year(year, store) if c["indicator_id"] in indicator_ids]
    if not preliminary and not comments:
        return page
    banner = ""
    if preliminary:
        banner = (f'<div class="preliminary" data-preliminary="true" style="background:#fff3cd;'
                  f'border:2px solid #b58900;padding:.6em 1em;margin:.5em 0;font-weight:bold">'
                  f'{PRELIMINARY}: kommentarrunden for {int(year)} er åben; tallene kan '
                  f'ændre sig.</div>')
        page = re.sub(r"<title>", f"<title>{PRELIMINARY} – ", page, count=1)
    section = ""
    if comments:
        items = []
        for indicator_id in sorted({c["indicator_id"] for c in comments}):
            rows = "".join(
                f"<tr><td>{html.escape(c['unit'])}</td><td>{html.escape(c['written_at'][:10])}"
                f"</td><td>{html.escape(c['text'])}</td></tr>"
                for c in comments if c["indicator_id"] == indicator_id)
            items.append(f"<h3>{html.escape(indicator_id)}</h3><table><thead><tr><th>Enhed</th>"
                         f"<th>Dato</th><th>Kommentar</th></tr></thead><tbody>{rows}</tbody>"
                         "</table>")
        section = (f'<section id="audit-comments"><h2>Kommentarer fra enheder og regioner '
                   f'({int(year)})</h2>{"".join(items)}</section>')
    body = re.search(r"<body[^>]*>", page)
    if banner:
        page = (page[:body.end()] + banner + page[body.end():]) if body else banner + page
    if section:
        end = page.rfind("</body>")
        page = page[:end] + section + page[end:] if end >= 0 else page + section
    return page
