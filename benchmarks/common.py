"""Timing helpers: each repetition runs in a fresh process, so peak memory is its own."""

from __future__ import annotations

import multiprocessing as mp
import resource
import statistics
import time
from typing import Callable


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _own_peak_mb() -> float:
    """This process's own high-water mark (VmHWM). ``ru_maxrss`` would also count the parent's
    size when this process was started: Linux carries it through fork and exec."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(fn: Callable, args: tuple, queue) -> None:
    start, cpu = time.perf_counter(), _cpu()
    extra = fn(*args)
    seconds = time.perf_counter() - start
    peak_mb = _own_peak_mb()
    queue.put((seconds, peak_mb, extra, _cpu() - cpu))


def measure(fn: Callable, args: tuple = (), repeats: int = 3) -> dict:
    """Median seconds and peak RSS (MB) over ``repeats`` fresh processes."""
    ctx = mp.get_context("spawn")
    runs = []
    for _ in range(repeats):
        queue = ctx.Queue()
        process = ctx.Process(target=_child, args=(fn, args, queue))
        process.start()
        runs.append(queue.get())
        process.join()
        if process.exitcode:
            raise RuntimeError(f"benchmark child failed with {process.exitcode}")
    return {"median_s": statistics.median(r[0] for r in runs),
            "all_s": [round(r[0], 3) for r in runs],
            "peak_mb": max(r[1] for r in runs), "extra": runs[-1][2],
            "cpu_s": statistics.median(r[3] for r in runs)}  # all threads' CPU seconds
