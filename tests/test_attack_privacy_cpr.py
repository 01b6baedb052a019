"""Attack on the CPR gate from places tests/leak_fixture.py does not plant numbers in: file
and folder names of the input, a registry's stray sub-folder, extra columns of a reference
table, the reference tables' codes and names, the steering group's commentary, the output
path a user gives, and the portal's usernames.

Every number here is a freshly generated, valid CPR number (tests/leak_fixture.CprMaker);
failures name places and counts, never a number.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import TEST_KEY
from tests.leak_fixture import (SAMPLE_INPUT, CprMaker, Scan, find_numbers, masked,
                                sample_cprs, scan_tree, written)

ROOT = Path(__file__).resolve().parent.parent


class Hostile:
    """The planted numbers by where they went, and what the commands printed."""

    def __init__(self, base: Path):
        self.base = base
        self.maker = CprMaker(avoid=sample_cprs(), seed=424242)
        self.planted: dict[str, str] = {}
        self.runs: dict[str, tuple[int, str, str]] = {}

    def new(self, where: str) -> str:
        digits = self.maker.new()
        self.planted[digits] = where
        return digits

    def targets(self, *wheres: str) -> dict[str, str]:
        return {d: w for d, w in self.planted.items() if w in wheres}

    def __repr__(self) -> str:  # pytest shows a failing frame's arguments: never the numbers
        return f"Hostile({len(self.planted)} planted)"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Hostile:
    h = Hostile(tmp_path_factory.mktemp("cpr_attack"))
    inp = h.base / "input"
    shutil.copytree(SAMPLE_INPUT, inp)
    # an extract whose name holds a number before its date (a valid name: it ends in the date)
    (inp / "stroke" / "stroke_2025-06-30.csv").rename(
        inp / "stroke" / f"stroke_{written(h.new('extract file name'), 'hyphen')}_2025-06-30.csv")
    # a file named like a number, without a date (fails as a whole, named in the message)
    (inp / "hipfracture" / f"{h.new('undated file name')}.csv").write_bytes(
        (inp / "hipfracture" / "hipfracture_2025-06-30.csv").read_bytes())
    # a stray sub-folder of a registry named like a number
    (inp / "lpr" / written(h.new("registry sub-folder name"), "space")).mkdir()
    # an extra column of a reference table named like a number, holding numbers
    path = inp / "reference" / "hospitals.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[0] += "," + h.new("reference column name")
    lines[1:] = [line + "," + written(h.new("reference extra column value"), "hyphen")
                 for line in lines[1:]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # the steering group's commentary on an indicator
    comments = h.base / "comments" / "2025"
    comments.mkdir(parents=True)
    (comments / "STROKE_01.md").write_text(
        f"Styregruppen: patient {written(h.new('commentary'), 'hyphen')} blev overflyttet.\n",
        encoding="utf-8")
    out = h.base / f"out_{h.new('output folder name')}"
    cwd = h.base / "cwd"
    cwd.mkdir()
    env = {**os.environ, "KVALITET_PSEUDONYM_KEY": TEST_KEY.decode(), "KVALITET_WAREHOUSE": "",
           "KVALITET_ORCHESTRATION": "direct",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    commands = {
        "run": ["run", "--input", str(inp), "--output", str(out), "--verbose"],
        "report annual": ["report", "annual", "--year", "2025", "--warehouse",
                          str(out / "kvalitet.duckdb"), "--comments", str(h.base / "comments")],
    }
    for name, args in commands.items():
        done = subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=cwd, env=env,
                              capture_output=True)
        h.runs[name] = (done.returncode, done.stdout.decode("utf-8", "replace"),
                        done.stderr.decode("utf-8", "replace"))
    h.output, h.cwd = out, cwd
    return h


def scan(h: Hostile, targets: dict[str, str]) -> Scan:
    """Everything the commands printed and wrote (paths inside the output are relative:
    the output folder's own name is the user's choice, checked on its own below)."""
    found = Scan(targets)
    for name, (_, stdout, stderr) in h.runs.items():
        found.text(f"`{name}` stdout", stdout)
        found.text(f"`{name}` stderr", stderr)
    scan_tree(found, h.output, "output")
    scan_tree(found, h.cwd, "cwd")
    return found


def test_the_hostile_run_went_through(hostile):
    code, _, stderr = hostile.runs["run"]
    assert code == 3, masked(stderr[-2000:])  # the undated file fails alone
    assert "FAILED hipfracture/<cpr hidden>.csv" in stderr
    assert "NOT AN EXTRACT lpr/<cpr hidden>" in stderr
    assert hostile.runs["report annual"][0] == 0, masked(hostile.runs["report annual"][2][-2000:])
    assert (hostile.output / "reports" / "annual" / "2025" / "stroke" / "annual_report.html"
            ).exists()


def test_file_folder_and_reference_column_names_never_leave_the_input(hostile):
    """What held: numbers in extract file names, an undated file's name, a registry's
    sub-folder name and an extra reference column (name and values) appear nowhere, not
    in the warehouse (extract_files keeps file names), the output, stdout or stderr."""
    found = scan(hostile, hostile.targets(
        "extract file name", "undated file name", "registry sub-folder name",
        "reference column name", "reference extra column value"))
    assert found.read["duckdb table"] >= 10 and found.read["file"] >= 20
    leaked = sum(found.leaks.values())  # a count: pytest never prints what it found
    assert leaked == 0, "\n".join(found.report())


# attack finding, fixed: the steering group's commentary (comments/<year>/<indicator>.md) is
# published in the annual report as written; a CPR number in it is not masked (reports/annual.py
# commentary(); the portal's audit comments do pass the gate)
def test_no_cpr_from_the_commentary_in_the_report(hostile):
    found = scan(hostile, hostile.targets("commentary"))
    page = (hostile.output / "reports" / "annual" / "2025" / "stroke" / "annual_report.html"
            ).read_text(encoding="utf-8")
    assert "Styregruppen: patient" in page  # the commentary is there
    leaked = sum(found.leaks.values())
    assert leaked == 0, "\n".join(found.report())


# attack finding, fixed (low): the log lines mask a CPR-shaped output path ('<cpr hidden>'), but
# the commands' closing lines print it as given: `run` ('... indicator result rows -> PATH',
# 'manifest -> PATH'), `report annual` ('wrote PATH'), `report monthly` (pipelines/cli.py
# typer.echo of paths)
def test_no_cpr_from_the_output_path_on_the_terminal(hostile):
    targets = hostile.targets("output folder name")
    printed = "\n".join(out + err for _, out, err in hostile.runs.values())
    assert "<cpr hidden>" in printed  # the logs do mask it
    times = sum(find_numbers(printed, targets).values())
    assert times == 0, f"{times} times on the terminal"


# -- reference tables: refused as a whole ------------------------------------------------------
def _edit_hospitals(folder: Path, text: str) -> None:
    (folder / "hospitals.csv").write_text(text, encoding="utf-8")


CASES = {
    "hospital name": lambda t, n: t.replace("Rigshospitalet",
                                            f"Rigshospitalet {written(n, 'space')}"),
    "hospital code": lambda t, n: t + f"{n},Testhospital,1084\n",
    "hospital code, hyphen": lambda t, n: t + f"{written(n, 'hyphen')},Testhospital,1084\n",
    "region code of a hospital": lambda t, n: t.replace("H406,Bornholms Hospital,1084",
                                                         f"H406,Bornholms Hospital,{n}"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_number_in_a_reference_table_refuses_the_run_masked(case, tmp_path):
    """What held: a CPR-shaped code, name or region code in hospitals.csv refuses the run
    with a message naming the table, row and column, the number masked."""
    from pipelines.reference import load_reference

    folder = tmp_path / "reference"
    shutil.copytree(SAMPLE_INPUT / "reference", folder)
    digits = CprMaker(avoid=set(), seed=len(case)).new()
    _edit_hospitals(folder, CASES[case]((folder / "hospitals.csv").read_text(encoding="utf-8"),
                                        digits))
    with pytest.raises(Exception) as caught:
        load_reference(tmp_path)
    message = str(caught.value)
    assert "hospitals.csv" in message and "CPR" in message
    times = sum(find_numbers(message, {digits: case}).values())
    assert times == 0, masked(message)


# -- the portal: usernames ---------------------------------------------------------------------
# attack finding, fixed: `portal user add` takes a CPR-shaped username (USERNAME allows ten
# digits); it is stored in users, sessions and comments, printed by `user add`/`user list`, and
# shown on portal pages (the bar, the admin page, as a comment's author to the unit, region and
# national users). Only the access log masks it
def test_a_cpr_shaped_username_is_refused(tmp_path):
    from reports.portal.identity import BadUser, LocalPasswords
    from reports.portal.store import Store

    digits = CprMaker(avoid=set(), seed=77).new()
    store = Store(tmp_path / "portal.sqlite3")
    with pytest.raises(BadUser):
        LocalPasswords(store).add_user(digits, ["unit"], "correct horse battery",
                                       unit="hospital:H101")


# attack finding, fixed: a CPR-shaped username (see above) is shown on the portal's pages: in
# the bar, as a comment's author on the audit page (to another user of the unit) and on the
# admin page; only the access log hides it
def test_no_page_shows_a_cpr_shaped_username(tmp_path, sample_reports):
    from fastapi.testclient import TestClient

    from reports.portal import access_log, audit_round
    from reports.portal.identity import BadUser, LocalPasswords
    from reports.portal.routes import create_app
    from reports.portal.store import Store

    digits = CprMaker(avoid=set(), seed=78).new()
    store = Store(tmp_path / "portal.sqlite3")
    users = LocalPasswords(store)
    password = "correct horse battery"
    try:
        users.add_user(digits, ["unit"], password, unit="hospital:H101")
    except BadUser:
        return  # refused at the door: no page can show it
    users.add_user("colleague", ["unit"], password, unit="hospital:H101")
    users.add_user("boss", ["admin"], password)
    audit_round.open_window(store, 2025, "boss")
    app = create_app(sample_reports["output"], store)

    def login(name):
        client = TestClient(app, follow_redirects=False)
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)[1]
        answer = client.post("/login", data={"username": name, "password": password,
                                             "csrf_token": token})
        assert answer.status_code == 303
        return client

    own, colleague, admin = login(digits), login("colleague"), login("boss")
    page = own.get("/audit/2025/hospital/H101").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    assert own.post("/audit/2025/hospital/H101", data={
        "csrf_token": token, "indicator_id": "STROKE_01", "text": "ok"}).status_code == 303
    in_log = sum(digits in str(row) for row in access_log.rows(store))
    assert in_log == 0  # the log hides it
    target = {digits: "username"}
    shown = {path: sum(find_numbers(client.get(path).text, target).values())
             for client, path in ((own, "/units/hospital/H101"),
                                  (colleague, "/audit/2025/hospital/H101"),
                                  (admin, "/admin"))}
    assert not any(shown.values()), shown
