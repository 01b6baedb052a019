"""The ``kvalitet`` command line. Exit status: 0 ok, 1 error, 2 usage, 3 completed with failures."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from pathlib import Path
from typing import Optional

import click
import typer

from pipelines import settings

# No pretty tracebacks with local variables: a frame's locals can hold input values.
app = typer.Typer(help="Kvalitet: clinical quality registry extracts in, indicators and reports out.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

COMPLETED_WITH_FAILURES = 3


@app.callback()
def main() -> None:
    """Kvalitet: clinical quality registry extracts in, indicators and reports out."""

InputDir = typer.Option(..., "--input", "-i", exists=True, file_okay=False, readable=True,
                        help="Input directory laid out as the data contract says.")
WarehouseOpt = typer.Option(None, "--warehouse", "-w",
                            help=f"DuckDB warehouse file (default: ${settings.WAREHOUSE_ENV}, "
                                 "else <output>/kvalitet.duckdb with --output, else "
                                 "kvalitet_output/kvalitet.duckdb).")
VerboseOpt = typer.Option(False, "--verbose", "-v", help="Log every step in detail (debug).")


def _logging(verbose: bool) -> None:
    from pipelines.privacy import install_log_gate

    install_log_gate()
    for chatty in ("httpx", "httpcore"):  # Prefect's API calls, one line each otherwise
        logging.getLogger(chatty).setLevel(logging.WARNING)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")


def _key(demo: bool = False) -> bytes:
    """The pseudonymisation key, and the settings checked before any work starts (a bad
    memory limit would otherwise fail every registry one after the other)."""
    try:
        settings.check_environment()
        return settings.pseudonym_key(allow_demo=demo)
    except (settings.MissingPseudonymKey, ValueError) as problem:
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
    verbose: bool = VerboseOpt,
) -> None:
    """Load every extract of INPUT into the warehouse: validated, pseudonymised, quarantined."""
    from pipelines.ingest import ingest_directory
    from pipelines import validation_report, warehouse as wh

    _logging(verbose)
    path = warehouse or settings.default_warehouse()
    key = _key()
    with _stops_cleanly():
        summary = ingest_directory(input, path, key, progress=_progress)
        folder = report or path.parent / "validation"
        with wh.connect(path) as con:
            totals = validation_report.write(con, summary, folder)["totals"]
    typer.echo(f"{totals['rows_read']:,} rows read, {totals['rows_loaded']:,} loaded, "
               f"{totals['rows_quarantined']:,} quarantined; warehouse {path}; report {folder}")
    _exit_for(summary)


@contextlib.contextmanager
def _stops_cleanly():
    """Any error that stops a command is one masked line on stderr and exit status 1: never a
    traceback (its text and locals could carry input values)."""
    try:
        yield
    except (typer.Exit, typer.Abort, click.exceptions.ClickException):
        raise
    except KeyboardInterrupt:
        typer.secho("interrupted", fg="red", err=True)
        raise typer.Exit(130)
    except Exception as problem:
        logging.getLogger("kvalitet").debug("stopped", exc_info=True)
        typer.secho(f"the run stopped: {_reason(problem)}", fg="red", err=True)
        raise typer.Exit(1)


def _reason(problem: Exception) -> str:
    from pipelines.privacy import mask, one_line

    if getattr(problem, "masked", False) or type(problem).__name__ in (
            "BadReference", "BadInputLayout", "RiskModelError", "DefinitionError", "PdfError",
            "DeclarationError"):
        return mask(str(problem))
    return one_line(problem)


def _usage(message: str) -> typer.Exit:
    """Wrong usage: one line and exit status 2, before any work is done."""
    from pipelines.privacy import mask

    typer.secho(f"usage: {mask(message)}", fg="red", err=True)
    return typer.Exit(2)


def _cutoff(value: Optional[str]):
    import datetime as dt

    if value is None:
        return None
    try:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            raise ValueError
        return dt.date.fromisoformat(value)
    except ValueError:
        raise _usage(f"--cutoff {value!r} is not a date YYYY-MM-DD")


def _month(value: Optional[str]) -> Optional[str]:
    if value is not None and not re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", value):
        raise _usage(f"--month {value!r} is not a month YYYY-MM (e.g. 2025-06)")
    return value


def _year(value: Optional[int]) -> Optional[int]:
    if value is not None and not 1900 <= value <= 2999:
        raise _usage(f"--year {value!r} is not a year YYYY (e.g. 2025)")
    return value


def _prefect_defaults() -> None:
    """Local, offline Prefect: a patient ephemeral server, no telemetry, our logs captured."""
    for name, value in (("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120"),
                        ("DO_NOT_TRACK", "1"), ("PREFECT_SERVER_ANALYTICS_ENABLED", "false"),
                        ("PREFECT_LOGGING_EXTRA_LOGGERS", "kvalitet"),
                        ("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")):
        os.environ.setdefault(name, value)


def orchestration() -> str:
    """``direct`` or ``prefect``, from KVALITET_ORCHESTRATION. Unset (or ``auto``): Prefect when
    a Prefect server is configured (PREFECT_API_URL), else the same steps directly: without
    a server Prefect would start a temporary one for each run (5-10 s, more than a
    registry-sized run's work) whose records end with it. ``prefect`` forces that."""
    told = settings.told_orchestration()
    if told != "auto":
        return told
    return "prefect" if _prefect_server_configured() else "direct"


def _prefect_server_configured() -> bool:
    """PREFECT_API_URL in the environment or in Prefect's active profile (read as TOML, so
    that deciding costs no Prefect import)."""
    if os.environ.get("PREFECT_API_URL", "").strip():
        return True
    import tomllib

    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    path = Path(os.environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    try:
        profiles = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active", "ephemeral")
    chosen = profiles.get("profiles", {}).get(active, {})
    return isinstance(chosen, dict) and bool(str(chosen.get("PREFECT_API_URL", "")).strip())


def run_pipeline(input: Path, output: Path, warehouse: Optional[Path], cutoff: Optional[str],
                 ci: str, demo: bool = False, year: Optional[int] = None,
                 month: Optional[str] = None, kind: str = "run") -> dict:
    """Run the steps (as a Prefect flow when ``orchestration()`` says so) and report."""
    from pipelines.definitions import DefinitionError, load_definitions

    day = _cutoff(cutoff)
    _key(demo=demo)
    try:
        load_definitions(settings.INDICATORS_DIR)
    except DefinitionError as problem:
        typer.secho(f"indicator definitions are not valid:\n{problem}", fg="red", err=True)
        raise typer.Exit(1)
    from pipelines.pipeline import previous_month, previous_year

    if kind == "monthly":
        month = month or previous_month()
    if kind == "annual":
        year = year or previous_year()
    with _stops_cleanly():
        if orchestration() == "direct":
            from pipelines.pipeline import pipeline  # Prefect is not imported at all

            summary = pipeline(input, output, warehouse, day, ci, year, month, demo)
        else:
            _prefect_defaults()
            from pipelines import flows

            if not os.environ.get("PREFECT_API_URL"):
                flows.tie_temporary_server_to_this_process()
            with flows.foreground_settings():
                if kind == "monthly":
                    summary = flows.monthly_flow(input, output, warehouse, month)
                elif kind == "annual":
                    summary = flows.annual_flow(input, output, warehouse, year)
                else:
                    summary = flows.run_flow(input, output, warehouse, day, ci, year, month,
                                             demo)
    typer.echo(f"{summary['rows']:,} indicator result rows -> {summary['results']} "
               f"(cutoff {summary['cutoff']})")
    for kind_, pages in summary["reports"].items():
        where = Path(pages[0]).parent.parent if kind_ == "annual" and pages else (
            Path(pages[0]).parent if pages else "-")
        typer.echo(f"{kind_} reports: {len(pages)} -> {where}")
    typer.echo(f"manifest -> {summary['manifest']}")
    failed = {s: v for s, v in summary["registries"].items() if v != "completed"}
    for source, status in failed.items():
        typer.secho(f"REGISTRY {source} {status}", fg="red", err=True)
    for f in summary["failed_files"]:
        typer.secho(f"FAILED {f['source']}/{f['file_name']}: {f['problem']}", fg="red", err=True)
    for entry in summary.get("unrecognised", []):
        typer.secho(f"NOT AN EXTRACT {entry}: not loaded", fg="red", err=True)
    if failed or summary["failed_files"] or summary.get("unrecognised"):
        raise typer.Exit(COMPLETED_WITH_FAILURES)
    return summary


CiOption = typer.Option("wilson", "--ci", help="Interval for proportions: wilson or clopper-pearson.",
                        case_sensitive=False)


def _check_ci(ci: str) -> str:
    ci = ci.lower()
    if ci not in ("wilson", "clopper-pearson"):
        raise _usage(f"--ci {ci!r}: choose wilson or clopper-pearson")
    return ci


@app.command()
def run(
    input: Path = InputDir,
    output: Path = typer.Option(..., "--output", "-o", file_okay=False,
                                help="Output directory for results, reports and (by default) "
                                     "the warehouse."),
    cutoff: Optional[str] = typer.Option(None, help="Data cutoff YYYY-MM-DD (default: the "
                                         "latest extract date)."),
    ci: str = CiOption,
    warehouse: Optional[Path] = WarehouseOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Ingest INPUT and compute every indicator into OUTPUT/indicator_results.parquet."""
    _logging(verbose)
    run_pipeline(input, output, warehouse, cutoff, _check_ci(ci))


@app.command()
def demo(
    output: Path = typer.Option(Path("kvalitet_output"), "--output", "-o", file_okay=False),
    verbose: bool = VerboseOpt,
) -> None:
    """Run the whole pipeline on the bundled sample data (a throw-away pseudonym key)."""
    _logging(verbose)
    demo_key = not os.environ.get(settings.PSEUDONYM_KEY_ENV)
    if demo_key:
        typer.secho("demo: using a throw-away pseudonymisation key (set "
                    f"{settings.PSEUDONYM_KEY_ENV} for real data)", fg="yellow", err=True)
    run_pipeline(settings.SAMPLE_INPUT_DIR, output, None, None, "wilson", demo=True,
                 year=2025, month="2025-12")


OutputOpt = typer.Option(..., "--output", "-o", file_okay=False,
                         help="Output directory for results, reports and (by default) the warehouse.")


@app.command()
def monthly(
    input: Path = InputDir, output: Path = OutputOpt,
    month: Optional[str] = typer.Option(None, help="YYYY-MM (default: the previous month)."),
    warehouse: Optional[Path] = WarehouseOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """The monthly flow: ingest new extracts, compute, deliver to every unit."""
    _logging(verbose)
    run_pipeline(input, output, warehouse, None, "wilson", month=_month(month), kind="monthly")


@app.command()
def annual(
    input: Path = InputDir, output: Path = OutputOpt,
    year: Optional[int] = typer.Option(None, help="The report year (default: the previous)."),
    warehouse: Optional[Path] = WarehouseOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """The annual flow: ingest, compute, and the annual report for the year."""
    _logging(verbose)
    run_pipeline(input, output, warehouse, None, "wilson", year=_year(year), kind="annual")


@app.command()
def serve(
    input: Path = InputDir, output: Path = OutputOpt,
    warehouse: Optional[Path] = WarehouseOpt,
) -> None:
    """Register the scheduled deployments (monthly: the 5th at 06:00; annual: 1 March at 06:00,
    Europe/Copenhagen) with the Prefect server in PREFECT_API_URL and run them when due."""
    _prefect_defaults()
    if not os.environ.get("PREFECT_API_URL"):
        typer.secho("set PREFECT_API_URL to a running Prefect server (see README: "
                    "'prefect server start')", fg="red", err=True)
        raise typer.Exit(1)
    _key()
    import httpx

    from pipelines.deployments import serve_deployments

    with _stops_cleanly():
        try:
            serve_deployments(input.resolve(), output.resolve(),
                              warehouse.resolve() if warehouse else None)
        except httpx.TransportError:  # the URL is not printed: it may carry credentials
            typer.secho("cannot reach the Prefect server in PREFECT_API_URL; is it running "
                        "('prefect server start')?", fg="red", err=True)
            raise typer.Exit(1)


indicators_app = typer.Typer(help="Check and document the indicator definitions.",
                             no_args_is_help=True)
app.add_typer(indicators_app, name="indicators")


@indicators_app.command("check")
def indicators_check() -> None:
    """Validate every definition: size and nesting bounds, fields, columns, types, a trial on
    an empty and a sample frame of its registry, unique ids. One line per problem, exit 1."""
    import polars as pl

    from pipelines.definitions import DefinitionError, load_definitions

    try:
        definitions = load_definitions(settings.INDICATORS_DIR)
    except DefinitionError as problem:
        lines = str(problem).splitlines()
        for line in lines:
            typer.secho(line, fg="red")
        typer.secho(f"{len(lines)} problem(s) in the indicator definitions", fg="red", err=True)
        raise typer.Exit(1)
    except (Exception, pl.exceptions.PanicException) as problem:  # never a traceback
        typer.secho(f"the indicator definitions could not be checked ({type(problem).__name__})",
                    fg="red")
        raise typer.Exit(1)
    typer.echo(f"{len(definitions)} indicator definitions are valid ({settings.INDICATORS_DIR})")


@indicators_app.command("docs")
def indicators_docs(
    output: Path = typer.Option(Path("docs/indicators.md"), "--output", "-o"),
) -> None:
    """Render the catalogue as Markdown from the definition files."""
    from pipelines.catalogue import render_markdown
    from pipelines.definitions import DefinitionError, load_definitions

    try:
        definitions = load_definitions(settings.INDICATORS_DIR)
    except DefinitionError as problem:
        typer.secho(f"indicator definitions are not valid (see kvalitet indicators check):\n"
                    f"{problem}", fg="red", err=True)
        raise typer.Exit(1)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_markdown(definitions), encoding="utf-8")
    typer.echo(f"wrote {output}")


report_app = typer.Typer(help="Annual reports and monthly deliveries from the warehouse.",
                         no_args_is_help=True)
app.add_typer(report_app, name="report")
LanguageOpt = typer.Option("da", "--language", "-l", help="da (default), en, sv: any "
                           "reports/messages/<language>.yaml; each language its own files.")


def _report_paths(output: Optional[Path], warehouse: Optional[Path], kind: str, period: str
                  ) -> tuple[Path, Path]:
    """(warehouse, reports folder). ``--output`` is a run's output folder, as for
    ``kvalitet run``: its warehouse is used and the reports go to its reports/ folder."""
    if warehouse is None:
        warehouse = (output / settings.WAREHOUSE_FILE_NAME if output is not None
                     and not os.environ.get(settings.WAREHOUSE_ENV, "").strip()
                     else settings.default_warehouse(output))
    base = output if output is not None else warehouse.parent
    return warehouse, base / "reports" / kind / period


def _language(language: str) -> str:
    from reports.labels import languages

    if language not in languages():
        raise _usage(f"--language {language!r}: choose {', '.join(languages())}")
    return language


@report_app.command("annual")
def report_annual(
    year: int = typer.Option(..., "--year", help="The report year, e.g. 2025."),
    warehouse: Optional[Path] = WarehouseOpt,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="The run's output "
                                          "folder: its warehouse, and reports/annual/YEAR in it "
                                          "(default: beside the warehouse)."),
    language: str = LanguageOpt,
    pdf: bool = typer.Option(False, "--pdf", help="Also print each report to PDF (headless "
                             "Chromium)."),
    comments: Optional[Path] = typer.Option(None, "--comments", file_okay=False,
                                            help="Steering-group commentary: COMMENTS/<year>/"
                                                 "<indicator>.md (default: ./comments)."),
) -> None:
    """One self-contained HTML report per registry, with Excel, Parquet and CSV tables."""
    from pipelines import steps

    year, language = _year(year), _language(language)
    path, folder = _report_paths(output, warehouse, "annual", str(year))
    with _stops_cleanly():
        pages = steps.annual_reports(path, folder, year, language, comments, pdf)
    for page in pages:
        typer.echo(f"wrote {page}")


@report_app.command("monthly")
def report_monthly(
    month: str = typer.Option(..., "--month", help="The delivery month YYYY-MM."),
    warehouse: Optional[Path] = WarehouseOpt,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="The run's output "
                                          "folder: its warehouse, and reports/monthly/MONTH in "
                                          "it (default: beside the warehouse)."),
    language: str = LanguageOpt,
) -> None:
    """A folder per reporting unit (hospital, municipality, clinic) with its own results, run charts and records."""
    from pipelines import steps

    month, language = _month(month), _language(language)
    path, folder = _report_paths(output, warehouse, "monthly", month)
    with _stops_cleanly():
        folders = steps.monthly_deliveries(path, folder, month, language)
    typer.echo(f"wrote {len(folders)} unit deliveries to {folder}")


extract_app = typer.Typer(help="The extracts loaded into the warehouse.", no_args_is_help=True)
app.add_typer(extract_app, name="extract")


@extract_app.command("list")
def extract_list(warehouse: Optional[Path] = WarehouseOpt) -> None:
    """Every extract loaded, with its rows and whether it was retracted."""
    from pipelines import warehouse as wh

    path = warehouse or settings.default_warehouse()
    with _stops_cleanly(), wh.connect(path, read_only=True) as con:
        rows = con.execute("SELECT file_id, source, file_name, extract_date, rows_loaded, "
                           "rows_quarantined, retracted_at, retracted_by FROM extract_files "
                           "ORDER BY source, extract_date, file_id").fetchall()
    for file_id, source, name, day, loaded, quarantined, retracted_at, by in rows:
        state = f"retracted {retracted_at:%Y-%m-%d %H:%M} by {by}" if retracted_at else "current"
        typer.echo(f"{file_id:>5}  {source}/{name}  {day}  {loaded} loaded, {quarantined} "
                   f"quarantined  {state}")


@extract_app.command("retract")
def extract_retract(
    file: str = typer.Argument(..., help="The extract file (its path, or its name as "
                                          "'kvalitet extract list' shows it)."),
    warehouse: Optional[Path] = WarehouseOpt,
    by: Optional[str] = typer.Option(None, "--by", help="Who retracts it (default: the login "
                                                        "name)."),
    source: Optional[str] = typer.Option(None, "--source", help="The registry, where the name "
                                                                "alone is ambiguous."),
) -> None:
    """Take a wrong delivery back out: its rows leave the current data (the history keeps them,
    marked retracted, with who and when). Recompute with 'kvalitet run' afterwards."""
    import getpass

    from pipelines import warehouse as wh
    from pipelines.extract_reader import content_hash
    from pipelines.privacy import mask
    from pipelines.sources import UnreadableExtract, extract_date_of

    path = warehouse or settings.default_warehouse()
    given = Path(file)
    who = by or getpass.getuser()
    with _stops_cleanly(), wh.connect(path) as con:
        if given.is_file():
            try:
                day = extract_date_of(given)
            except UnreadableExtract as problem:
                raise _usage(problem.problem)
            query = ("SELECT file_id, source, file_name, retracted_at FROM extract_files "
                     "WHERE content_hash = ? AND extract_date = ?", [content_hash(given), day])
        else:
            query = ("SELECT file_id, source, file_name, retracted_at FROM extract_files "
                     "WHERE file_name = ?", [mask(given.name)])
        found = [r for r in con.execute(*query).fetchall() if source in (None, r[1])]
        if not found:
            typer.secho(f"no extract {mask(given.name)} in {path} (see 'kvalitet extract list')",
                        fg="red", err=True)
            raise typer.Exit(1)
        if len(found) > 1:
            raise _usage(f"{mask(given.name)} names {len(found)} extracts; add --source")
        file_id, registry, name, retracted_at = found[0]
        if retracted_at is not None:
            typer.echo(f"{registry}/{name} was already retracted at {retracted_at:%Y-%m-%d %H:%M}")
            return
        with wh.transaction(con):
            con.execute("UPDATE extract_files SET retracted_at = now()::TIMESTAMP, "
                        "retracted_by = ? WHERE file_id = ?", [mask(who), file_id])
            if registry in wh.record_sources(con):
                wh.refresh_current(con, registry)  # its records fall back to earlier extracts
    typer.echo(f"retracted {registry}/{name}: its rows no longer count; run 'kvalitet run' to "
               "recompute the results")


model_app = typer.Typer(help="Risk-adjustment models.", no_args_is_help=True)
app.add_typer(model_app, name="model")


@model_app.command("report")
def model_report(
    indicator: str = typer.Option(..., "--indicator", help="A risk-adjusted indicator, e.g. STROKE_06."),
    year: int = typer.Option(..., "--year", help="The model's year, e.g. 2024."),
    warehouse: Optional[Path] = WarehouseOpt,
) -> None:
    """Print a case-mix model's fit: n, events, c-statistic, Hosmer-Lemeshow, coefficients."""
    from pipelines import warehouse as wh

    _year(year)
    path = warehouse or settings.default_warehouse()
    with _stops_cleanly(), wh.connect(path, read_only=True) as con:
        fit = con.execute("SELECT * FROM risk_models WHERE indicator_id = ? AND year = ?",
                          [indicator, year]).fetchall()
        columns = [d[0] for d in con.description]
        terms = con.execute("SELECT term, estimate, std_error, ci_low, ci_high, odds_ratio "
                            "FROM risk_model_coefficients WHERE indicator_id = ? AND year = ? "
                            "ORDER BY position", [indicator, year]).fetchall()
        available = con.execute("SELECT DISTINCT indicator_id || ' ' || year FROM risk_models "
                                "ORDER BY 1").fetchall()
    if not fit:
        options = ", ".join(a[0] for a in available) or "none (run kvalitet run first)"
        typer.secho(f"no model for {indicator} {year} in {path}; available: {options}", fg="red",
                    err=True)
        raise typer.Exit(1)
    m = dict(zip(columns, fit[0]))
    typer.echo(f"{indicator} {year}: logistic regression on {m['n']:,} national denominator "
               f"records, {m['events']:,} events ({m['events'] / m['n']:.1%})")
    typer.echo(f"  c-statistic {m['c_statistic']:.3f}; Hosmer-Lemeshow chi2 "
               f"{m['hosmer_lemeshow_chi2']:.2f} on {m['hosmer_lemeshow_df']} df, "
               f"p = {m['hosmer_lemeshow_p']:.3f}; converged: {m['converged']}")
    if m["dropped_categories"]:
        typer.echo(f"  dropped (no records, or aliased): {m['dropped_categories']}")
    typer.echo(f"  {'term':<28}{'estimate':>10}{'std.err':>10}{'OR':>9}{'95% CI of OR':>22}")
    import math

    for term, estimate, se, low, high, odds in terms:
        typer.echo(f"  {term:<28}{estimate:>10.4f}{se:>10.4f}{odds:>9.3f}"
                   f"{f'{math.exp(low):.3f} - {math.exp(high):.3f}':>22}")


from reports.portal.cli import portal_app  # noqa: E402  (the reporting portal, issue #15)

app.add_typer(portal_app, name="portal")


def _exit_for(summary) -> None:
    for f in summary.failed:
        typer.secho(f"FAILED {f.source}/{f.file_name}: {f.problem}", fg="red", err=True)
    for entry in summary.unrecognised:
        typer.secho(f"NOT AN EXTRACT {entry}: not loaded", fg="red", err=True)
    if summary.failed or summary.unrecognised:
        raise typer.Exit(COMPLETED_WITH_FAILURES)


def command_line() -> None:
    """The ``kvalitet`` command and ``python -m pipelines.cli``."""
    for name in ("stdout", "stderr"):  # started with a stream closed (`>&-`): say nothing there
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w"))
    sys.stdout, sys.stderr = _ReaderMayGo(sys.stdout), _ReaderMayGo(sys.stderr)
    if sys.getprofile() or sys.gettrace():  # a profiler or coverage writes its data at exit
        app()
        return
    try:
        app()
    except SystemExit as stop:
        _leave(stop.code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        _leave(130)
    except Exception as problem:  # the last resort: never a traceback (see _stops_cleanly)
        print(f"kvalitet: {_reason(problem)}", file=sys.stderr)
        _leave(1)
    _leave(0)


class _ReaderMayGo:
    """A stream whose reader may leave (`| head -c0`): what is said there afterwards is
    dropped, so the command still names its failed files on the other stream and exits with
    its own status. Everything said there passes the privacy gate (a path the user gave, a
    name from the input: the terminal is one more place a CPR number must not reach)."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        from pipelines.privacy import mask

        if not isinstance(text, str):  # as a text stream does (click probes with b"")
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        try:
            self._stream.write(mask(text))
            return len(text)
        except BrokenPipeError:
            self._gone()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._gone()

    @property
    def buffer(self) -> "_GatedBuffer":
        """click writes its messages as bytes to the stream's buffer: through the gate too."""
        return _GatedBuffer(self)

    def _gone(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())  # the buffered rest goes nowhere, quietly
        os.close(devnull)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


class _GatedBuffer:
    """The bytes side of a gated stream: decoded and said through it (so in order with it)."""

    def __init__(self, text: _ReaderMayGo) -> None:
        self._text = text

    def write(self, data: bytes) -> int:
        self._text.write(bytes(data).decode(self._text.encoding or "utf-8", "replace"))
        return len(data)

    def flush(self) -> None:
        self._text.flush()


def _leave(status) -> None:
    """Exit as Python would (other threads finished, exit handlers run: Prefect sends its last
    logs and events, logging flushes; the streams flushed), without tearing the interpreter
    down: its last garbage collections walk every object of Pandera, pandas, SciPy,
    statsmodels (and Prefect), 0.5-1 s of a small run, freeing nothing once the process ends."""
    import atexit
    import threading

    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    if status is None or isinstance(status, int):
        code = status or 0
    else:  # as Python does with SystemExit("message")
        print(status, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said on it
            pass
    os._exit(code)


if __name__ == "__main__":
    command_line()
