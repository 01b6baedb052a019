"""No raw CPR number of the sample input anywhere downstream: warehouse, quarantine, log,
results and reports. The scanner is tests/leak_fixture.py's (tests/test_leaks.py runs the
hostile input); here it checks the everyday run every other test uses."""

from __future__ import annotations

from tests.leak_fixture import Scan, sample_cprs, scan_tree, written


def test_no_cpr_leaves_the_door(sample_reports):
    cprs = sample_cprs(sample_reports["input"])
    assert len(cprs) > 1000  # the input's numbers are what is looked for
    scan = Scan({cpr: "sample cpr" for cpr in cprs})
    scan.text("log", sample_reports["log"])
    scan_tree(scan, sample_reports["output"], "output")
    # every table of the warehouse and every file, reports included, was read
    assert scan.read["duckdb table"] >= 10 and scan.read["file"] > 10
    assert scan.read["xlsx member"] > 0 and scan.read["parquet file"] > 10
    assert scan.report() == []


def test_the_scan_would_find_a_leak(sample_run):
    cpr = sorted(sample_cprs(sample_run["input"]))[0]
    scan = Scan({cpr: "sample cpr"})
    for name, text in {"a": f"x{cpr}x", "b": written(cpr, "hyphen"), "c": "0",
                       "d": f"<td>{written(cpr, 'space')}</td>", "e": f"1{cpr}"}.items():
        scan.text(name, text)
    assert scan.places() == {"a", "b", "d", "e"}
