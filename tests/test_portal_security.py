"""The portal's security suite, one case per test: every route as every role for a unit it
may not see; download URLs tampered with; forms without the anti-forgery token; a cookie
reused after logout; brute-force lockout; no CPR number or pseudonym anywhere.

Failures name paths and counts, never a number that could be a CPR number.
"""

from __future__ import annotations

import http.client
import io
import re
import zipfile

import httpx
import pytest

from tests import portal_support as ps

MONTH = "2025-06"
# role's user -> units that user may not see (level, code), and a region it may not see
FORBIDDEN = {
    "unit_h": [("hospital", "H102"), ("municipality", "101")],
    "unit_m": [("hospital", "H101"), ("municipality", "147")],
    "region_n": [("hospital", "H401"), ("municipality", "101")],
    "admin": [("hospital", "H101"), ("municipality", "851")],
}
FORBIDDEN_REGION = {"unit_h": "1081", "unit_m": "1084", "region_n": "1084", "admin": "1081"}
ROUTES = [
    ("GET", "/units/{level}/{code}"),
    ("GET", "/units/{level}/{code}/" + MONTH),
    ("GET", "/units/{level}/{code}/2025-05"),
    ("GET", "/units/{level}/{code}/" + MONTH + "/kvalitet_{level}_{code}_" + MONTH + ".xlsx"),
    ("GET", "/units/{level}/{code}/" + MONTH + "/page_this_month.csv"),
    ("GET", "/units/{level}/{code}/" + MONTH + "/page_records_not_meeting.csv"),
    ("GET", "/units/{level}/{code}/" + MONTH + "/page_rejected_rows.csv"),
    ("GET", "/units/{level}/{code}/" + MONTH + "/results.csv"),
    ("GET", "/units/{level}/{code}/" + MONTH + "/records_not_meeting.csv"),
    ("GET", "/units/{level}/{code}/" + MONTH + "/quarantined_rows.csv"),
    ("GET", "/units/{level}/{code}/" + MONTH + "/run_charts.html"),
    ("GET", "/audit/2025/{level}/{code}"),
    ("POST", "/audit/2025/{level}/{code}"),
]
CASES = [(user, level, code, method, route) for user, units in FORBIDDEN.items()
         for level, code in units for method, route in ROUTES]


@pytest.fixture(scope="module")
def portal(sample_run, tmp_path_factory):
    return ps.server(sample_run, tmp_path_factory.mktemp("portal"))


@pytest.fixture(scope="module")
def clients(portal):
    return {user: ps.session(portal["url"], user) for user in (*FORBIDDEN, "national")}


def _markers(portal, level: str, code: str) -> list[str]:
    """What the unit's data would show: its name and its record ids."""
    import polars as pl

    folder = portal["output"] / "reports" / "monthly" / MONTH / f"{level}_{code}"
    results = pl.read_parquet(folder / "results.parquet")
    name = results.filter(pl.col("level") == level)["unit_name"][0]
    records = pl.read_csv(folder / "records_not_meeting.csv", infer_schema=False)
    return [name, *records["record_id"].to_list()[:20]]


@pytest.mark.parametrize("user,level,code,method,route", CASES,
                         ids=[f"{u}-{lv}:{c}-{m}-{r.split('{code}')[-1] or '/'}"
                              for u, lv, c, m, r in CASES])
def test_a_route_for_a_unit_the_role_may_not_see(portal, clients, user, level, code, method,
                                                 route):
    client = clients[user]
    path = route.format(level=level, code=code)
    if method == "GET":
        answer = client.get(path)
    else:
        token = ps.csrf(client.get(ps.session_start(client)).text)
        answer = client.post(path, data={"csrf_token": token, "indicator_id": "HIP_01",
                                         "text": "a comment on a unit not mine"})
    assert answer.status_code in (403, 404)
    body = answer.content.decode("utf-8", "replace")
    leaked = [m for m in _markers(portal, level, code) if m in body]
    assert not leaked
    assert "kvalitet_" not in answer.headers.get("content-disposition", "")
    row = [r for r in ps.log_rows(portal["db"]) if r["username"] == user][-1]
    assert (row["action"], row["path"], row["unit"]) == ("denied", path, f"{level}:{code}")
    if method == "POST":
        from reports.portal.audit_round import comments_for_year
        from reports.portal.store import Store

        assert not [c for c in comments_for_year(2025, Store(portal["db"]))
                    if c["unit"] == f"{level}:{code}" and c["author"] == user]


@pytest.mark.parametrize("user", sorted(FORBIDDEN))
def test_an_overview_the_role_may_not_see(portal, clients, user):
    client = clients[user]
    for path in (f"/regions/{FORBIDDEN_REGION[user]}", f"/regions/{FORBIDDEN_REGION[user]}/"
                 + MONTH, "/national", "/national/" + MONTH):
        answer = client.get(path)
        assert answer.status_code in (403, 404), path
        assert "data-unit=" not in answer.text
        row = [r for r in ps.log_rows(portal["db"]) if r["username"] == user][-1]
        assert (row["action"], row["path"]) == ("denied", path)


@pytest.mark.parametrize("user", ["unit_h", "unit_m", "region_n", "national"])
def test_only_an_admin_reads_the_access_log(portal, clients, user):
    answer = clients[user].get("/admin")
    assert answer.status_code == 403 and "Adgangslog" not in answer.text
    token = ps.csrf(clients[user].get(ps.session_start(clients[user])).text)
    refused = clients[user].post("/admin/rounds", data={"csrf_token": token, "year": "2031",
                                                        "action": "open"})
    assert refused.status_code == 403
    from reports.portal.audit_round import window_open

    assert not window_open(2031, portal["db"])


@pytest.mark.parametrize("path", [
    "/units/hospital/H101", "/units/hospital/H101/2025-06",
    "/units/hospital/H101/2025-06/kvalitet_hospital_H101_2025-06.xlsx",
    "/units/hospital/H101/2025-06/results.csv", "/regions/1081", "/national", "/admin",
    "/audit/2025/hospital/H101", "/audit/abc", "/static/plotly.min.js", "/", "/anything/else"])
def test_without_a_session_every_page_goes_to_login(portal, path):
    answer = httpx.get(portal["url"] + path)
    assert answer.status_code in (303, 401)
    if answer.status_code == 303:
        assert answer.headers["location"] == "/login"
    assert "Aalborg" not in answer.text and "record_id" not in answer.text
    row = ps.log_rows(portal["db"])[-1]
    assert (row["action"], row["path"], row["username"]) == ("denied", path, "")


TAMPERED = [
    "/units/hospital/H102/2025-06/results.csv",
    "/units/hospital/h102/2025-06/results.csv",
    "/units/Hospital/H102/2025-06/results.csv",
    "/units/hospital/H101/2025-06/../../H102/2025-06/results.csv",
    "/units/hospital/H101/../H102/2025-06/results.csv",
    "/units/hospital/H101/2025-06/..%2f..%2fH102%2f2025-06%2fresults.csv",
    "/units/hospital/H101/2025-06/..%2F..%2F..%2F2025-06%2Fhospital_H102%2Fresults.csv",
    "/units/hospital/H101/2025-06/%2e%2e%2f%2e%2e%2fH102%2f2025-06%2fresults.csv",
    "/units/hospital/H101/2025-06/%2e%2e/hospital_H102/results.csv",
    "/units/hospital/H101/%2e%2e/%2e%2e/hospital/H102/2025-06/results.csv",
    "/units/hospital/H101/2025-06/%252e%252e%252fhospital_H102%252fresults.csv",
    "/units/hospital/H101/2025-06/%252e%252e%252f%252e%252e%252fkvalitet.duckdb",
    "/units/hospital/H101/2025-06/..%5c..%5chospital_H102%5cresults.csv",
    "/units/hospital/H101/2025-06/..%255c..%255chospital_H102%255cresults.csv",
    "/units/hospital/H101/2025-06/....//....//hospital_H102/results.csv",
    "/units/hospital/H101%2f..%2fH102/2025-06/results.csv",
    "/units/hospital/H101%252f..%252fH102/2025-06/results.csv",
    "/units/hospital/H101/..%2f..%2f..%2f..%2fkvalitet.duckdb",
    "/units/hospital/H101/2025-06/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fkvalitet.duckdb",
    "/units/hospital/H101/2025-06/%2fetc%2fpasswd",
    "/units/hospital/H101/2025-06/results.csv%00.png",
    "/units/hospital/H101/2025-06/.results.csv",
    "/units/hospital/H101/2025-06/hospital_H102",
    "/units/hospital/H101/..%2f2025-05",
    "/units/hospital/H102%2f..%2fH101/2025-06/results.csv",
    "/units/hospital/H101/2025-06/index.html/../../../H102/2025-06/results.csv",
    "/units/hospital/H101/2025-06/~/../hospital_H102/results.csv",
]


@pytest.mark.parametrize("path", TAMPERED)
def test_a_tampered_download_url_gets_nothing_of_another_unit(portal, clients, path):
    """Raw requests (no client normalises the path) as the user of hospital H101."""
    cookie = clients["unit_h"].cookies.get("kvalitet_session")
    host = portal["url"].removeprefix("http://")
    connection = http.client.HTTPConnection(host, timeout=60)
    connection.putrequest("GET", path, skip_accept_encoding=True)
    connection.putheader("Cookie", f"kvalitet_session={cookie}")
    connection.endheaders()
    answer = connection.getresponse()
    body = answer.read().decode("utf-8", "replace")
    connection.close()
    assert answer.status in (400, 403, 404)
    leaked = [m for m in _markers(portal, "hospital", "H102") if m in body]
    assert not leaked
    assert "DUCK" not in body and "root:" not in body and "unit_code," not in body


def _post_without_token(client, path, data):
    return client.post(path, data=data)


def test_logout_without_the_token_is_refused(portal):
    client = ps.session(portal["url"], "unit_h")
    answer = client.post("/logout", data={})
    assert answer.status_code == 403
    assert client.get("/units/hospital/H101").status_code == 200  # still logged in
    forged = client.post("/logout", data={"csrf_token": "forged"})
    assert forged.status_code == 403


def test_a_comment_without_the_token_is_refused(portal):
    from reports.portal.audit_round import comments_for_year, open_window
    from reports.portal.store import Store

    open_window(Store(portal["db"]), 2024, "test")
    client = ps.session(portal["url"], "unit_h")
    answer = client.post("/audit/2024/hospital/H101", data={"indicator_id": "HIP_01",
                                                            "text": "forged"})
    assert answer.status_code == 403
    other = ps.session(portal["url"], "unit_m")  # another session's token does not fit
    token = ps.csrf(other.get("/units/municipality/101").text)
    crossed = client.post("/audit/2024/hospital/H101", data={
        "csrf_token": token, "indicator_id": "HIP_01", "text": "forged"})
    assert crossed.status_code == 403
    assert not [c for c in comments_for_year(2024, Store(portal["db"])) if c["text"] == "forged"]


def test_an_admin_form_without_the_token_is_refused(portal):
    from reports.portal.audit_round import window_open

    client = ps.session(portal["url"], "admin")
    answer = client.post("/admin/rounds", data={"year": "2030", "action": "open"})
    assert answer.status_code == 403 and not window_open(2030, portal["db"])


def test_a_cross_site_post_is_refused_even_with_a_token(portal):
    client = ps.session(portal["url"], "unit_h")
    token = ps.csrf(client.get("/units/hospital/H101").text)
    answer = client.post("/logout", data={"csrf_token": token},
                         headers={"Origin": "https://evil.example"})
    assert answer.status_code == 403
    assert client.get("/units/hospital/H101").status_code == 200


def test_a_login_without_the_token_is_refused(portal):
    client = httpx.Client(base_url=portal["url"])
    answer = client.post("/login", data={"username": "unit_h", "password": ps.PASSWORD})
    assert answer.status_code == 403 and "kvalitet_session" not in client.cookies
    forged = client.post("/login", data={"username": "unit_h", "password": ps.PASSWORD,
                                         "csrf_token": "1.2.3"})
    assert forged.status_code == 403 and "kvalitet_session" not in client.cookies


def test_a_session_cookie_reused_after_logout_is_dead(portal):
    client = ps.session(portal["url"], "unit_m")
    cookie = client.cookies.get("kvalitet_session")
    token = ps.csrf(client.get("/units/municipality/101").text)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    replay = httpx.Client(base_url=portal["url"], cookies={"kvalitet_session": cookie})
    for path in ("/units/municipality/101", "/units/municipality/101/2025-06/results.csv",
                 "/units/municipality/101/2025-06/kvalitet_municipality_101_2025-06.xlsx"):
        answer = replay.get(path)
        assert answer.status_code in (303, 401) and "København" not in answer.text
    assert replay.post("/logout", data={"csrf_token": token}).status_code == 401


def test_brute_force_locks_the_username(portal):
    for attempt in range(10):
        _, answer = ps.login(portal["url"], "locked_out", f"wrong password {attempt:02d}")
        assert answer.status_code == 401
    _, right = ps.login(portal["url"], "locked_out")
    assert right.status_code in (401, 429) and "kvalitet_session" not in right.cookies
    _, again = ps.login(portal["url"], "locked_out")
    assert again.status_code in (401, 429)
    rows = [r for r in ps.log_rows(portal["db"]) if r["username"] == "locked_out"]
    assert [r["outcome"] for r in rows[-12:]] == ["failure"] * 10 + ["locked"] * 2
    _, other = ps.login(portal["url"], "unit_h")  # another username is not locked
    assert other.status_code == 303


def test_the_lockout_lasts_15_minutes(tmp_path, monkeypatch):
    """The clock is moved, not waited for."""
    from reports.portal import identity
    from reports.portal.store import Store

    now = [1_000_000.0]
    monkeypatch.setattr(identity.time, "time", lambda: now[0])
    users = identity.LocalPasswords(Store(tmp_path / "p.sqlite3"))
    users.add_user("u", ["national"], ps.PASSWORD)
    for _ in range(9):
        now[0] += 60  # nine failures over nine minutes
        assert users.authenticate("u", "wrong-password-x")[0] is identity.Outcome.FAILED
    assert users.authenticate("u", ps.PASSWORD)[0] is identity.Outcome.OK  # clears them
    for _ in range(10):
        now[0] += 30
        users.authenticate("u", "wrong-password-x")
    assert users.authenticate("u", ps.PASSWORD)[0] is identity.Outcome.LOCKED
    now[0] += 14 * 60
    assert users.authenticate("u", ps.PASSWORD)[0] is identity.Outcome.LOCKED
    now[0] += 61
    assert users.authenticate("u", ps.PASSWORD)[0] is identity.Outcome.OK
    # failures spread wider than the window never lock
    for _ in range(30):
        now[0] += 120  # at most eight in any 15 minutes
        users.authenticate("u", "wrong-password-x")
    assert users.authenticate("u", ps.PASSWORD)[0] is identity.Outcome.OK


# -- no CPR number, no pseudonym ---------------------------------------------------------------
def _sample_cprs() -> set[str]:
    """Every CPR number of the sample input (its ragged rows too)."""
    import csv

    found = set()
    for path in (ps.ROOT / "sample_data" / "input").glob("*/*.csv"):
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("cp1252")
        head = text.split("\n", 1)[0]
        rows = list(csv.reader(io.StringIO(text),
                               delimiter=";" if head.count(";") > head.count(",") else ","))
        header = [h.strip().lower() for h in rows[0]] if rows else []
        if "cpr" not in header:
            continue
        at = header.index("cpr")
        found |= {re.sub(r"[- ]", "", r[at]) for r in rows[1:] if len(r) > at}
    return {v for v in found if len(v) == 10 and v.isdigit()}


def _pseudonyms(sample_run) -> set[str]:
    import duckdb

    with duckdb.connect(str(sample_run["output"] / "kvalitet.duckdb"), read_only=True) as con:
        return {r[0] for r in con.sql("SELECT DISTINCT pseudonym FROM stroke UNION SELECT "
                                      "DISTINCT pseudonym FROM hipfracture").fetchall()}


def _count(text: str, cprs: set[str], pseudonyms: set[str]) -> tuple[int, int]:
    windows = {re.sub(r"[- ]", "", m) for m in re.findall(r"(?=(\d{6}[- ]?\d{4}))", text)}
    hexes = set(re.findall(r"[0-9a-fA-F]{64}", text))
    return len(windows & cprs), len({h.lower() for h in hexes} & pseudonyms)


def _text(answer) -> str:
    if answer.content[:2] == b"PK":  # a workbook: every XML part
        with zipfile.ZipFile(io.BytesIO(answer.content)) as book:
            return "".join(book.read(n).decode("utf-8", "replace") for n in book.namelist())
    return answer.content.decode("utf-8", "replace")


def test_no_cpr_number_or_pseudonym_in_any_page_download_or_log_row(portal, clients, sample_run):
    cprs, pseudonyms = _sample_cprs(), _pseudonyms(sample_run)
    assert len(cprs) > 1000 and len(pseudonyms) > 1000  # the search means something
    # what a user could type: a sample CPR number as a username and in a URL, a pseudonym too
    typed_cpr, typed_pseudonym = sorted(cprs)[0], sorted(pseudonyms)[0]
    ps.login(portal["url"], typed_cpr, "not the password!")
    ps.login(portal["url"], typed_cpr[:6] + "-" + typed_cpr[6:], "not the password!")
    clients["unit_h"].get(f"/units/hospital/H101/2025-06/{typed_cpr}.csv")
    clients["unit_h"].get(f"/units/hospital/{typed_pseudonym}")
    clients["unit_h"].get(f"/units/{typed_cpr}/H101")
    # every page and download each role can reach
    client = clients["national"]
    paths = ["/national", "/regions/1081", "/audit/2025/hospital/H101", "/audit/2025"]
    for month in ps.MONTHS:
        for unit in ("hospital/H101", "hospital/H401", "municipality/101", "municipality/851"):
            page = client.get(f"/units/{unit}/{month}").text
            paths.append(f"/units/{unit}/{month}")
            paths += [f"/units/{unit}/{month}/{href}" for href in set(re.findall(
                r'href="/units/[a-z]+/[A-Za-z0-9]+/\d{4}-\d\d/([^"/]+)"', page))]
    downloads = [p for p in paths if p.count("/") == 5]
    assert len(downloads) > 40 and any(p.endswith(".xlsx") for p in downloads)
    found = [0, 0]
    for path in paths:
        answer = client.get(path)
        assert answer.status_code == 200, path
        cpr, pseudonym = _count(_text(answer), cprs, pseudonyms)
        found[0] += cpr
        found[1] += pseudonym
    admin_page = clients["admin"].get("/admin").text
    log = ps.cli(["portal", "audit", "--format", "json"], portal["db"]).stdout
    rows = "\n".join("|".join(r.values()) for r in ps.log_rows(portal["db"]))
    for text in (admin_page, log, rows, portal["log"].read_text()):
        cpr, pseudonym = _count(text, cprs, pseudonyms)
        found[0] += cpr
        found[1] += pseudonym
    assert found == [0, 0]  # counts only: the numbers themselves are never printed
    assert rows.count("<cpr hidden>") >= 3 and "<hidden>" in rows


def test_no_password_or_session_token_in_the_log(portal):
    client = ps.session(portal["url"], "unit_h")
    token = client.cookies.get("kvalitet_session")
    client.get("/units/hospital/H101")
    rows = "\n".join("|".join(r.values()) for r in ps.log_rows(portal["db"]))
    assert ps.PASSWORD not in rows and token not in rows
    from reports.portal.store import Store

    stored = [r[0] for r in Store(portal["db"]).execute("SELECT token_hash FROM sessions")]
    assert token not in stored  # only a hash of the cookie is kept


# -- invariants ----------------------------------------------------------------------------------
from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(name=st.text(alphabet=st.sampled_from(list("./\\%2e5cfHabc_-~:\x00 ")), max_size=30)
       | st.text(max_size=30))
def test_a_download_name_never_leaves_its_delivery_folder(tmp_path_factory, name):
    from reports.portal.published import Published

    output = tmp_path_factory.getbasetemp() / "names"
    folder = output / "reports" / "monthly" / "2025-06" / "hospital_H101"
    if not folder.exists():
        folder.mkdir(parents=True)
        (folder / "results.csv").write_text("x")
        (output / "reports" / "monthly" / "2025-06" / "hospital_H102").mkdir()
        (output / "reports" / "monthly" / "2025-06" / "hospital_H102" / "results.csv").write_text("y")
        (output / "kvalitet.duckdb").write_text("z")
    found = Published(output).file("hospital", "H101", "2025-06", name)
    assert found is None or (found.parent == folder and found.name == name)


@settings(max_examples=200, deadline=None)
@given(level=st.sampled_from(["hospital", "municipality", "clinic"]),
       code=st.from_regex(r"[A-Z0-9]{1,6}", fullmatch=True),
       own=st.from_regex(r"[A-Z0-9]{1,6}", fullmatch=True),
       unit_region=st.sampled_from(["1081", "1082", None]),
       user_region=st.sampled_from(["1081", "1082"]))
def test_who_may_see_a_unit(level, code, own, unit_region, user_region):
    from reports.portal.authorisation import may_comment, may_see_unit
    from reports.portal.identity import Identity

    region_of = lambda lv, c: unit_region  # noqa: E731
    unit_user = Identity("u", "unit", unit=f"{level}:{own}")
    region_user = Identity("r", "region", region=user_region)
    admin = Identity("a", "admin", is_admin=True)
    assert may_see_unit(unit_user, level, code, region_of) == (code == own)
    assert may_see_unit(region_user, level, code, region_of) == (unit_region == user_region)
    assert not may_see_unit(admin, level, code, region_of)
    assert may_see_unit(Identity("n", "national"), level, code, region_of)
    for who in (unit_user, region_user, admin):  # commenting never reaches beyond seeing
        if may_comment(who, f"{level}:{code}", region_of):
            assert may_see_unit(who, level, code, region_of)


@settings(max_examples=200, deadline=None)
@given(prefix=st.text(max_size=20), suffix=st.text(max_size=20),
       day=st.dates(), serial=st.integers(0, 9999), hexes=st.binary(min_size=32, max_size=32))
def test_scrub_hides_cpr_numbers_and_pseudonyms(prefix, suffix, day, serial, hexes):
    from pipelines.privacy import could_be_cpr, cpr_spans
    from reports.portal.scrub import scrub

    digits = f"{day:%d%m%y}{serial:04d}"
    if not could_be_cpr(digits):
        return
    for form in (digits, digits[:6] + "-" + digits[6:]):
        cleaned = scrub(prefix + form + " " + hexes.hex() + suffix)
        assert not cpr_spans(cleaned) and hexes.hex() not in cleaned
