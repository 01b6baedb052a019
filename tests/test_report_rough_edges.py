"""The rough edges of the annual report (issue #14, item 4), each as a reader met it."""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.intervals import with_intervals
from reports import annual, figures
from reports.labels import TEXT
from tests.builders import TEST_KEY


def page_of(reports, registry: str, name: str = "annual_report.html") -> str:
    return (reports["annual"] / registry / name).read_text(encoding="utf-8")


def visible(html: str) -> str:
    """The page without the inlined plotly.js library (figure data stays)."""
    return re.sub(r'<script id="plotly-library">.*?</script>', "", html, flags=re.S)


class Sections(HTMLParser):
    """The text of each <section id=...> and each table's rows."""

    def __init__(self):
        super().__init__()
        self.section, self.text, self.tables = None, {}, {}
        self._row = self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.section = attrs.get("id")
            self.text[self.section] = ""
            self.tables[self.section] = []
        elif tag == "table" and self.section:
            self.tables[self.section].append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self.section and self.tables[self.section]:
            self.tables[self.section][-1].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self.section:
            self.text[self.section] += data
        if self._cell is not None:
            self._cell += data


def sections(html: str) -> Sections:
    parsed = Sections()
    parsed.feed(visible(html))
    return parsed


# -- the interval note: once, inside the figure, with the method used ---------------------------
def test_the_interval_note_is_drawn_once_left_aligned_and_the_lines_keep_their_labels():
    units = pl.DataFrame({"unit_name": ["A", "B"], "proportion": [0.5, 0.6],
                          "ci_low": [0.4, 0.5], "ci_high": [0.6, 0.7]})
    fig = figures.caterpillar(units, 0.55, 0.9, "t", "da", "the note")
    notes = [a for a in fig.layout.annotations if a.text == "the note"]
    assert len(notes) == 1
    assert notes[0].xanchor == "left" and notes[0].x == 0  # starts at the plot's left edge
    texts = {a.text for a in fig.layout.annotations}
    assert {TEXT["da"]["national"], TEXT["da"]["standard"]} <= texts


def test_the_stroke_report_has_one_interval_note_per_hospital_chart(sample_reports):
    html = visible(page_of(sample_reports, "stroke"))
    charts = html.count(TEXT["da"]["caterpillar_hospital"])
    assert charts >= 5
    # the note in every caterpillar's figure, and once under the overview table
    assert html.count("(Wilson)") == charts + 1


def test_the_interval_method_is_read_back_from_the_results():
    rng = np.random.default_rng(3)
    n = rng.integers(5, 200, 40)
    frame = pl.DataFrame({"numerator": (n * rng.uniform(0, 1, 40)).astype(int),
                          "denominator": n})
    for method in ("wilson", "clopper-pearson"):
        assert annual.interval_method(with_intervals(frame, method)) == method


@pytest.fixture(scope="module")
def exact_run(tmp_path_factory, sample_run):
    """The sample with --ci clopper-pearson and a small-number rule of 1..9."""
    output = tmp_path_factory.mktemp("exact")
    env = {"KVALITET_PSEUDONYM_KEY": TEST_KEY.decode(), "KVALITET_WAREHOUSE": "",
           "KVALITET_SMALL_NUMBER_MAX": "9"}
    runner = CliRunner()
    done = runner.invoke(app, ["run", "--input", str(sample_run["input"]), "--output",
                               str(output), "--ci", "clopper-pearson"], env=env)
    assert done.exit_code == 0, done.output
    report = runner.invoke(app, ["report", "annual", "--year", "2025", "--output", str(output)],
                           env=env)
    assert report.exit_code == 0, report.output
    return output / "reports" / "annual" / "2025"


def test_notes_follow_the_interval_method_and_the_configured_threshold(exact_run):
    html = unescape(visible((exact_run / "stroke" / "annual_report.html").read_text(
        encoding="utf-8")))
    assert "Clopper-Pearson" in html and "Wilson" not in html
    assert "'<10' angiver 1–9 patienter" in html
    assert "'<5'" not in html and ">&lt;5<" not in html


# -- the validation section: names, and rows without a unit said in words ---------------------
def test_validation_section_names_units_and_has_no_none_row(sample_reports):
    for registry in ("stroke", "hipfracture", "cardiac_rehab"):
        table = sections(page_of(sample_reports, registry)).tables["validation"][0]
        units = [r[0] for r in table[1:]]
        assert units and "None" not in units and "" not in units
        assert not [u for u in units if re.fullmatch(r"H?\d+", u)], units  # no bare codes
    stroke = [r[0] for r in sections(page_of(sample_reports, "stroke")).tables["validation"][0]]
    assert "Rigshospitalet" in stroke


# -- what an empty or hidden result means ------------------------------------------------------
def test_hip_06_says_its_follow_up_is_not_complete(sample_reports):
    text = sections(page_of(sample_reports, "hipfracture")).text["HIP_06"]
    assert "Opfølgningen på 730 dage er ikke afsluttet for 2025" in text
    assert "0 / 0" not in visible(page_of(sample_reports, "hipfracture"))


def test_no_units_meeting_figure_without_an_explanation(sample_reports):
    for registry in ("stroke", "hipfracture", "cardiac_rehab"):
        html = visible(page_of(sample_reports, registry))
        assert not re.search(r"\b0 / 0\b", html)
        assert not re.search(r"standarden: \d+ / \d+", html)


def test_a_table_of_only_hidden_rows_is_one_sentence(sample_reports):
    t = TEXT["da"]
    found = 0
    for registry in ("stroke", "hipfracture", "cardiac_rehab"):
        parsed = sections(page_of(sample_reports, registry))
        for section, tables in parsed.tables.items():
            for table in tables:
                if table and t["denominator"] in table[0]:
                    column = table[0].index(t["denominator"])
                    shown = [r[column] for r in table[1:]]
                    assert shown and not all(v in ("<5", "..") for v in shown), section
        found += visible(page_of(sample_reports, registry)).count(
            "har for få patienter til at vise tallene")
    assert found >= 1  # the sample has such tables (cardiac rehab's small hospitals)


def test_risk_adjusted_indicators_say_the_standard_is_judged_on_the_crude_proportion(
        sample_reports):
    t = TEXT["da"]
    for registry, indicator in (("stroke", "STROKE_06"), ("hipfracture", "HIP_05")):
        parsed = sections(page_of(sample_reports, registry))
        assert t["standard_crude_note"] in parsed.text[indicator]
        headers = [table[0] for table in parsed.tables[indicator] if table]
        assert any(t["standard_met_crude"] in h and t["adjusted"] in h for h in headers)
    other = sections(page_of(sample_reports, "stroke")).text["STROKE_01"]
    assert t["standard_crude_note"] not in other


# -- the O/E funnel ------------------------------------------------------------------------------
def oe_units():
    return pl.DataFrame({"unit_name": ["A", "B", "C", "D"], "numerator": [2, 30, 9, 60],
                         "expected": [1.2, 12.0, 10.0, 61.0],
                         "oe_ratio": [2 / 1.2, 2.5, 0.9, 60 / 61]})


def test_oe_funnel_axis_spans_the_units_not_the_limits():
    fig = figures.oe_funnel(oe_units(), "t", "da")
    low, high = fig.layout.yaxis.range
    assert low == 0 and 2.5 <= high <= 2.5 * 1.2  # the limits at E=0.5 reach ~16
    ticks = list(fig.layout.xaxis.ticktext)
    assert ticks and all(re.fullmatch(r"\d+(,\d)?", x) for x in ticks)
    values = [float(x.replace(",", ".")) for x in ticks]
    assert values == sorted(values) and len(set(values)) == len(values)  # no 5 6 7 8 9 1 2


def test_oe_funnel_colours_units_by_signal():
    fig = figures.oe_funnel(oe_units(), "t", "da")
    points = [tr for tr in fig.data if tr.mode == "markers"]
    by_name = {tr.name: set(tr.text) for tr in points}
    assert by_name[TEXT["da"]["signal_labels"]["high (99.8 %)"]] == {"B"}  # 30 vs 12 expected
    assert "C" in by_name[TEXT["da"]["signal_labels"]["not significant"]]
    assert len({tr.marker.color for tr in points}) == len(points) >= 2
