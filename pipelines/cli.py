"""The ``kvalitet`` command line. Exit status: 0 ok, 1 error, 2 usage, 3 completed with failures."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Optional

import typer

from pipelines import settings

app = typer.Typer(help="Kvalitet: clinical quality registry extracts in, indicators and reports out.",
                  no_args_is_help=True, add_completion=False)

COMPLETED_WITH_FAILURES = 3


@app.callback()
def main() -> None:
    """Kvalitet: clinical quality registry extracts in, indicators and reports out."""

InputDir = typer.Option(..., "--input", "-i", exists=True, file_okay=False, readable=True,
                        help="Input directory laid out as the data contract says.")
WarehouseOpt = typer.Option(None, "--warehouse", "-w",
                            help=f"DuckDB warehouse file (default: ${settings.WAREHOUSE_ENV}, "
                                 "else <output>/kvalitet.duckdb).")


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")


def _key(demo: bool = False) -> bytes:
    try:
        return settings.pseudonym_key(allow_demo=demo)
    except settings.MissingPseudonymKey as problem:
        typer.secho(str(problem), fg="red", err=True)
        raise typer.Exit(1)


def _progress(done: int, total: int, what: str) -> None:
    if what != "done":
        typer.echo(f"[{done + 1}/{total}] {what}", err=True)


@app.command()
def ingest(
    input: Path = InputDir,
    warehouse: Optional[Path] = WarehouseOpt,
    report: Optional[Path] = typer.Option(None, help="Folder for the validation report "
                                          "(default: beside the warehouse, in validation/)."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Load every extract of INPUT into the warehouse: validated, pseudonymised, quarantined."""
    from pipelines.ingest import ingest_directory
    from pipelines import validation_report, warehouse as wh

    _logging(verbose)
    path = warehouse or settings.default_warehouse()
    summary = ingest_directory(input, path, _key(), progress=_progress)
    folder = report or path.parent / "validation"
    with wh.connect(path) as con:
        totals = validation_report.write(con, summary, folder)["totals"]
    typer.echo(f"{totals['rows_read']:,} rows read, {totals['rows_loaded']:,} loaded, "
               f"{totals['rows_quarantined']:,} quarantined; warehouse {path}; report {folder}")
    _exit_for(summary)


def _exit_for(summary) -> None:
    if summary.failed:
        for f in summary.failed:
            typer.secho(f"FAILED {f.source}/{f.file_name}: {f.problem}", fg="red", err=True)
        raise typer.Exit(COMPLETED_WITH_FAILURES)


if __name__ == "__main__":
    app()
