"""The annual report as the databases publish it: each language its own file, the steering
group's commentary, a landing page, at-a-glance and completeness, and a printed PDF."""

from __future__ import annotations

import re
import shutil
import subprocess
from html import unescape

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from reports.labels import TEXT
from tests.builders import TEST_KEY


@pytest.fixture(scope="module")
def published(sample_run, chromium, tmp_path_factory):
    """The sample's annual report in Danish (with commentary and PDF, from Debian's
    chromium), English and Swedish, from a copy of the sample's warehouse."""
    base = tmp_path_factory.mktemp("annual")
    shutil.copy(sample_run["output"] / "kvalitet.duckdb", base / "kvalitet.duckdb")
    comments = base / "comments" / "2025"
    comments.mkdir(parents=True)
    (comments / "STROKE_01.md").write_text(
        "### Fremgang i Region Midtjylland\n\nStyregruppen **noterer** fremgangen.\n\n"
        "- flere patienter direkte til apopleksiafsnit\n\n<script>alert('x')</script>\n",
        encoding="utf-8")
    env = {"KVALITET_PSEUDONYM_KEY": TEST_KEY.decode(), "KVALITET_WAREHOUSE": "",
           "KVALITET_CHROMIUM": chromium}
    runner = CliRunner()
    outcomes = {}
    for language, extra in (("da", ["--pdf", "--comments", str(base / "comments")]),
                            ("en", []), ("sv", [])):
        outcomes[language] = runner.invoke(
            app, ["report", "annual", "--year", "2025", "--output", str(base), "--language",
                  language, *extra], env=env)
        assert outcomes[language].exit_code == 0, outcomes[language].output
    return base / "reports" / "annual" / "2025"


def test_each_language_is_its_own_file(published):
    stroke = published / "stroke"
    pages = {lang: (stroke / name).read_text(encoding="utf-8") for lang, name in
             (("da", "annual_report.html"), ("en", "annual_report.en.html"),
              ("sv", "annual_report.sv.html"))}
    assert '<html lang="da">' in pages["da"] and "Årsrapport 2025: Apopleksi" in pages["da"]
    assert '<html lang="en">' in pages["en"] and "Annual report 2025: Stroke" in pages["en"]
    assert '<html lang="sv">' in pages["sv"] and "Årsrapport 2025: Stroke" in pages["sv"]
    assert TEXT["sv"]["indicators"]["STROKE_01"]["title"] in pages["sv"]
    assert (stroke / "indicator_results.xlsx").exists()
    assert (stroke / "indicator_results.en.xlsx").exists()
    for name in ("index.html", "index.en.html", "index.sv.html"):
        assert (published / name).exists()


def test_the_steering_groups_commentary_is_rendered_markdown(published):
    page = (published / "stroke" / "annual_report.html").read_text(encoding="utf-8")
    section = page[page.index('id="STROKE_01"'):page.index('id="STROKE_02"')]
    assert "<h3>Fremgang i Region Midtjylland</h3>" in section
    assert "<strong>noterer</strong>" in section and "<li>" in section
    assert "<script>alert" not in page  # raw HTML in a comment is shown, never run
    assert "Styregruppens kommentar" in section
    other = page[page.index('id="STROKE_02"'):page.index('id="STROKE_03"')]
    assert "Styregruppens kommentar" not in other  # no file, no section


def test_the_landing_page_links_every_registrys_report(published):
    landing = (published / "index.html").read_text(encoding="utf-8")
    links = set(re.findall(r'href="([^"]+)"', landing))
    for registry in ("stroke", "hipfracture", "cardiac_rehab"):
        assert f"{registry}/annual_report.html" in links
        assert f"{registry}/annual_report.pdf" in links
        assert (published / registry / "annual_report.html").exists()
    english = (published / "index.en.html").read_text(encoding="utf-8")
    assert "stroke/annual_report.en.html" in english


def test_a_registry_never_delivered_gets_no_report(sample_run, tmp_path):
    """A declared registry whose folder is not in the input (yet) has no results: no empty
    report for it, and the landing page links only the others."""
    import duckdb
    import polars as pl

    from pipelines.definitions import load_definitions
    from pipelines.results import read_results
    from pipelines.settings import INDICATORS_DIR
    from reports import annual

    definitions = load_definitions(INDICATORS_DIR)
    hip = [d.id for d in definitions if annual.report_group(d) == "hipfracture"]
    warehouse = tmp_path / "kvalitet.duckdb"  # a copy: the report records what it released
    shutil.copy(sample_run["output"] / "kvalitet.duckdb", warehouse)
    with duckdb.connect(str(warehouse)) as con:
        results = read_results(con).filter(~pl.col("indicator_id").is_in(hip))
        pages = annual.build(con, results, definitions, 2025, tmp_path / "reports")
    assert hip and {p.parent.name for p in pages} == {"stroke", "cardiac_rehab",
                                                      "general_practice_diabetes"}
    assert not (tmp_path / "reports" / "hipfracture").exists()
    landing = (tmp_path / "reports" / "index.html").read_text(encoding="utf-8")
    links = set(re.findall(r'href="([^"]+)"', landing))
    assert "stroke/annual_report.html" in links
    assert not any(link.startswith("hipfracture/") for link in links)


def test_at_a_glance_and_completeness_beside_each_hospital(published):
    page = unescape((published / "hipfracture" / "annual_report.html").read_text(
        encoding="utf-8"))
    glance = page[page.index('id="glance"'):page.index('class="indicator"')]
    t = TEXT["da"]
    for word in (t["glance_met"], t["glance_not_met"], t["glance_too_few"],
                 t["completeness_short"]):
        assert word in glance
    flagged = re.findall(r'class="n low">(\d+,\d)\u00a0% ⚠', glance)
    assert flagged and all(float(v.replace(",", ".")) < 90 for v in flagged)
    fine = re.findall(r'class="n">(\d+,\d)\u00a0%</td></tr>', glance)
    assert fine and all(float(v.replace(",", ".")) >= 90 for v in fine)


def test_the_pdf_has_pages_with_the_headings_and_figures(published):
    from pypdf import PdfReader

    pdf = published / "stroke" / "annual_report.pdf"
    reader = PdfReader(pdf)
    assert len(reader.pages) >= 10
    text = "\n".join(p.extract_text() or "" for p in reader.pages)
    assert "Årsrapport 2025: Apopleksi" in text
    assert "STROKE_01" in text and TEXT["da"]["at_a_glance"] in text
    # a chart's title and axis ticks are text of its SVG: there only if plotly drew it
    assert text.count(TEXT["da"]["funnel"]) >= 5
    assert text.count("jan 2025") >= 5 and text.count(TEXT["da"]["p_prime"]) >= 5
    if shutil.which("pdftotext"):
        done = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True)
        assert "Oversigt" in done.stdout
