"""The run manifest: what went in, which code and definitions, what came out, how long."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
from pathlib import Path

from pipelines import __version__
from pipelines.extract_reader import content_hash, known_hash
from pipelines.privacy import mask
from pipelines.settings import INDICATORS_DIR, PROJECT_ROOT

MANIFEST_FILE = "run_manifest.json"


def code_version() -> dict:
    version = {"package": __version__, "source_sha256": code_fingerprint()}
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, text=True,
                                capture_output=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=PROJECT_ROOT, text=True,
                               capture_output=True, timeout=10)
        if commit.returncode == 0:
            version["commit"] = commit.stdout.strip()
            version["uncommitted_changes"] = bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return version


CODE_FOLDERS = ("pipelines", "schemas", "reports", "sql")


def code_fingerprint() -> str:
    """A hash of every source file the pipeline runs (Python, SQL, templates): unlike the git
    commit it changes with uncommitted edits and exists in an installed copy too."""
    digest = hashlib.sha256()
    for folder in CODE_FOLDERS:
        for path in sorted((PROJECT_ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in (".py", ".sql", ".j2", ".html", ".css", ".yaml"):
                digest.update(str(path.relative_to(PROJECT_ROOT)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def settings_fingerprint() -> dict:
    """The environment settings that change what a run computes or publishes."""
    import os

    return {name: value for name, value in sorted(os.environ.items())
            if name.startswith("KVALITET_") and name not in (
                "KVALITET_PSEUDONYM_KEY", "KVALITET_ORCHESTRATION", "KVALITET_WAREHOUSE")}


def definitions_fingerprint() -> list[dict]:
    import yaml

    out = []
    for path in sorted(INDICATORS_DIR.rglob("*.yaml")):
        data = yaml.load(path.read_text(encoding="utf-8"),  # noqa: S506 - a safe loader
                         Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml: 10x
        out.append({"id": data.get("id"), "version": data.get("version"),
                    "file": str(path.relative_to(INDICATORS_DIR)), "sha256": content_hash(path)})
    return out


def files_with_hashes(folder: Path, skip: tuple[str, ...] = ()) -> list[dict]:
    """Every file below ``folder`` with its size and hash; names pass the privacy gate."""
    return [{"path": mask(p.relative_to(folder)), "bytes": p.stat().st_size,
             "sha256": known_hash(p)}
            for p in sorted(folder.rglob("*"))
            if p.is_file() and not any(part in skip for part in p.relative_to(folder).parts)
            and p.name not in skip]


def fingerprint(parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def write(output: Path, input_dir: Path, parameters: dict, cutoff, timings: dict,
          ingest: list[dict], registries: dict) -> Path:
    """OUTPUT/run_manifest.json. The warehouse file itself is listed without a hash (its bytes
    change with every write even when its content does not)."""
    manifest = {
        "written_at": dt.datetime.now().isoformat(timespec="seconds"),
        "code": code_version(),
        "parameters": parameters,
        "cutoff": str(cutoff) if cutoff else None,
        "inputs": files_with_hashes(input_dir),
        "definitions": definitions_fingerprint(),
        "ingest": ingest,
        "registries": registries,
        "outputs": files_with_hashes(output, skip=(MANIFEST_FILE, "kvalitet.duckdb",
                                                  "kvalitet.duckdb.wal", "plotly.min.js")),
        "timings_seconds": timings,
    }
    path = output / MANIFEST_FILE
    text = mask(json.dumps(manifest, indent=2, ensure_ascii=False))
    path.write_text(text, encoding="utf-8")
    return path
