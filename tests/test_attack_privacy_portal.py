"""Attack on the portal from outside, beyond tests/test_portal_security.py: case-varied and
encoded unit codes, traversal in download names, a region user on units and audit pages of
other regions, methods other than GET and POST, an idle or too old session; and whether
every refused request is one row of the access log (portal.md).

In process (Starlette's TestClient on the real application), on the sample run's
published deliveries.
"""

from __future__ import annotations

import re
import time

import polars as pl
import pytest
from fastapi.testclient import TestClient

from reports.portal import access_log
from reports.portal.identity import LocalPasswords
from reports.portal.routes import create_app
from reports.portal.store import Store

PASSWORD = "correct horse battery"
MONTH = "2025-06"
USERS = {"unit_h": {"unit": "hospital:H101"}, "unit_m": {"unit": "municipality:101"},
         "region_n": {"region": "1081"}}


@pytest.fixture(scope="module")
def portal(sample_reports, tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("portal_attack") / "portal.sqlite3")
    users = LocalPasswords(store)
    for name, where in USERS.items():
        users.add_user(name, ["unit" if "unit" in where else "region"], PASSWORD, **where)
    monthly = sample_reports["output"] / "reports" / "monthly" / MONTH
    return {"app": create_app(sample_reports["output"], store), "store": store,
            "users": users, "monthly": monthly}


def login(portal, name: str) -> TestClient:
    client = TestClient(portal["app"], follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)[1]
    answer = client.post("/login", data={"username": name, "password": PASSWORD,
                                         "csrf_token": token})
    assert answer.status_code == 303
    return client


def unit_name(portal, level: str, code: str) -> str:
    results = pl.read_parquet(portal["monthly"] / f"{level}_{code}" / "results.parquet")
    return results.filter(pl.col("level") == level, pl.col("unit_code") == code)["unit_name"][0]


# (user, path, the unit whose data must not show)
PROBES = [
    ("unit_h", "/units/hospital/H102", ("hospital", "H102")),
    ("unit_h", "/units/hospital/h102", ("hospital", "H102")),
    ("unit_h", "/units/Hospital/H102", ("hospital", "H102")),
    ("unit_h", "/units/hospital/H101%2F..%2FH102", ("hospital", "H102")),
    ("unit_h", "/units/hospital/H101/../H102", ("hospital", "H102")),
    ("unit_h", f"/units/hospital/H101/{MONTH}/..%2Fhospital_H102%2Fresults.csv",
     ("hospital", "H102")),
    ("unit_h", f"/units/hospital/H101/{MONTH}/%2e%2e%2fhospital_H102%2fresults.csv",
     ("hospital", "H102")),
    ("unit_h", f"/units/hospital/H102/{MONTH}/results.csv?unit=hospital:H101",
     ("hospital", "H102")),
    ("unit_h", f"/units/hospital/H102%00/{MONTH}/results.csv", ("hospital", "H102")),
    ("unit_h", "/units/hospital/H102 ", ("hospital", "H102")),
    ("unit_h", "/units/municipality/851", ("municipality", "851")),
    ("unit_h", "/audit/2025/hospital/H102", ("hospital", "H102")),
    ("unit_h", "/audit/2025/region/1081", None),
    ("unit_h", "/regions/1081", None),
    ("unit_m", "/units/municipality/0101", ("municipality", "101")),  # not its own spelling
    ("unit_m", "/units/hospital/H101", ("hospital", "H101")),
    ("region_n", "/units/hospital/H401", ("hospital", "H401")),
    ("region_n", "/units/municipality/101", ("municipality", "101")),
    ("region_n", f"/units/municipality/101/{MONTH}/records_not_meeting.csv",
     ("municipality", "101")),
    ("region_n", "/audit/2025/hospital/H401", ("hospital", "H401")),
    ("region_n", "/audit/2025/region/1084", None),
    ("region_n", "/regions/1084", None),
    ("region_n", "/national", None),
]


@pytest.mark.parametrize("user,path,other", PROBES, ids=[f"{u}-{p}" for u, p, _ in PROBES])
def test_a_tampered_path_gets_nothing_and_is_logged(portal, user, path, other):
    """What held: every tampered path is refused (403/404), shows nothing of the other
    unit (its name), and is one 'denied' row of the access log."""
    client = login(portal, user)
    before = len(access_log.rows(portal["store"]))
    answer = client.get(path)
    assert answer.status_code in (403, 404), answer.status_code
    if other is not None and (portal["monthly"] / f"{other[0]}_{other[1]}").is_dir():
        assert unit_name(portal, *other) not in answer.text
    rows = access_log.rows(portal["store"])[before:]
    assert [(r["username"], r["action"]) for r in rows] == [(user, "denied")], rows


def test_a_region_user_sees_a_unit_of_its_region(portal):
    """The probes above are not refused for a blanket reason: the same user reads a unit of
    its own region (municipality 851 Aalborg, Nordjylland) and the unit user its own."""
    assert login(portal, "region_n").get("/units/municipality/851").status_code == 200
    assert login(portal, "unit_h").get("/units/hospital/H101").status_code == 200


def test_a_comment_on_a_unit_of_another_region_is_refused(portal):
    client = login(portal, "region_n")
    page = client.get("/audit/2025/hospital/H101").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    before = len(access_log.rows(portal["store"]))
    answer = client.post("/audit/2025/hospital/H401", data={
        "csrf_token": token, "indicator_id": "STROKE_01", "text": "fra en anden region"})
    assert answer.status_code == 403
    rows = access_log.rows(portal["store"])[before:]
    assert [(r["action"], r["unit"]) for r in rows] == [("denied", "hospital:H401")]


@pytest.mark.parametrize("age", ["idle", "old"])
def test_an_expired_session_gets_nothing_and_is_logged(portal, age):
    """An idle (31 minutes) or too old (10 hours) session: no data, the login page, a
    'denied' row."""
    client = login(portal, "unit_h")
    now = time.time()
    column, value = ("last_seen", now - 31 * 60) if age == "idle" else ("created_at",
                                                                       now - 10 * 3600 - 60)
    portal["store"].execute(f"UPDATE sessions SET {column} = ? WHERE username = 'unit_h'",
                            (value,))
    before = len(access_log.rows(portal["store"]))
    answer = client.get("/units/hospital/H101")
    assert answer.status_code in (303, 401) and "/login" in answer.headers.get("location", "")
    rows = access_log.rows(portal["store"])[before:]
    assert [(r["action"], r["outcome"]) for r in rows] == [("denied", "no session")]


# attack finding (low), fixed: HEAD and OPTIONS on another unit's page answered 405 and left no
# row in the access log; portal.md: a request for a unit the user may not see gets 403 or 404
# and is logged as denied (the catch-all route now takes HEAD and OPTIONS too)
@pytest.mark.parametrize("method", ["HEAD", "OPTIONS"])
def test_other_methods_on_another_unit_are_refused_and_logged(portal, method):
    client = login(portal, "unit_h")
    before = len(access_log.rows(portal["store"]))
    answer = client.request(method, "/units/hospital/H102")
    rows = access_log.rows(portal["store"])[before:]
    assert answer.status_code in (403, 404) and [r["action"] for r in rows] == ["denied"], (
        answer.status_code, rows)
