"""The portal under load: the real server (`kvalitet portal serve`, uvicorn) on loopback,
N concurrent logged-in sessions requesting the largest unit's page for a bounded time.

    python -m benchmarks.portal [--output OUTPUT] [--sessions 50] [--seconds 20] [--workers 1]

Without --output the sample's demo is run first into a temporary folder. Prints the number
of requests, errors, median / 95th / 99th percentile page times (goal: p95 < 300 ms) and
the page's size. Figures are printed, never asserted. The load generator shares the
machine's cores with the server (threads with keep-alive connections, one per session).
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "benchmark-password-long"


def largest_unit(output: Path) -> tuple[str, str, str]:
    """(level, code, month) of the latest month's delivery with the most published rows."""
    months = sorted(p for p in (output / "reports" / "monthly").iterdir()
                    if re.fullmatch(r"\d{4}-\d\d", p.name))
    month = months[-1]

    def size(folder: Path) -> int:
        return sum(f.stat().st_size for f in folder.iterdir()
                   if f.suffix in (".csv", ".parquet"))

    folder = max((p for p in month.iterdir() if p.is_dir()), key=size)
    level, code = folder.name.split("_", 1)
    return level, code, month.name


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def login(host: str, port: int, username: str) -> tuple[http.client.HTTPConnection, str]:
    connection = http.client.HTTPConnection(host, port, timeout=60)
    connection.request("GET", "/login")
    answer = connection.getresponse()
    token = re.search(r'name="csrf_token" value="([^"]+)"', answer.read().decode()).group(1)
    body = urllib.parse.urlencode({"username": username, "password": PASSWORD,
                                   "csrf_token": token})
    connection.request("POST", "/login", body=body, headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    answer = connection.getresponse()
    answer.read()
    cookie = answer.getheader("set-cookie").split(";", 1)[0]
    assert answer.status == 303, answer.status
    return connection, cookie


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kvalitet-portal-bench-"))
    env = {**os.environ, "KVALITET_ORCHESTRATION": "direct",
           "KVALITET_PORTAL_DB": str(work / "portal.sqlite3")}
    output = args.output
    if output is None:
        output = work / "output"
        subprocess.run([sys.executable, "-m", "pipelines.cli", "demo", "--output", str(output)],
                       cwd=ROOT, env=env, check=True, capture_output=True)
    level, code, month = largest_unit(output)
    sys.path.insert(0, str(ROOT))
    from reports.portal.identity import LocalPasswords
    from reports.portal.store import Store

    users = LocalPasswords(Store(work / "portal.sqlite3"))
    names = [f"bench{k:03d}" for k in range(args.sessions)]
    for name in names:
        users.add_user(name, ["unit"], PASSWORD, unit=f"{level}:{code}")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "portal", "serve", "--output", str(output),
         "--port", str(port), "--workers", str(args.workers)], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        sessions = [login("127.0.0.1", port, name) for name in names]
        path = f"/units/{level}/{code}"
        # one warm-up request (first reads of the delivery fill the server's cache)
        warm = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        warm.request("GET", path, headers={"Cookie": sessions[0][1]})
        page = warm.getresponse().read()
        warm.close()
        times: list[float] = []
        errors = [0]
        lock = threading.Lock()
        start_gate = threading.Event()
        deadline = [0.0]

        def run(connection: http.client.HTTPConnection, cookie: str) -> None:
            start_gate.wait()
            connection.close()  # idle since login: the server may have closed it
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            mine, failed = [], 0
            while time.perf_counter() < deadline[0]:
                begin = time.perf_counter()
                try:
                    connection.request("GET", path, headers={"Cookie": cookie})
                    answer = connection.getresponse()
                    body = answer.read()
                    ok = answer.status == 200 and len(body) > 1000
                except (OSError, http.client.HTTPException):
                    ok = False
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                mine.append(time.perf_counter() - begin)
                failed += not ok
            with lock:
                times.extend(mine)
                errors[0] += failed

        threads = [threading.Thread(target=run, args=s) for s in sessions]
        for thread in threads:
            thread.start()
        deadline[0] = time.perf_counter() + args.seconds
        start_gate.set()
        for thread in threads:
            thread.join()
    finally:
        server.terminate()
        server.wait(timeout=30)
    times.sort()
    q = statistics.quantiles(times, n=100)
    print(f"largest unit: {level}:{code} {month}; page {len(page) / 1024:.0f} KiB; "
          f"{args.sessions} sessions for {args.seconds:.0f} s, {args.workers} worker(s)")
    print(f"requests {len(times)} ({len(times) / args.seconds:.0f}/s), errors {errors[0]}")
    print(f"median {statistics.median(times) * 1000:.0f} ms, p95 {q[94] * 1000:.0f} ms, "
          f"p99 {q[98] * 1000:.0f} ms (goal p95 < 300 ms)")


if __name__ == "__main__":
    main()
