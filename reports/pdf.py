"""A report page printed to PDF by headless Chromium (charts drawn by their scripts first)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM_ENV = "KVALITET_CHROMIUM"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--no-pdf-header-footer", "--run-all-compositor-stages-before-draw",
         # offline: the page needs nothing from the network
         "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=30000"]


class PdfError(RuntimeError):
    """No browser to print with, or the browser failed."""

    masked = True


def chromium() -> str:
    found = os.environ.get(CHROMIUM_ENV) or shutil.which("chromium") or shutil.which(
        "chromium-browser") or shutil.which("google-chrome")
    if not found:
        raise PdfError("--pdf needs Chromium (apt-get install chromium, or set "
                       f"{CHROMIUM_ENV} to the browser's path)")
    return found


def print_pdf(page: Path, target: Path, timeout: int = 300) -> Path:
    """Print ``page`` (a local HTML file) to ``target`` with the page's print CSS."""
    with tempfile.TemporaryDirectory(prefix="kvalitet-chromium-") as profile:
        done = subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", f"--print-to-pdf={target}",
             page.resolve().as_uri()], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0 or not target.is_file() or target.stat().st_size == 0:
        raise PdfError(f"Chromium could not print {page.name} (exit {done.returncode})")
    return target
