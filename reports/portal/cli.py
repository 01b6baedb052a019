"""``kvalitet portal ...``: users, the access log, the audit round, and ``serve``.

Passwords come from standard input only (never an argument, never echoed); a wrong
usage is one line and exit status 2.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

DbOpt = typer.Option(None, "--db", envvar="KVALITET_PORTAL_DB",
                     help="The portal database (default: ~/.local/state/kvalitet/portal.sqlite3).")
OUTPUT_ENV = "KVALITET_PORTAL_OUTPUT"

portal_app = typer.Typer(help="The reporting portal: each unit logs in and sees its own data.",
                         no_args_is_help=True)
user_app = typer.Typer(help="Portal users and their roles.", no_args_is_help=True)
round_app = typer.Typer(help="The annual audit round: the commenting window per year.",
                        no_args_is_help=True)
portal_app.add_typer(user_app, name="user")
portal_app.add_typer(round_app, name="round")


def _usage(message: str) -> typer.Exit:
    from pipelines.privacy import mask

    typer.secho(f"usage: {mask(message)}", fg="red", err=True)
    return typer.Exit(2)


def _store(db: Optional[Path]):
    from reports.portal.store import Store

    return Store(db)


def _read_password() -> str:
    if sys.stdin is None:
        raise _usage("give the password on standard input (--password-stdin)")
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise _usage("the two passwords differ")
        return first
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


def _known_units(output: Optional[Path], store) -> tuple[dict, set]:
    """Units and regions from the reference tables and from what OUTPUT published (the
    folder given, else KVALITET_PORTAL_OUTPUT, else the one ``serve`` last used)."""
    from reports.portal.published import Published, reference_units

    units, regions = reference_units()
    folder = output or (Path(os.environ[OUTPUT_ENV]) if os.environ.get(OUTPUT_ENV) else None)
    if folder is None and store.setting("output"):
        folder = Path(store.setting("output"))
    if folder is not None and folder.is_dir():
        for unit in Published(folder).all_units().values():
            units.setdefault(unit.key, unit.region)
            if unit.region:
                regions.add(unit.region)
    return units, regions


@user_app.command("add")
def user_add(
    username: str = typer.Argument(..., help="The login name."),
    role: List[str] = typer.Option(..., "--role", help="unit, region, national or admin "
                                   "(admin may be given beside one data role)."),
    unit: Optional[str] = typer.Option(None, "--unit", help="LEVEL:CODE for --role unit, "
                                       "e.g. hospital:H101, municipality:101."),
    region: Optional[str] = typer.Option(None, "--region", help="Region code for --role region."),
    password_stdin: bool = typer.Option(False, "--password-stdin",
                                        help="Read the password from standard input."),
    output: Optional[Path] = typer.Option(None, "--output", help="A published OUTPUT whose "
                                          "units count as known (default: the one served)."),
    db: Optional[Path] = DbOpt,
) -> None:
    """Add a user; the password (at least 12 characters) is read from standard input."""
    from reports.portal.identity import MIN_PASSWORD, BadUser, LocalPasswords

    store = _store(db)
    units, regions = _known_units(output, store)
    if unit is not None:
        level, _, code = unit.partition(":")
        matches = [k for k in units if k.lower() == f"{level}:{code}".lower()]
        if not code or not matches:
            raise _usage(f"unknown unit {unit!r}: give LEVEL:CODE of a known reporting unit "
                         "(e.g. hospital:H101, municipality:101)")
        unit = matches[0]
    if region is not None and region not in regions:
        raise _usage(f"unknown region {region!r}; known: {', '.join(sorted(regions))}")
    password = _read_password()
    if len(password) < MIN_PASSWORD:
        raise _usage(f"the password is shorter than {MIN_PASSWORD} characters")
    try:
        who = LocalPasswords(store).add_user(username, role, password, unit=unit, region=region)
    except BadUser as problem:
        raise _usage(str(problem))
    typer.echo(f"added {who.username}: {who.describes}")


@user_app.command("remove")
def user_remove(username: str = typer.Argument(...), db: Optional[Path] = DbOpt) -> None:
    """Remove a user; their sessions end at once."""
    from reports.portal.identity import LocalPasswords

    if not LocalPasswords(_store(db)).remove_user(username):
        typer.secho(f"no user {username}", fg="red", err=True)
        raise typer.Exit(1)
    typer.echo(f"removed {username}")


@user_app.command("list")
def user_list(db: Optional[Path] = DbOpt) -> None:
    """Every user and role."""
    from reports.portal.identity import LocalPasswords

    for who in LocalPasswords(_store(db)).users():
        typer.echo(f"{who.username}\t{who.describes}")


@portal_app.command("audit")
def audit(
    since: Optional[str] = typer.Option(None, "--since", help="YYYY-MM-DD (UTC)."),
    format: str = typer.Option("csv", "--format", help="csv or json."),
    db: Optional[Path] = DbOpt,
) -> None:
    """Print the access log: time (UTC), username, action, unit, path, outcome, client."""
    from reports.portal import access_log

    day = None
    if since is not None:
        try:
            day = dt.date.fromisoformat(since)
        except ValueError:
            raise _usage(f"--since {since!r} is not a date YYYY-MM-DD")
    if format not in ("csv", "json"):
        raise _usage(f"--format {format!r}: choose csv or json")
    rows = access_log.rows(_store(db), day)
    typer.echo(access_log.as_csv(rows) if format == "csv" else access_log.as_json(rows),
               nl=format == "json")


@round_app.command("open")
def round_open(year: int = typer.Argument(...), by: Optional[str] = typer.Option(None, "--by"),
               db: Optional[Path] = DbOpt) -> None:
    """Open the commenting window for YEAR: the annual report is "Foreløbig" until closed."""
    from reports.portal import audit_round

    audit_round.open_window(_store(db), year, by or getpass.getuser())
    typer.echo(f"the commenting window for {year} is open")


@round_app.command("close")
def round_close(year: int = typer.Argument(...), by: Optional[str] = typer.Option(None, "--by"),
                db: Optional[Path] = DbOpt) -> None:
    """Close the commenting window for YEAR."""
    from reports.portal import audit_round

    if not audit_round.close_window(_store(db), year, by or getpass.getuser()):
        typer.secho(f"no open window for {year}", fg="red", err=True)
        raise typer.Exit(1)
    typer.echo(f"the commenting window for {year} is closed")


@round_app.command("comments")
def round_comments(year: int = typer.Argument(...), db: Optional[Path] = DbOpt) -> None:
    """Every comment of YEAR as JSON (unit, indicator, author, time, text)."""
    from reports.portal import audit_round

    typer.echo(json.dumps(audit_round.comments_for_year(year, _store(db)), ensure_ascii=False,
                          indent=1))


@portal_app.command("serve")
def serve(
    output: Path = typer.Option(..., "--output", "-o", exists=True, file_okay=False,
                                help="The output folder the monthly and annual reports were "
                                     "published to (kvalitet monthly/annual/report/demo)."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port", min=1, max=65535),
    workers: int = typer.Option(1, "--workers", min=1, help="uvicorn worker processes."),
    proxy: bool = typer.Option(False, "--behind-proxy", help="Trust X-Forwarded-Proto/-For "
                               "from the reverse proxy on this host (TLS ends there)."),
    ssl_certfile: Optional[Path] = typer.Option(None, "--ssl-certfile", help="Serve HTTPS "
                                                "directly with this certificate (PEM)."),
    ssl_keyfile: Optional[Path] = typer.Option(None, "--ssl-keyfile", help="Its private key."),
    db: Optional[Path] = DbOpt,
) -> None:
    """Serve the portal with uvicorn. It reads OUTPUT only; the warehouse is never opened."""
    import uvicorn

    store = _store(db)
    store.set_setting("output", str(output.resolve()))
    os.environ["KVALITET_PORTAL_DB"] = str(store.path)
    os.environ[OUTPUT_ENV] = str(output.resolve())
    from pipelines.privacy import install_log_gate

    install_log_gate()
    try:
        uvicorn.run("reports.portal.cli:application", factory=True, host=host, port=port,
                    workers=workers, proxy_headers=proxy,
                    forwarded_allow_ips="127.0.0.1" if proxy else None, access_log=False,
                    log_level="warning", ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
                    ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None)
    except SystemExit as stop:
        if stop.code == 3:  # uvicorn could not start; 3 is our "completed with failures"
            typer.secho(f"the portal could not start on {host}:{port} (the port in use, or "
                        "the address not on this machine?)", fg="red", err=True)
            raise typer.Exit(1) from None
        raise


def application():
    """uvicorn's factory: the app for OUTPUT and the database named in the environment."""
    from reports.portal.routes import create_app
    from reports.portal.store import Store

    return create_app(Path(os.environ[OUTPUT_ENV]), Store(Path(os.environ["KVALITET_PORTAL_DB"])))
