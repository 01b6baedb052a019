"""No raw CPR number of the input anywhere downstream: warehouse, quarantine, logs, outputs."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import polars as pl

from pipelines.settings import WAREHOUSE_FILE_NAME

DIGIT_RUNS = re.compile(r"[0-9]{6}-?[0-9]{4,}|[0-9]{10,}")


def text_of(path: Path) -> str:
    if path.suffix == ".parquet":
        return str(pl.read_parquet(path).rows())
    return path.read_bytes().decode("utf-8", errors="replace")


def cpr_windows(text: str) -> set[str]:
    """Every 10-digit window of every digit run (a hyphen after six digits ignored)."""
    found = set()
    for run in DIGIT_RUNS.findall(text):
        digits = run.replace("-", "")
        found.update(digits[i:i + 10] for i in range(len(digits) - 9))
    return found


def input_cprs(folder: Path) -> set[str]:
    cprs = set()
    for path in folder.rglob("*"):
        if path.suffix in (".csv", ".parquet"):
            cprs |= {m.replace("-", "") for m in re.findall(
                r"(?<![0-9])[0-9]{6}-?[0-9]{4}(?![0-9])", text_of(path))}
    return cprs


def leaks_in(texts: dict[str, str], cprs: set[str]) -> list[str]:
    return [name for name, text in texts.items() if cpr_windows(text) & cprs]


def test_no_cpr_leaves_the_door(sample_run):
    cprs = input_cprs(sample_run["input"])
    assert len(cprs) > 1000  # the scan itself finds the input's numbers
    output: Path = sample_run["output"]
    texts = {"log": sample_run["log"]}
    texts |= {str(p.relative_to(output)): text_of(p) for p in output.rglob("*")
              if p.is_file() and p.suffix != ".duckdb"}
    # The warehouse stores strings compressed, so read every column of every table.
    with duckdb.connect(str(output / WAREHOUSE_FILE_NAME), read_only=True) as con:
        for (table,) in con.sql("SELECT table_name FROM information_schema.tables").fetchall():
            texts[f"warehouse:{table}"] = str(con.sql(f"SELECT * FROM {table}").fetchall())
    assert len(texts) > 10
    assert leaks_in(texts, cprs) == []


def test_the_scan_would_find_a_leak(sample_run):
    cpr = sorted(input_cprs(sample_run["input"]))[0]
    assert leaks_in({"a": f"x{cpr}x", "b": f"{cpr[:6]}-{cpr[6:]}", "c": "0"}, {cpr}) == ["a", "b"]
