"""Shared set-up of the portal tests: a published OUTPUT from the real pipeline (two
months), a portal database with one user per role, and the real server (uvicorn, started
by `kvalitet portal serve`) on a free loopback port.

Started once per test process and stopped at exit, whichever portal test module asks
first (fixtures imported into several modules would otherwise start it again).
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"
MONTHS = ("2025-05", "2025-06")
# One user per role; the unit users' units, the region user's region.
USERS = {
    "unit_h": ("unit", "--unit", "hospital:H101"),
    "unit_m": ("unit", "--unit", "municipality:101"),
    "region_n": ("region", "--region", "1081"),
    "national": ("national", None, None),
    "admin": ("admin", None, None),
    "locked_out": ("unit", "--unit", "hospital:H101"),
    "comment_unit": ("unit", "--unit", "hospital:H101"),
    "comment_region": ("region", "--region", "1081"),
}
_state: dict = {}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def published_output(sample_run, base: Path) -> Path:
    """OUTPUT with the deliveries of two months, published by the pipeline's own step."""
    if "output" in _state:
        return _state["output"]
    from pipelines import steps

    output = base / "output"
    warehouse = sample_run["output"] / "kvalitet.duckdb"
    for month in MONTHS:
        steps.monthly_deliveries(warehouse, output / "reports" / "monthly" / month, month)
    _state["output"] = output
    return output


def cli(args: list[str], db: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    """`kvalitet ...` as a user runs it, from this worktree's code."""
    env = {**os.environ, "KVALITET_PORTAL_DB": str(db)}
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], input=stdin,
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


def add_users(db: Path, output: Path) -> None:
    for name, (role, flag, value) in USERS.items():
        args = ["portal", "user", "add", name, "--role", role, "--password-stdin",
                "--output", str(output)]
        if flag:
            args += [flag, value]
        done = cli(args, db, PASSWORD + "\n")
        assert done.returncode == 0, done.stderr


def server(sample_run, base: Path) -> dict:
    """The real server: `kvalitet portal serve --output OUTPUT --port PORT`."""
    if "server" in _state:
        return _state["server"]
    output = published_output(sample_run, base)
    db = base / "portal.sqlite3"
    add_users(db, output)
    port = free_port()
    log = open(base / "serve.log", "w")
    env = {**os.environ, "KVALITET_PORTAL_DB": str(db)}
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "portal", "serve", "--output", str(output),
         "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env, stdout=log,
        stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):  # bounded by attempts, not by a clock
        if process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            time.sleep(0.1)
    assert process.poll() is None, (base / "serve.log").read_text()

    def stop() -> None:
        from tests.builders import stop as stop_process

        stop_process(process, log)

    atexit.register(stop)
    _state["server"] = {"url": url, "db": db, "output": output, "process": process,
                        "log": base / "serve.log"}
    return _state["server"]


def login(url: str, username: str, password: str = PASSWORD) -> tuple[httpx.Client, httpx.Response]:
    client = httpx.Client(base_url=url, follow_redirects=False, timeout=60)
    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    answer = client.post("/login", data={"username": username, "password": password,
                                         "csrf_token": token})
    return client, answer


def session(url: str, username: str) -> httpx.Client:
    client, answer = login(url, username)
    assert answer.status_code == 303, answer.status_code
    return client


def session_start(client: httpx.Client) -> str:
    """A page of the client's own that carries its anti-forgery token."""
    answer = client.get("/")
    location = answer.headers.get("location", "/admin")
    return location


def csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def log_rows(db: Path) -> list[dict]:
    from reports.portal import access_log
    from reports.portal.store import Store

    return access_log.rows(Store(db))


def chromedriver() -> str:
    """Debian's chromium-driver; installed where it is missing (as CI does)."""
    path = shutil.which("chromedriver")
    if path is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"],
                       check=True, env=env)
        path = shutil.which("chromedriver")
    assert path, "chromium-driver is required for the portal browser test"
    return path
