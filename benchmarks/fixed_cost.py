"""Fixed cost: ``kvalitet run`` on the bundled sample (23k rows), where imports, start-up
and exit are most of the time.

    python -m benchmarks.fixed_cost [--repeats 5] [--prefect]

Prints medians over ``--repeats`` fresh processes (wall seconds, each process as a user
starts it, imports and exit included):

- ``import pipelines.cli``: ``python -c "import pipelines.cli"``, what every command pays;
- ``run (direct)``: ``python -m pipelines.cli run`` with ``KVALITET_ORCHESTRATION=direct``;
- with ``--prefect``: the same run as a Prefect flow against a persistent server that this
  script starts (``prefect server start`` in a temporary PREFECT_HOME) and stops, and the
  difference to the direct run. The direct and Prefect runs alternate, so a load that comes
  and goes on a shared machine falls on both.

The load average is printed with the figures. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "input"
KEY = "benchmark-key-0123456789"


def _environment(**extra: str) -> dict:
    env = {**os.environ, "KVALITET_PSEUDONYM_KEY": KEY, "KVALITET_WAREHOUSE": "",
           "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", **extra}
    for name in ("KVALITET_ORCHESTRATION", "PREFECT_API_URL"):
        if name not in extra:
            env.pop(name, None)
    return env


def timed(command: list[str], env: dict) -> float:
    """Wall seconds of one fresh process; it must succeed."""
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} failed: "
                           f"{done.stderr.decode(errors='replace')[-2000:]}")
    return seconds


def run_command(output: Path) -> list[str]:
    shutil.rmtree(output, ignore_errors=True)
    return [sys.executable, "-m", "pipelines.cli", "run", "--input", str(SAMPLE), "--output",
            str(output)]


@contextlib.contextmanager
def prefect_server(home: Path):
    """A persistent ``prefect server start`` on a free loopback port, stopped afterwards."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    home.mkdir(parents=True, exist_ok=True)
    env = {**_environment(), "PREFECT_HOME": str(home), "PREFECT_UI_ENABLED": "false"}
    log = open(home / "server.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host",
                               "127.0.0.1", "--port", str(port)], env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the Prefect server did not start: "
                                   + (home / "server.log").read_text()[-2000:])
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s  (runs: {', '.join(f'{v:.2f}' for v in values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--prefect", action="store_true",
                        help="also run against a persistent Prefect server started here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kvalitet-fixed-") as work:
        work = Path(work)
        output = work / "out"
        direct = _environment(KVALITET_ORCHESTRATION="direct")
        load_before = os.getloadavg()
        imports = [timed([sys.executable, "-c", "import pipelines.cli"], direct)
                   for _ in range(args.repeats)]
        timed(run_command(output), direct)  # one warm-up: file caches, .pyc files
        runs: dict[str, list[float]] = {"direct": [], "prefect": []}
        with (prefect_server(work / "prefect") if args.prefect
              else contextlib.nullcontext()) as url:
            orchestrated = _environment(KVALITET_ORCHESTRATION="prefect",
                                        PREFECT_API_URL=url or "",
                                        PREFECT_HOME=str(work / "client"))
            if url:
                timed(run_command(output), orchestrated)  # warm-up: the flow registered
            for _ in range(args.repeats):
                runs["direct"].append(timed(run_command(output), direct))
                if url:
                    runs["prefect"].append(timed(run_command(output), orchestrated))
        load_after = os.getloadavg()

    print(f"fixed cost on the bundled sample, medians of {args.repeats} fresh processes")
    print(f"  import pipelines.cli        {_median(imports)}")
    print(f"  run (direct)                {_median(runs['direct'])}")
    if args.prefect:
        print(f"  run (prefect, persistent)   {_median(runs['prefect'])}")
        over = statistics.median(runs["prefect"]) - statistics.median(runs["direct"])
        pairs = statistics.median(p - d for p, d in zip(runs["prefect"], runs["direct"]))
        print(f"  prefect over direct         {over:6.2f} s  (median of pairwise: {pairs:.2f} s)")
    print(f"  load average (1, 5, 15 min): before {', '.join(f'{v:.2f}' for v in load_before)}; "
          f"after {', '.join(f'{v:.2f}' for v in load_after)} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
