"""The reporting portal from outside: the commands, login, the unit page and its
downloads, the overviews, the audit round, atomic publication."""

from __future__ import annotations

import hashlib
import io
import re
import threading
from pathlib import Path

import polars as pl
import pytest

from tests import portal_support as ps


@pytest.fixture(scope="module")
def portal(sample_run, tmp_path_factory):
    return ps.server(sample_run, tmp_path_factory.mktemp("portal"))


def _tables(page: str) -> dict[str, list[list[str]]]:
    """The page's tables by their data-table name, as cell text."""
    import html

    out = {}
    for name, body in re.findall(r'<table data-table="([a-z_0-9]+)">(.*?)</table>', page, re.S):
        rows = []
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
            rows.append([html.unescape(c) for c in re.findall(r"<t[hd]>(.*?)</t[hd]>", row,
                                                               re.S)])
        out[name] = rows
    return out


# -- commands --------------------------------------------------------------------------------
def test_user_add_refuses_a_short_password(tmp_path):
    done = ps.cli(["portal", "user", "add", "shorty", "--role", "national", "--password-stdin"],
                  tmp_path / "p.sqlite3", "elevenchars\n")
    assert done.returncode == 2
    assert "12" in done.stderr
    listed = ps.cli(["portal", "user", "list"], tmp_path / "p.sqlite3")
    assert "shorty" not in listed.stdout


def test_user_add_refuses_an_unknown_unit_and_region(tmp_path):
    db = tmp_path / "p.sqlite3"
    unit = ps.cli(["portal", "user", "add", "x", "--role", "unit", "--unit", "hospital:H999",
                   "--password-stdin"], db, ps.PASSWORD + "\n")
    assert unit.returncode == 2 and "unknown unit" in unit.stderr
    region = ps.cli(["portal", "user", "add", "y", "--role", "region", "--region", "9999",
                     "--password-stdin"], db, ps.PASSWORD + "\n")
    assert region.returncode == 2 and "unknown region" in region.stderr
    known = ps.cli(["portal", "user", "add", "z", "--role", "unit", "--unit",
                    "municipality:101", "--password-stdin"], db, ps.PASSWORD + "\n")
    assert known.returncode == 0, known.stderr


def test_a_password_is_never_an_argument(tmp_path):
    done = ps.cli(["portal", "user", "add", "x", "--role", "national", "--password",
                   ps.PASSWORD], tmp_path / "p.sqlite3", "")
    assert done.returncode == 2


def test_user_list_and_remove(tmp_path):
    db = tmp_path / "p.sqlite3"
    for name, role in (("anna", "national"), ("boss", "admin")):
        assert ps.cli(["portal", "user", "add", name, "--role", role, "--password-stdin"], db,
                      ps.PASSWORD + "\n").returncode == 0
    listed = ps.cli(["portal", "user", "list"], db).stdout.splitlines()
    assert [line.split("\t")[0] for line in listed] == ["anna", "boss"]
    assert "national" in listed[0] and "admin" in listed[1]
    assert ps.cli(["portal", "user", "remove", "anna"], db).returncode == 0
    assert [line.split("\t")[0] for line in ps.cli(["portal", "user", "list"], db)
            .stdout.splitlines()] == ["boss"]
    assert ps.cli(["portal", "user", "remove", "anna"], db).returncode == 1


def test_the_database_file_is_readable_by_its_owner_only(tmp_path):
    db = tmp_path / "p.sqlite3"
    ps.cli(["portal", "user", "add", "o", "--role", "national", "--password-stdin"], db,
           ps.PASSWORD + "\n")
    assert db.stat().st_mode & 0o077 == 0
    from reports.portal.store import Store

    stored = Store(db).execute("SELECT password_hash FROM users").fetchone()[0]
    assert stored.startswith("$argon2id$") and ps.PASSWORD not in stored


# -- HTTP --------------------------------------------------------------------------------------
def test_health_needs_no_login(portal):
    import httpx

    assert httpx.get(portal["url"] + "/health").status_code == 200


def test_login_sets_a_safe_cookie_and_goes_to_the_start_page(portal):
    client, answer = ps.login(portal["url"], "unit_h")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/units/hospital/H101"
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and ("samesite=lax" in cookie or "samesite=strict" in cookie)
    assert "secure" not in cookie  # plain HTTP on loopback; HTTPS behind a proxy sets it
    for user, start in (("region_n", "/regions/1081"), ("national", "/national"),
                        ("admin", "/admin")):
        assert ps.login(portal["url"], user)[1].headers["location"] == start


def test_a_new_session_id_at_every_login(portal):
    first, _ = ps.login(portal["url"], "unit_h")
    second, _ = ps.login(portal["url"], "unit_h")
    a, b = first.cookies.get("kvalitet_session"), second.cookies.get("kvalitet_session")
    assert a and b and a != b
    # a session id chosen by someone else is never taken on
    import httpx

    planted = httpx.Client(base_url=portal["url"], cookies={"kvalitet_session": "chosen-id"})
    assert planted.get("/units/hospital/H101").status_code == 303


def test_unit_page_shows_the_units_own_month(portal):
    client = ps.session(portal["url"], "unit_h")
    page = client.get("/units/hospital/H101")
    assert page.status_code == 200
    assert "2025-06" in page.text and "Aalborg Universitetshospital" in page.text
    tables = _tables(page.text)
    assert set(tables) >= {"this_month", "year_to_date", "last_12_months",
                           "records_not_meeting", "rejected_rows"}
    # the month's own numbers, checked against the published results (not the page's code)
    results = pl.read_parquet(portal["output"] / "reports" / "monthly" / "2025-06"
                              / "hospital_H101" / "results.parquet")
    own = results.filter(pl.col("level") == "hospital", pl.col("period") == "2025-06",
                         pl.col("period_type") == "month")
    header, *rows = tables["this_month"]
    by_id = {r[0]: dict(zip(header, r)) for r in rows}
    assert set(by_id) == set(own["indicator_id"].to_list())
    for row in own.iter_rows(named=True):
        assert by_id[row["indicator_id"]]["nævner"] == f"{row['denominator']:,}".replace(",", "\u00a0")
    # every record not meeting an indicator, with the indicator as its reason
    records = pl.read_csv(portal["output"] / "reports" / "monthly" / "2025-06"
                          / "hospital_H101" / "records_not_meeting.csv", infer_schema=False)
    shown = tables["records_not_meeting"]
    assert len(shown) - 1 == records.height
    assert {r[1] for r in shown[1:]} == set(records["record_id"].to_list())
    # the reason in words, as the pipeline published it beside each record
    assert sorted((r[1], r[-1]) for r in shown[1:]) == sorted(
        zip(records["record_id"].to_list(), records["reason"].to_list()))


def test_an_earlier_month_and_a_month_never_delivered(portal):
    client = ps.session(portal["url"], "unit_h")
    earlier = client.get("/units/hospital/H101/2025-05")
    assert earlier.status_code == 200 and "månedlig levering 2025-05" in earlier.text
    assert client.get("/units/hospital/H101/2024-01").status_code == 404
    assert client.get("/units/hospital/H101/2025-13").status_code == 404


def test_downloads_hold_exactly_what_the_page_shows(portal):
    import openpyxl

    client = ps.session(portal["url"], "unit_h")
    page = client.get("/units/hospital/H101/2025-06").text
    tables = _tables(page)
    workbook = client.get("/units/hospital/H101/2025-06/kvalitet_hospital_H101_2025-06.xlsx")
    assert workbook.status_code == 200
    assert "attachment" in workbook.headers["content-disposition"]
    book = openpyxl.load_workbook(io.BytesIO(workbook.content))
    assert book.sheetnames == list(tables)
    for name, rows in tables.items():
        sheet = [[("" if v is None else str(v)) for v in row]
                 for row in book[name].iter_rows(values_only=True)]
        assert sheet == rows, name
        text = client.get(f"/units/hospital/H101/2025-06/page_{name}.csv").text
        import csv

        assert list(csv.reader(io.StringIO(text))) == rows, name


def test_published_files_are_served_and_an_index_page_wins(portal, tmp_path):
    client = ps.session(portal["url"], "unit_h")
    folder = portal["output"] / "reports" / "monthly" / "2025-05" / "hospital_H101"
    raw = client.get("/units/hospital/H101/2025-05/results.csv")
    assert raw.status_code == 200  # byte for byte as published (compared by digest: the file
    # holds long decimals that pytest would print)
    assert hashlib.sha256(raw.content).digest() == hashlib.sha256(
        (folder / "results.csv").read_bytes()).digest()
    index = folder / "index.html"
    index.write_text("<html><head><title>u</title></head><body><p id='own'>unit page</p>"
                     "<a href='results.csv'>results</a></body></html>", encoding="utf-8")
    try:
        page = client.get("/units/hospital/H101/2025-05?view=published")
        assert page.status_code == 200 and "id='own'" in page.text
        assert '<base href="/units/hospital/H101/2025-05/">' in page.text
        assert 'id="logout"' in page.text  # the portal's bar: logout and Excel
    finally:
        index.unlink()


def test_region_overview_lists_its_units_with_the_standard(portal):
    client = ps.session(portal["url"], "region_n")
    page = client.get("/regions/1081")
    assert page.status_code == 200
    units = re.findall(r'<tr data-unit="([^"]+)">', page.text)
    hospitals = pl.read_csv(ps.ROOT / "sample_data" / "reference" / "hospitals.csv",
                            infer_schema=False)
    municipalities = pl.read_csv(ps.ROOT / "sample_data" / "reference" / "municipalities.csv",
                                 infer_schema=False)
    delivered = {p.name.replace("_", ":", 1) for p in
                 (portal["output"] / "reports" / "monthly" / "2025-06").iterdir() if p.is_dir()}
    clinics = pl.read_csv(ps.ROOT / "sample_data" / "reference" / "clinics.csv",
                          infer_schema=False).join(municipalities, on="municipality_code")
    expected = ({f"hospital:{c}" for c in hospitals.filter(pl.col("region_code") == "1081")
                 ["hospital_code"]} | {f"municipality:{c}" for c in municipalities.filter(
                     pl.col("region_code") == "1081")["municipality_code"]}
                | {f"clinic:{c}" for c in clinics.filter(pl.col("region_code") == "1081")
                   ["clinic_code"]}) & delivered
    assert set(units) == expected and expected
    # one cell, recomputed here from the published year to date
    results = pl.read_parquet(portal["output"] / "reports" / "monthly" / "2025-06"
                              / "hospital_H101" / "results.parquet")
    ytd = results.filter(pl.col("level") == "hospital", pl.col("period_type") == "month",
                         pl.col("period").is_between(pl.lit("2025-01"), pl.lit("2025-06")),
                         pl.col("indicator_id") == "HIP_01")
    n, d = ytd["numerator"].sum(), ytd["denominator"].sum()
    want = "too_few" if d < 5 else ("met" if n / d >= 0.9 else "not_met")
    header = re.search(r'<table id="overview"><thead><tr>(.*?)</tr>', page.text, re.S).group(1)
    columns = re.findall(r"<th>(.*?)</th>", header)
    row = re.search(r'<tr data-unit="hospital:H101">(.*?)</tr>', page.text, re.S).group(1)
    cells = re.findall(r"<td(?: class=\"[a-z_]+\" data-status=\"([a-z_]+)\")?>", row)
    assert cells[columns.index("HIP_01")] == want
    assert 'href="/units/hospital/H101/2025-06"' in row


def test_national_overview_has_every_unit(portal):
    client = ps.session(portal["url"], "national")
    page = client.get("/national")
    units = set(re.findall(r'<tr data-unit="([^"]+)">', page.text))
    delivered = {p.name.replace("_", ":", 1) for p in
                 (portal["output"] / "reports" / "monthly" / "2025-06").iterdir() if p.is_dir()}
    assert units == delivered
    assert client.get("/units/municipality/851").status_code == 200


def test_logout_ends_the_session_on_the_server(portal):
    client = ps.session(portal["url"], "unit_h")
    cookie = client.cookies.get("kvalitet_session")
    page = client.get("/units/hospital/H101")
    answer = client.post("/logout", data={"csrf_token": ps.csrf(page.text)})
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    import httpx

    again = httpx.Client(base_url=portal["url"], cookies={"kvalitet_session": cookie})
    assert again.get("/units/hospital/H101").status_code in (303, 401)


def test_every_response_is_not_stored(portal):
    client = ps.session(portal["url"], "unit_h")
    for path in ("/units/hospital/H101", "/login",
                 "/units/hospital/H101/2025-06/kvalitet_hospital_H101_2025-06.xlsx"):
        assert client.get(path).headers["cache-control"] == "no-store"


def test_the_access_log_has_a_row_per_access(portal):
    client = ps.session(portal["url"], "unit_m")
    client.get("/units/municipality/101")
    client.get("/units/municipality/101/2025-06/page_this_month.csv")
    client.get("/units/municipality/147")
    page = client.get("/units/municipality/101").text
    client.post("/logout", data={"csrf_token": ps.csrf(page)})
    ps.login(portal["url"], "unit_m", "wrong password!!")
    rows = [r for r in ps.log_rows(portal["db"]) if r["username"] == "unit_m"]
    actions = [(r["action"], r["outcome"]) for r in rows[-7:]]
    assert actions == [("login", "success"), ("view", "200"), ("download", "200"),
                       ("denied", "403"), ("view", "200"), ("logout", "success"),
                       ("login", "failure")]
    denied = rows[-4]
    assert denied["unit"] == "municipality:147" and denied["path"] == "/units/municipality/147"
    assert all(r["client"] == "127.0.0.1" and r["time"].endswith("Z") for r in rows)
    printed = ps.cli(["portal", "audit", "--format", "json"], portal["db"])
    import json

    assert printed.returncode == 0
    assert [r for r in json.loads(printed.stdout) if r["username"] == "unit_m"] == rows
    as_csv = ps.cli(["portal", "audit", "--since", "2000-01-01"], portal["db"]).stdout
    assert as_csv.splitlines()[0] == "time,username,action,unit,path,outcome,client"
    assert ps.cli(["portal", "audit", "--since", "2999-01-01"], portal["db"]).stdout.strip() \
        == "time,username,action,unit,path,outcome,client"


def test_the_access_log_is_append_only(portal):
    import sqlite3

    con = sqlite3.connect(portal["db"])
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("UPDATE access_log SET outcome = 'x'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("DELETE FROM access_log")
    con.close()


# -- the audit round -------------------------------------------------------------------------
def test_audit_round_comments_reach_the_annual_report(portal, sample_run, tmp_path, monkeypatch):
    from reports.portal import audit_round
    from reports.portal.store import Store

    store = Store(portal["db"])
    unit = ps.session(portal["url"], "comment_unit")
    page = unit.get("/audit/2025/hospital/H101")
    assert page.status_code == 200 and "lukket" in page.text
    refused = unit.post("/audit/2025/hospital/H101", data={
        "csrf_token": ps.csrf(page.text), "indicator_id": "HIP_01", "text": "før vinduet"})
    assert refused.status_code == 409
    admin = ps.session(portal["url"], "admin")
    token = ps.csrf(admin.get("/admin").text)
    assert admin.post("/admin/rounds", data={"csrf_token": token, "year": "2025",
                                             "action": "open"}).status_code == 303
    assert audit_round.window_open(2025, store)
    page = unit.get("/audit/2025/hospital/H101")
    saved = unit.post("/audit/2025/hospital/H101", data={
        "csrf_token": ps.csrf(page.text), "indicator_id": "HIP_01",
        "text": "Personalemangel i foråret forklarer ventetiden."})
    assert saved.status_code == 303
    region = ps.session(portal["url"], "comment_region")
    page = region.get("/audit/2025/region/1081")
    assert region.post("/audit/2025/region/1081", data={
        "csrf_token": ps.csrf(page.text), "indicator_id": "STROKE_01",
        "text": "Regionen har åbnet et nyt apopleksiafsnit."}).status_code == 303
    comments = audit_round.comments_for_year(2025, store)
    assert [(c["unit"], c["indicator_id"], c["author"]) for c in comments] == [
        ("hospital:H101", "HIP_01", "comment_unit"), ("region:1081", "STROKE_01",
                                                       "comment_region")]
    assert all(re.match(r"\d{4}-\d\d-\d\dT", c["written_at"]) for c in comments)
    # visible to its region and national users, not to another unit
    assert "Personalemangel" in region.get("/audit/2025/hospital/H101").text
    assert "Personalemangel" in ps.session(portal["url"], "national").get(
        "/audit/2025/hospital/H101").text
    other = ps.session(portal["url"], "unit_m").get("/audit/2025/hospital/H101")
    assert other.status_code == 403 and "Personalemangel" not in other.text
    # the annual report: preliminary while open, with the comments
    from pipelines import steps

    monkeypatch.setenv("KVALITET_PORTAL_DB", str(portal["db"]))
    pages = steps.annual_reports(sample_run["output"] / "kvalitet.duckdb", tmp_path / "annual",
                                 2025, "da")
    pages = [Path(p) for p in pages]
    hip = next(p for p in pages if p.parent.name == "hipfracture").read_text(encoding="utf-8")
    stroke = next(p for p in pages if p.parent.name == "stroke").read_text(encoding="utf-8")
    assert 'data-preliminary="true"' in hip and "Foreløbig" in hip
    assert "Personalemangel i foråret" in hip and "Personalemangel" not in stroke
    assert "nyt apopleksiafsnit" in stroke
    token = ps.csrf(admin.get("/admin").text)
    admin.post("/admin/rounds", data={"csrf_token": token, "year": "2025", "action": "close"})
    assert not audit_round.window_open(2025, store)
    closed = audit_round.mark_report("<html><body><p>x</p></body></html>", 2025, ["HIP_01"],
                                     store)
    assert "Foreløbig" not in closed and "Personalemangel" in closed


def test_no_portal_database_leaves_the_annual_report_as_it_was(tmp_path):
    from reports.portal import audit_round

    page = "<html><head><title>t</title></head><body>r</body></html>"
    missing = tmp_path / "none.sqlite3"
    assert audit_round.mark_report(page, 2025, ["HIP_01"], missing) == page
    assert not missing.exists() and not audit_round.window_open(2025, missing)


# -- atomic publication ------------------------------------------------------------------------
def test_publish_atomically_replaces_whole_or_not_at_all(tmp_path):
    from reports.publish import publish_atomically

    target = tmp_path / "2025-06"

    def write(version):
        def writer(folder):
            for k in range(20):
                (folder / f"unit_{k}").mkdir()
                (folder / f"unit_{k}" / "results.csv").write_text(version)
            return version
        return writer

    assert publish_atomically(target, write("v1")) == "v1"
    seen, stop = [], threading.Event()

    def reader():
        """Reads as the portal does: through one open descriptor of the month's folder."""
        import os

        while not stop.is_set():
            try:
                month = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
            except FileNotFoundError:
                continue  # the instant between the two renames
            try:
                units = os.listdir(month)
                versions = set()
                for unit in units:
                    fd = os.open(f"{unit}/results.csv", os.O_RDONLY, dir_fd=month)
                    with os.fdopen(fd) as handle:
                        versions.add(handle.read())
                here, there = os.fstat(month), os.stat(target)
                if (here.st_dev, here.st_ino) != (there.st_dev, there.st_ino):
                    continue  # replaced while read (its old version may be half deleted)
            except FileNotFoundError:
                continue  # the old version was being removed: read again
            finally:
                os.close(month)
            seen.append((frozenset(versions), len(units)))

    thread = threading.Thread(target=reader)
    thread.start()
    for n in range(2, 30):
        publish_atomically(target, write(f"v{n}"))
    stop.set()
    thread.join()
    assert seen and all(len(v) == 1 and c == 20 for v, c in seen)  # never a mix, never half

    def broken(folder):
        (folder / "half").mkdir()
        raise RuntimeError("stopped halfway")

    with pytest.raises(RuntimeError):
        publish_atomically(target, broken)
    assert {(p / "results.csv").read_text() for p in target.iterdir()} == {"v29"}
    assert [p.name for p in tmp_path.iterdir()] == ["2025-06"]  # no staging left behind


def test_monthly_deliveries_leave_no_staging_folder(portal):
    months = portal["output"] / "reports" / "monthly"
    assert sorted(p.name for p in months.iterdir()) == list(ps.MONTHS)


def test_behind_a_tls_proxy_the_cookie_is_secure(portal):
    """`serve --behind-proxy`: X-Forwarded-Proto/-For from loopback are believed."""
    import os
    import subprocess
    import sys
    import urllib.request

    import httpx

    from tests.builders import stop

    port = ps.free_port()
    env = {**os.environ, "KVALITET_PORTAL_DB": str(portal["db"])}
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "portal", "serve", "--output",
         str(portal["output"]), "--port", str(port), "--behind-proxy"], cwd=ps.ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                urllib.request.urlopen(url + "/health", timeout=2)
                break
            except OSError:
                import time

                time.sleep(0.1)
        proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "192.0.2.7"}
        client = httpx.Client(base_url=url, headers=proxied)
        token = ps.csrf(client.get("/login").text)
        answer = client.post("/login", data={"username": "national", "password": ps.PASSWORD,
                                             "csrf_token": token})
        assert answer.status_code == 303
        assert "secure" in answer.headers["set-cookie"].lower()
        assert answer.headers["strict-transport-security"].startswith("max-age=")
        row = [r for r in ps.log_rows(portal["db"]) if r["username"] == "national"][-1]
        assert (row["action"], row["client"]) == ("login", "192.0.2.7")
    finally:
        stop(process)


def _write_version(version: int):
    def writer(folder):
        for code in ("H101", "H102"):
            unit = folder / f"hospital_{code}"
            unit.mkdir()
            pl.DataFrame({"indicator_id": ["HIP_01"] * 3, "period_type": ["month"] * 3,
                          "period": ["2025-06"] * 3, "level": ["hospital", "region", "national"],
                          "unit_code": [code, "1081", "DK"], "unit_name": ["u", "r", "n"],
                          "numerator": [version] * 3, "denominator": [version] * 3}
                         ).write_parquet(unit / "results.parquet")
            (unit / "records_not_meeting.csv").write_text(
                "indicator_id,record_id,period\n" + "".join(
                    f"HIP_01,V{version}-{k},2025-06\n" for k in range(50)))
    return writer


def _republish(target, versions) -> None:
    from reports.publish import publish_atomically

    for version in versions:
        publish_atomically(target, _write_version(version))


def test_the_portal_reads_a_delivery_whole_while_its_month_is_republished(tmp_path):
    """Published.delivery while another process publishes the month again and again: every
    read is one version (its results and its records agree) and complete, never a mix or
    a half (nor a version half deleted after the next one was renamed in)."""
    import multiprocessing

    from reports.portal.published import Published

    target = tmp_path / "reports" / "monthly" / "2025-06"
    _republish(target, [1])
    published = Published(tmp_path)
    writer = multiprocessing.get_context("spawn").Process(
        target=_republish, args=(target, range(2, 30)))
    writer.start()
    reads = []
    while writer.is_alive() or not reads:
        published._deliveries.clear()  # no cache: every read goes to the disk
        delivery = published.delivery("hospital", "H101", "2025-06")
        if delivery is not None:
            reads.append((set(delivery.results["numerator"].to_list()),
                          {r.split("-")[0] for r in delivery.records["record_id"].to_list()},
                          delivery.records.height))
    writer.join()
    assert writer.exitcode == 0 and len(reads) > 10
    assert all(len(n) == 1 and r == {f"V{next(iter(n))}"} and h == 50 for n, r, h in reads)
