"""`pip install .` (not only -e) carries everything a run reads beside the code."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from pipelines.settings import PROJECT_ROOT


def test_the_wheel_holds_sql_definitions_templates_and_the_sample(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "-w", str(tmp_path), str(PROJECT_ROOT)], capture_output=True, text=True)
    if built.returncode and "bdist_wheel" in built.stderr:  # no wheel package: build isolated
        built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w",
                                str(tmp_path), str(PROJECT_ROOT)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next(tmp_path.glob("kvalitet-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    needed = {str(p.relative_to(PROJECT_ROOT)) for folder in ("sql", "indicators", "schemas",
                                                              "reports")
              for p in (PROJECT_ROOT / folder).rglob("*") if p.is_file()
              and "__pycache__" not in p.parts}  # every file: SQL, templates, YAML, catalogues
    needed |= {str(p.relative_to(PROJECT_ROOT)) for p in
               (PROJECT_ROOT / "sample_data" / "input").rglob("*") if p.is_file()}
    needed |= {str(p.relative_to(PROJECT_ROOT)) for p in
               (PROJECT_ROOT / "reports" / "templates").iterdir()}
    assert len(needed) > 40
    assert needed <= names, sorted(needed - names)[:10]
