"""A real headless Chromium opens the annual report and the unit pages from disk with the
network off."""

from __future__ import annotations

import re
import subprocess

from PIL import Image, ImageStat

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         # the network off: no name resolves and every connection goes nowhere
         "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
         "--virtual-time-budget=15000", "--enable-logging=stderr", "--v=0"]


def run_chromium(binary, profile, *args) -> subprocess.CompletedProcess:
    return subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=180)


def test_annual_report_renders_offline_without_script_errors(sample_reports, chromium, tmp_path):
    page = sample_reports["annual"] / "stroke" / "annual_report.html"
    dom = run_chromium(chromium, tmp_path / "profile-dom", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-js-errors="0"' in dom.stdout
    assert "Uncaught" not in dom.stderr
    figures = len(re.findall(r'class="plotly-graph-div', dom.stdout))
    rendered = len(re.findall(r'class="main-svg"', dom.stdout))
    assert figures >= 20 and rendered >= figures  # each figure drew its SVG
    shot = tmp_path / "report.png"
    result = run_chromium(chromium, tmp_path / "profile-shot", "--window-size=1300,2400",
                      f"--screenshot={shot}", page.as_uri())
    assert result.returncode == 0 and shot.exists()
    image = Image.open(shot).convert("L")
    colours = image.getcolors(maxcolors=1 << 16) or []
    assert ImageStat.Stat(image).stddev[0] > 20  # not a blank page
    assert len(colours) > 50


def test_the_unit_page_renders_offline_with_every_chart_drawn(sample_reports, chromium,
                                                             tmp_path):
    folder = sample_reports["monthly"] / "hospital_H401"
    page = folder / "index.html"
    dom = run_chromium(chromium, tmp_path / "profile", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-js-errors="0"' in dom.stdout
    assert "Uncaught" not in dom.stderr
    figures = len(re.findall(r'class="plotly-graph-div', dom.stdout))
    assert figures >= 10  # a run chart per indicator with months to show
    assert len(re.findall(r'class="main-svg"', dom.stdout)) >= figures
    shot = tmp_path / "unit.png"
    result = run_chromium(chromium, tmp_path / "profile-shot", "--window-size=1300,2400",
                          f"--screenshot={shot}", page.as_uri())
    assert result.returncode == 0 and shot.exists()
    assert ImageStat.Stat(Image.open(shot).convert("L")).stddev[0] > 20


def test_the_delivery_landing_page_links_every_unit_page(sample_reports):
    landing = (sample_reports["monthly"] / "index.html").read_text(encoding="utf-8")
    links = re.findall(r'href="([^"]+/index.html)"', landing)
    folders = {p.name for p in sample_reports["monthly"].iterdir() if p.is_dir()}
    assert {link.split("/")[0] for link in links} == folders
    assert all((sample_reports["monthly"] / link).is_file() for link in links)
