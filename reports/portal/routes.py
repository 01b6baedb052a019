"""The portal's HTTP routes (FastAPI, Jinja2 templates), served by uvicorn.

Every response is ``Cache-Control: no-store`` (after logout the back button finds no
data); every POST carries the anti-forgery token and a same-origin Origin header when
the browser sends one; every login, logout, page view, download and denied request is
one row of the access log.
"""

from __future__ import annotations

import functools
import json
import re
import urllib.parse
from pathlib import Path

import plotly.offline
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from reports.portal import access_log, audit_round, authorisation, pages
from reports.portal.identity import Identity, IdentityProvider, LocalPasswords, Outcome
from reports.portal.published import CODE, LEVEL, MONTH, Published, reference_units
from reports.portal.sessions import COOKIE, CSRF_FIELD, Session, Sessions
from reports.portal.store import Store

HERE = Path(__file__).resolve().parent
STRICT_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
              "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
              "frame-ancestors 'none'; form-action 'self'; base-uri 'self'; object-src 'none'")
# A published unit page (index.html) may carry its own inline scripts (Plotly's output).
PUBLISHED_CSP = STRICT_CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'")
BAR_MARK = "<!--portal-bar-->"
STATUS_WORDS = {"met": "opfyldt", "not_met": "ikke opfyldt", "too_few": "for få"}


class Portal:
    """The application's state: where OUTPUT is, the database, who is who."""

    def __init__(self, output: Path, store: Store, identity: IdentityProvider | None = None,
                 secure_cookies: bool | None = None):
        self.published = Published(output)
        self.store = store
        self.identity = identity or LocalPasswords(store)
        self.sessions = Sessions(store)
        self.secure_cookies = secure_cookies
        self.reference, _ = reference_units()
        self.templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                                     autoescape=select_autoescape(["html", "j2"]))

    def region_of(self, level: str, code: str) -> str | None:
        unit = self.published.unit(level, code)
        if unit is not None and unit.region:
            return unit.region
        return self.reference.get(f"{level}:{code}")

    def log(self, request: Request, who: str | None, action: str, unit: str | None,
            outcome: str) -> None:
        access_log.append(self.store, who, action, unit, request.url.path, outcome,
                          request.client.host if request.client else "")


@functools.lru_cache(maxsize=1)
def _plotly_js() -> bytes:
    return plotly.offline.get_plotlyjs().encode("utf-8")


def create_app(output: Path, store: Store, identity: IdentityProvider | None = None,
               secure_cookies: bool | None = None) -> FastAPI:
    portal = Portal(output, store, identity, secure_cookies)
    app = FastAPI(title="Kvalitet portal", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.portal = portal

    app.add_middleware(SecurityHeaders)

    # -- helpers ------------------------------------------------------------------------
    def render(request: Request, template: str, status: int = 200, session: Session | None = None,
               who: Identity | None = None, **context) -> HTMLResponse:
        page = portal.templates.get_template(template).render(
            who=who, csrf=session.csrf_token if session else None, csrf_field=CSRF_FIELD,
            start=authorisation.start_page(who) if who else "/login", **context)
        return HTMLResponse(page, status_code=status)

    def current(request: Request) -> tuple[Session | None, Identity | None]:
        session = portal.sessions.get(request.cookies.get(COOKIE))
        if session is None:
            return None, None
        who = portal.identity.identity(session.username)
        if who is None:  # the user was removed: the session ends too
            portal.sessions.end(session)
            return None, None
        return session, who

    def login_first(request: Request, unit: str | None = None) -> Response:
        portal.log(request, "", "denied", unit, "no session")
        if request.method != "GET":
            return JSONResponse({"detail": "not logged in"}, status_code=401)
        return RedirectResponse("/login", status_code=303)

    def denied(request: Request, who: Identity, session: Session, unit: str | None,
               status: int = 403) -> Response:
        portal.log(request, who.username, "denied", unit, str(status))
        return render(request, "error.html.j2", status=status, session=session, who=who,
                      message="Du har ikke adgang til denne side." if status == 403
                      else "Siden findes ikke.")

    def not_found(request: Request, who: Identity, session: Session, unit: str | None):
        return denied(request, who, session, unit, status=404)

    async def checked_form(request: Request, session: Session, who, unit: str | None = None):
        """A signed-in user's form, or the refusal when it lacks its anti-forgery token or
        comes from another origin (logged as denied)."""
        form = await request.form()
        if same_origin(request) and portal.sessions.form_token_ok(session, form.get(CSRF_FIELD)):
            return form, None
        portal.log(request, who.username, "denied", unit, "no anti-forgery token")
        return form, render(request, "error.html.j2", status=403, session=session, who=who,
                            message="Formularen mangler sit sikkerhedsfelt.")

    async def posted(request: Request):
        """(session, who, form, None) for a signed-in user's genuine form, else the response
        refusing it (to the login page, or forbidden without its anti-forgery token)."""
        session, who = current(request)
        if session is None:
            return None, None, None, login_first(request)
        form, refused = await checked_form(request, session, who)
        return session, who, form, refused

    def same_origin(request: Request) -> bool:
        origin = request.headers.get("origin")
        if not origin:  # not every client sends one; the token is the guard then
            return True
        host = request.headers.get("host", "")
        return urllib.parse.urlsplit(origin).netloc == host

    def set_cookie(request: Request, response: Response, value: str) -> None:
        secure = portal.secure_cookies if portal.secure_cookies is not None else _https(request)
        response.set_cookie(COOKIE, value, httponly=True, samesite="lax", secure=secure,
                            path="/")

    # -- open routes --------------------------------------------------------------------
    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.get("/login")
    def login_form(request: Request):
        return render(request, "login.html.j2", token=portal.sessions.login_token())

    @app.post("/login")
    async def login(request: Request):
        form = await request.form()
        username = str(form.get("username") or "")[:200]
        password = str(form.get("password") or "")
        if not same_origin(request) or not portal.sessions.login_token_ok(form.get(CSRF_FIELD)):
            portal.log(request, username, "login", None, "failure: no anti-forgery token")
            return render(request, "login.html.j2", status=403,
                          token=portal.sessions.login_token(),
                          error="Formularen er udløbet. Prøv igen.")
        # Argon2 costs ~0.1 s of CPU: off the event loop, so other pages keep flowing
        outcome, who = await run_in_threadpool(portal.identity.authenticate, username, password)
        if outcome is Outcome.LOCKED:
            portal.log(request, username, "login", None, "locked")
            return render(request, "login.html.j2", status=429,
                          token=portal.sessions.login_token(),
                          error="For mange forsøg. Prøv igen om 15 minutter.")
        if outcome is not Outcome.OK or who is None:
            portal.log(request, username, "login", None, "failure")
            return render(request, "login.html.j2", status=401,
                          token=portal.sessions.login_token(),
                          error="Forkert brugernavn eller adgangskode.")
        old = portal.sessions.get(request.cookies.get(COOKIE))
        if old is not None:
            portal.sessions.end(old)
        token = portal.sessions.start(who.username)
        portal.log(request, who.username, "login", who.unit or (
            f"region:{who.region}" if who.region else None), "success")
        response = RedirectResponse(authorisation.start_page(who), status_code=303)
        set_cookie(request, response, token)
        return response

    @app.post("/logout")
    async def logout(request: Request):
        session, who, form, refused = await posted(request)
        if refused:
            return refused
        portal.sessions.end(session)
        portal.log(request, who.username, "logout", None, "success")
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        response.headers["Clear-Site-Data"] = '"cache"'
        return response

    @app.get("/static/{name}")
    def static(request: Request, name: str):
        session, _ = current(request)
        if session is None:
            return login_first(request)
        if name == "plotly.min.js":
            return Response(_plotly_js(), media_type="text/javascript",
                            headers={"Cache-Control": "private, max-age=86400"})
        files = {"portal.js": "text/javascript", "portal.css": "text/css"}
        if name not in files:
            return Response(status_code=404)
        return Response((HERE / "static" / name).read_bytes(), media_type=files[name],
                        headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/")
    def home(request: Request):
        session, who = current(request)
        if session is None:
            return login_first(request)
        return RedirectResponse(authorisation.start_page(who), status_code=303)

    # -- unit pages and downloads -------------------------------------------------------
    def unit_guard(request: Request, level: str, code: str):
        """(session, who, None) when the user may see the unit, else (.., .., response)."""
        session, who = current(request)
        key = f"{level}:{code}"
        if session is None:
            return None, None, login_first(request, key)
        if not (LEVEL.match(level) and CODE.match(code)):
            return session, who, not_found(request, who, session, key)
        if not authorisation.may_see_unit(who, level, code, portal.region_of):
            return session, who, denied(request, who, session, key)
        return session, who, None

    @app.get("/units/{level}/{code}")
    def unit_latest(request: Request, level: str, code: str):
        session, who, refused = unit_guard(request, level, code)
        if refused:
            return refused
        months = portal.published.months_of(level, code)
        if not months:
            return not_found(request, who, session, f"{level}:{code}")
        return unit_page(request, session, who, level, code, months[-1], months)

    @app.get("/units/{level}/{code}/{month}")
    def unit_month(request: Request, level: str, code: str, month: str):
        session, who, refused = unit_guard(request, level, code)
        if refused:
            return refused
        months = portal.published.months_of(level, code)
        if not MONTH.match(month) or month not in months:
            return not_found(request, who, session, f"{level}:{code}")
        return unit_page(request, session, who, level, code, month, months)

    def unit_page(request, session, who, level, code, month, months):
        delivery = portal.published.delivery(level, code, month)
        key = f"{level}:{code}"
        if delivery is None:
            return not_found(request, who, session, key)
        portal.log(request, who.username, "view", key, "200")
        base = f"/units/{level}/{code}/{month}/"
        bar = portal.templates.get_template("bar.html.j2").render(
            who=who, csrf=session.csrf_token, csrf_field=CSRF_FIELD, unit=delivery.unit,
            month=month, months=months, base=base,
            workbook=pages.workbook_name(delivery.unit, month),
            start=authorisation.start_page(who))
        if request.query_params.get("view") == "published" and delivery.index_html is not None:
            # the unit page as the pipeline published it (reports/unit_page.py), in the frame
            page = _inject(delivery.index_html,
                           f'<base href="{base}"><link rel="icon" href="data:,">', bar)
            return HTMLResponse(page, headers={"Content-Security-Policy": PUBLISHED_CSP})
        page = delivery.cache.get("page")
        if page is None:  # the same for every viewer: rendered once per delivery version
            page = portal.templates.get_template("unit.html.j2").render(
                who=who, bar=BAR_MARK, unit=delivery.unit, month=month,
                tables=pages.tables(delivery), titles=pages.TABLES, base=base,
                workbook=pages.workbook_name(delivery.unit, month),
                charts=json.dumps(pages.chart_data(delivery), ensure_ascii=False)
                .replace("<", "\\u003c"),
                published=[f for f in delivery.files if not f.endswith(".js")])
            delivery.cache["page"] = page
        return HTMLResponse(page.replace(BAR_MARK, bar, 1))

    @app.get("/units/{level}/{code}/{month}/{name}")
    def unit_file(request: Request, level: str, code: str, month: str, name: str):
        session, who, refused = unit_guard(request, level, code)
        if refused:
            return refused
        key = f"{level}:{code}"
        if not MONTH.match(month) or portal.published.folder(level, code, month) is None:
            return not_found(request, who, session, key)
        delivery = portal.published.delivery(level, code, month)
        if delivery is None:
            return not_found(request, who, session, key)
        if name == pages.workbook_name(delivery.unit, month):
            body, media = pages.xlsx_bytes(delivery), (
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        elif name.startswith(pages.PREFIX) and name.endswith(".csv") and \
                name[len(pages.PREFIX):-4] in pages.TABLES:
            body = pages.csv_bytes(pages.tables(delivery)[name[len(pages.PREFIX):-4]])
            media = "text/csv; charset=utf-8"
        else:
            path = portal.published.file(level, code, month, name)
            if path is None:
                return not_found(request, who, session, key)
            body, media = path.read_bytes(), _media(name)
            if name.endswith(".js"):  # a page's script, not data: not a download
                return Response(body, media_type=media)
            # Served as published, byte for byte: the pipeline's gate (pipelines/privacy.py)
            # wrote it; masking here would rewrite the digits of long decimals.
        portal.log(request, who.username, "download", key, "200")
        return Response(body, media_type=media, headers={
            "Content-Disposition": f'attachment; filename="{name}"'
            if not name.endswith(".html") else "inline"})

    # -- overviews ----------------------------------------------------------------------
    def overview(request, session, who, units, month, title, region=None):
        grid = []
        ids: set[str] = set()
        for unit in units:
            delivery = portal.published.delivery(unit.level, unit.code, month)
            if delivery is None:
                continue
            statuses = pages.status(delivery)
            ids.update(statuses)
            grid.append((unit, statuses))
        ids_sorted = sorted(ids)
        region_rows = []
        if region is not None and grid:
            delivery = portal.published.delivery(grid[0][0].level, grid[0][0].code, month)
            region_rows = pages.tables(delivery)["this_month"].select(
                "indikator", "titel", "region", "landsplan", "standard").to_dicts()
        portal.log(request, who.username, "view", f"region:{region}" if region else "", "200")
        months = portal.published.months()
        return render(request, "overview.html.j2", session=session, who=who, title=title,
                      month=month, months=months, grid=grid, ids=ids_sorted,
                      words=STATUS_WORDS, region_rows=region_rows,
                      base=f"/regions/{region}" if region else "/national",
                      counts={s: sum(1 for _, st in grid for v in st.values() if v == s)
                              for s in STATUS_WORDS})

    def month_or_latest(month: str | None) -> str | None:
        months = portal.published.months()
        if month is None:
            return months[-1] if months else None
        return month if MONTH.match(month) and month in months else None

    @app.get("/regions/{region}")
    @app.get("/regions/{region}/{month}")
    def region_page(request: Request, region: str, month: str | None = None):
        session, who = current(request)
        if session is None:
            return login_first(request, f"region:{region}")
        if not CODE.match(region) or not authorisation.may_see_region(who, region):
            return denied(request, who, session, f"region:{region}")
        chosen = month_or_latest(month)
        if chosen is None:
            return not_found(request, who, session, f"region:{region}")
        units = [u for u in portal.published.units(chosen).values()
                 if portal.region_of(u.level, u.code) == region]
        name = portal.published.region_names().get(region, f"Region {region}")
        return overview(request, session, who, sorted(units, key=lambda u: (u.level, u.code)),
                        chosen, name, region=region)

    @app.get("/national")
    @app.get("/national/{month}")
    def national_page(request: Request, month: str | None = None):
        session, who = current(request)
        if session is None:
            return login_first(request)
        if who.role != "national":
            return denied(request, who, session, "national:DK")
        chosen = month_or_latest(month)
        if chosen is None:
            return not_found(request, who, session, None)
        units = sorted(portal.published.units(chosen).values(),
                       key=lambda u: (u.region or "", u.level, u.code))
        return overview(request, session, who, units, chosen, "Hele landet")

    # -- the audit round ----------------------------------------------------------------
    def commentable_units(who: Identity) -> list[str]:
        if who.role == "unit" and who.unit:
            return [who.unit]
        if who.role in ("region", "national"):
            units = [u.key for u in portal.published.all_units().values()
                     if who.role == "national" or portal.region_of(u.level, u.code) == who.region]
            regions = ([f"region:{who.region}"] if who.role == "region" else
                       [f"region:{r}" for r in sorted(portal.published.region_names())])
            return regions + sorted(units)
        return []

    @app.get("/audit")
    def audit_latest(request: Request):
        session, who = current(request)
        if session is None:
            return login_first(request)
        years = [w["year"] for w in audit_round.windows(portal.store) if not w["closed_at"]]
        months = portal.published.months()
        year = years[0] if years else (int(months[-1][:4]) if months else 2000)
        return RedirectResponse(f"/audit/{year}", status_code=303)

    @app.get("/audit/{year}")
    def audit_index(request: Request, year: str):
        session, who = current(request)
        if session is None:
            return login_first(request)
        if not re.fullmatch(r"2[0-9]{3}", year):
            return not_found(request, who, session, None)
        year = int(year)
        units = commentable_units(who)
        if not units:
            return denied(request, who, session, None)
        if len(units) == 1:
            level, _, code = units[0].partition(":")
            return RedirectResponse(f"/audit/{year}/{level}/{code}", status_code=303)
        portal.log(request, who.username, "view", None, "200")
        return render(request, "audit_index.html.j2", session=session, who=who, year=year,
                      units=units, open=audit_round.window_open(year, portal.store))

    def audit_guard(request, year, level, code):
        session, who = current(request)
        key = f"{level}:{code}"
        if session is None:
            return None, None, login_first(request, key)
        if not (LEVEL.match(level) and CODE.match(code)) or not re.fullmatch(r"2[0-9]{3}",
                                                                               year):
            return session, who, not_found(request, who, session, key)
        if not authorisation.may_read_comments(who, key, portal.region_of):
            return session, who, denied(request, who, session, key)
        return session, who, None

    @app.get("/audit/{year}/{level}/{code}")
    def audit_unit(request: Request, year: str, level: str, code: str, saved: str = ""):
        session, who, refused = audit_guard(request, year, level, code)
        if refused:
            return refused
        year = int(year)
        key = f"{level}:{code}"
        rows = []
        if level != "region":
            months = [m for m in portal.published.months_of(level, code) if m[:4] == str(year)]
            if months:
                delivery = portal.published.delivery(level, code, months[-1])
                rows = pages.tables(delivery)["year_to_date"].to_dicts() if delivery else []
        else:
            months = [m for m in portal.published.months() if m[:4] == str(year)]
            units = [u for u in (portal.published.units(months[-1]).values() if months else [])
                     if u.region == code]
            if units:
                delivery = portal.published.delivery(units[0].level, units[0].code, months[-1])
                rows = [{"indikator": r["indikator"], "titel": r["titel"],
                         "resultat": r["region"], "standard": r["standard"]}
                        for r in pages.tables(delivery)["year_to_date"].to_dicts()]
        portal.log(request, who.username, "view", key, "200")
        return render(request, "audit.html.j2", session=session, who=who, year=year, key=key,
                      rows=rows, comments=audit_round.comments_for_year(year, portal.store,
                                                                        {key}),
                      open=audit_round.window_open(year, portal.store), saved=saved,
                      may_comment=authorisation.may_comment(who, key, portal.region_of),
                      action=f"/audit/{year}/{level}/{code}")

    @app.post("/audit/{year}/{level}/{code}")
    async def audit_comment(request: Request, year: str, level: str, code: str):
        session, who, refused = audit_guard(request, year, level, code)
        if refused:
            return refused
        year = int(year)
        key = f"{level}:{code}"
        form, refused = await checked_form(request, session, who, key)
        if refused:
            return refused
        if not authorisation.may_comment(who, key, portal.region_of):
            return denied(request, who, session, key)
        indicator = str(form.get("indicator_id") or "")
        if not re.fullmatch(r"[A-Z][A-Z0-9_]{0,40}", indicator):
            return not_found(request, who, session, key)
        try:
            audit_round.add_comment(portal.store, year, key, indicator, who.username,
                                    str(form.get("text") or ""))
        except (ValueError, PermissionError) as problem:
            portal.log(request, who.username, "comment", key, "refused")
            return render(request, "error.html.j2", status=409, session=session, who=who,
                          message=str(problem))
        portal.log(request, who.username, "comment", key, "saved")
        return RedirectResponse(f"/audit/{year}/{level}/{code}?saved=1", status_code=303)

    # -- administration -----------------------------------------------------------------
    @app.get("/admin")
    def admin(request: Request):
        session, who = current(request)
        if session is None:
            return login_first(request)
        if not who.is_admin:
            return denied(request, who, session, None)
        portal.log(request, who.username, "admin", None, "200")
        users = portal.identity.users() if hasattr(portal.identity, "users") else []
        return render(request, "admin.html.j2", session=session, who=who, users=users,
                      windows=audit_round.windows(portal.store),
                      log=list(reversed(access_log.rows(portal.store)[-200:])))

    @app.post("/admin/rounds")
    async def admin_rounds(request: Request):
        session, who, form, refused = await posted(request)
        if refused:
            return refused
        if not who.is_admin:
            return denied(request, who, session, None)
        try:
            year = int(str(form.get("year")))
            assert 2000 <= year <= 2999
        except (ValueError, AssertionError):
            return not_found(request, who, session, None)
        if form.get("action") == "close":
            audit_round.close_window(portal.store, year, who.username)
        else:
            audit_round.open_window(portal.store, year, who.username)
        portal.log(request, who.username, "admin", None, f"round {year} {form.get('action')}")
        return RedirectResponse("/admin", status_code=303)

    @app.api_route("/{rest:path}",  # every method: a HEAD on another unit is logged too
                   methods=["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
    def anything_else(request: Request, rest: str):
        session, who = current(request)
        if session is None:
            return login_first(request)
        return not_found(request, who, session, None)

    return app


class SecurityHeaders:
    """Plain ASGI middleware (cheaper than Starlette's BaseHTTPMiddleware): no-store on
    every page, a content security policy, no framing, no sniffing, HSTS over HTTPS."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        static = scope["path"].startswith("/static/")
        https = scope.get("scheme") == "https"

        async def sending(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                extra = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                         (b"referrer-policy", b"same-origin")]
                if b"content-security-policy" not in names:
                    extra.append((b"content-security-policy", STRICT_CSP.encode()))
                if not static:
                    headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                    extra += [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]
                if https:
                    extra.append((b"strict-transport-security", b"max-age=31536000"))
                message = {**message, "headers": headers + extra}
            await send(message)

        await self.app(scope, receive, sending)


def _https(request: Request) -> bool:
    return request.url.scheme == "https"


def _inject(page: str, head: str, body: str) -> str:
    """A published page with a <base> (its relative links resolve under the unit's month)
    and the portal's bar (months, Excel, logout)."""
    found = re.search(r"<head[^>]*>", page, re.IGNORECASE)
    page = page[:found.end()] + head + page[found.end():] if found else head + page
    found = re.search(r"<body[^>]*>", page, re.IGNORECASE)
    return page[:found.end()] + body + page[found.end():] if found else body + page


def _media(name: str) -> str:
    return {"html": "text/html; charset=utf-8", "js": "text/javascript",
            "csv": "text/csv; charset=utf-8", "json": "application/json",
            "txt": "text/plain; charset=utf-8", "pdf": "application/pdf",
            "png": "image/png", "svg": "image/svg+xml", "parquet": "application/octet-stream",
            "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            }[name.rsplit(".", 1)[-1]]
