"""The ``bravesteps`` command line.

Every command exits 0 on success and otherwise prints one line on stderr: 2 for a bad argument,
1 for anything else. Nothing here prints a phone number or a message.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import traceback
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any

import click
from sqlalchemy.exc import OperationalError, ProgrammingError

from service.config import ConfigError, Settings, load_settings, valid_timezone
from service.db import upgrade
from service.wiring import ContentError, Services, build_services

log = logging.getLogger("bravesteps.cli")


class Failure(click.ClickException):
    """A one-line failure, exit 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"bravesteps: {self.format_message()}", err=True)


def _settings(**kwargs: Any) -> Settings:
    try:
        return load_settings(**kwargs)
    except ConfigError as exc:
        raise Failure(str(exc)) from None


def _services(settings: Settings, clock: Callable[[], datetime] | None = None) -> Services:
    try:
        return build_services(settings, clock=clock)
    except ContentError as exc:
        raise Failure("the flow files have problems:\n" + "\n".join(exc.lines)) from None


def database_failure(exc: OperationalError | ProgrammingError) -> Failure:
    """One line for a database error: what is wrong and what to run. Never the SQL or the URL."""
    text = str(exc.orig) if exc.orig is not None else str(exc)
    kind = type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__
    if (
        "no such table" in text
        or "no such column" in text
        or kind in ("UndefinedTable", "UndefinedColumn")
    ):
        return Failure(
            "the database is not set up (or not at the newest schema); run: bravesteps db upgrade"
        )
    if "database" in text and "does not exist" in text:
        return Failure(
            "the database named in DATABASE_URL does not exist; create it (createdb NAME), "
            "then run: bravesteps db upgrade"
        )
    if "unable to open database file" in text:
        return Failure("cannot open the SQLite file named in DATABASE_URL")
    if "connection" in text.lower() or "could not translate host name" in text:
        return Failure("cannot reach the database in DATABASE_URL; is it running?")
    return Failure(f"the database refused the request ({kind})")


def database_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a database that is missing, unreachable or not migrated into one clear line."""

    @wraps(command)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (OperationalError, ProgrammingError) as exc:
            raise database_failure(exc) from None

    return wrapped


@click.group()
def cli() -> None:
    """bravesteps: parent-led CBT steps for families, by SMS and WhatsApp."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


# ---- database -------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """The database."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database to the newest schema."""
    settings = _settings()
    try:
        upgrade(settings.database_url)
    except (OperationalError, ProgrammingError) as exc:
        raise database_failure(exc) from None
    click.echo("database is at the newest schema")


# ---- people ---------------------------------------------------------------------------------


@cli.group()
def therapist() -> None:
    """Staff who receive alerts."""


@therapist.command("add")
@click.option("--name", required=True)
@click.option("--phone", required=True)
@click.option("--email")
@click.option("--channel", type=click.Choice(["sms", "whatsapp"]), default="sms", show_default=True)
@click.option(
    "--role",
    type=click.Choice(["therapist", "duty", "safeguarding", "lead"]),
    default="therapist",
    show_default=True,
)
@database_errors
def therapist_add(name: str, phone: str, email: str | None, channel: str, role: str) -> None:
    """Add a member of staff; prints their reference on the last line."""
    from service.enrolment import EnrolmentError, add_staff

    svc = _services(_settings())
    try:
        with svc.db.transaction() as session:
            staff = add_staff(
                session,
                name=name,
                phone=phone,
                email=email,
                channel=channel,
                role=role,
                region=svc.settings.default_region,
                now=svc.now(),
            )
            ref = staff.ref
    except EnrolmentError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"added {role} {name}")
    click.echo(ref)


@cli.group()
def user() -> None:
    """Logins for the staff web app."""


@user.command("add")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", type=click.Choice(["admin", "therapist", "school"]), required=True)
@click.option("--therapist", "therapist_ref", help="the staff reference whose families they see")
@database_errors
def user_add(email: str, name: str, role: str, therapist_ref: str | None) -> None:
    """Add a login; the password comes from BRAVESTEPS_PASSWORD or is asked for."""
    import os

    from service.auth import UserError, add_user

    password = os.environ.get("BRAVESTEPS_PASSWORD") or click.prompt(
        "Password", hide_input=True, confirmation_prompt=True
    )
    svc = _services(_settings())
    try:
        with svc.db.transaction() as session:
            added = add_user(
                session,
                email=email,
                name=name,
                role=role,
                password=password,
                therapist_ref=therapist_ref,
                now=svc.now(),
            )
            address = added.email
    except UserError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"added {role} login {address}")


def _timezone(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not valid_timezone(value):
        raise click.BadParameter("must be an IANA time zone like Europe/London")
    return value


@cli.command()
@click.option("--phone", required=True)
@click.option("--channel", type=click.Choice(["sms", "whatsapp"]), required=True)
@click.option("--child-name", required=True)
@click.option("--child-age", type=int, required=True)
@click.option("--therapist", "therapist_ref", required=True, help="the therapist's reference")
@click.option("--language", default="en", show_default=True)
@click.option("--timezone", callback=_timezone)
@click.option("--session-day")
@click.option("--session-time")
@database_errors
def enrol(
    phone: str,
    channel: str,
    child_name: str,
    child_age: int,
    therapist_ref: str,
    language: str,
    timezone: str | None,
    session_day: str | None,
    session_time: str | None,
) -> None:
    """Enrol a family; the opening message is due at once. Prints the reference last."""
    from service.enrolment import EnrolmentError, EnrolRequest, enrol_family

    svc = _services(_settings())
    try:
        with svc.db.transaction() as session:
            family = enrol_family(
                session,
                EnrolRequest(
                    phone=phone,
                    channel=channel,
                    child_name=child_name,
                    child_age=child_age,
                    therapist_ref=therapist_ref,
                    language=language,
                    timezone=timezone,
                    session_day=session_day,
                    session_time=session_time,
                ),
                region=svc.settings.default_region,
                default_timezone=svc.settings.default_timezone,
                languages=svc.catalogue.complete_languages(),
                now=svc.now(),
            )
            ref = family.ref
    except EnrolmentError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo("enrolled; the opening message goes out on the next tick")
    click.echo(ref)


# ---- timed work -----------------------------------------------------------------------------


def parse_now(_ctx: Any, _param: Any, text: str | None) -> datetime | None:
    """``--now``: ISO-8601; a time without a zone is taken as UTC."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter("must be ISO-8601, like 2026-03-02T18:00:00+00:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@cli.command()
@click.option("--now", "moment", callback=parse_now, help="act as if it were this time (ISO-8601)")
@database_errors
def tick(moment: datetime | None) -> None:
    """Do all timed work due now, send what is due, and exit."""
    from scheduler.tick import run_tick

    clock = (lambda: moment) if moment is not None else None
    svc = _services(_settings(), clock=clock)
    report = run_tick(svc)
    click.echo(report.line())


@cli.command()
@database_errors
def scheduler() -> None:
    """Run the scheduler process: a tick every SCHEDULER_INTERVAL seconds."""
    from scheduler.process import run_forever

    svc = _services(_settings())
    run_forever(svc)


# ---- flows ----------------------------------------------------------------------------------


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def lint(paths: tuple[Path, ...]) -> None:
    """Check flow files and catalogues; exit 1 on any error."""
    from service.linting import lint_content

    settings = _settings()
    flows_dir, messages_dir = settings.flows_dir, settings.messages_dir
    for path in paths:
        folder = path if path.is_dir() else path.parent
        if not folder.exists():
            raise Failure(f"{path}: no such file or folder")
        if any(folder.glob("en.yaml")):
            messages_dir = folder
        else:
            flows_dir = folder
    errors, warnings, summary = lint_content(flows_dir, messages_dir)
    for line in errors + warnings:
        click.echo(line)
    click.echo(summary)
    if errors:
        sys.exit(1)


@cli.command("screen")
@click.option("--language", default="en", show_default=True)
@click.option("--explain", is_flag=True, help="Add the rule or model score that decided.")
@click.option(
    "--train",
    is_flag=True,
    help="Rebuild the model from the training split (needs the test extras: scikit-learn).",
)
@click.argument("texts", nargs=-1)
def screen_command(language: str, explain: bool, train: bool, texts: tuple[str, ...]) -> None:
    """Risk-screen each TEXT (or each line of standard input): its category, review:<category>
    for the review tier, or none."""
    from flows.screening import load_patterns, screen
    from flows.yamlload import SourceError
    from service.wiring import RISK_DIR

    if train:
        _train_screener(RISK_DIR)
        return
    try:
        patterns = load_patterns(RISK_DIR)
    except (SourceError, ValueError) as exc:
        raise Failure(str(exc)) from None
    lines = list(texts) if texts else [line.rstrip("\n") for line in sys.stdin]
    for text in lines:
        found = screen(text, patterns, language)
        if not explain:
            click.echo(found.label)
            continue
        parts = [found.label, f"rule={found.rule or '-'}"]
        if found.score is not None:
            parts.append(f"score={found.score:.3f}")
        if found.category == "self_harm":
            parts.append(f"about={found.about}")
        if found.person:
            parts.append("asks_for_person")
        click.echo(" ".join(parts))


def _train_screener(risk_dir: Path) -> None:
    """Rebuild ``<risk_dir>/en.model.json`` from the training split beside the tests."""
    from flows.screening import load_patterns
    from service import screener_build

    split = risk_dir.parent.parent / "tests" / "data" / "screening" / "train.yaml"
    if not split.exists():
        raise Failure(f"the training split is not here: {split} (run from a checkout)")
    try:
        built = screener_build.build(
            screener_build.read_split(split), load_patterns(risk_dir, models=False)
        )
    except ImportError:
        raise Failure("training needs scikit-learn: pip install -e '.[test]'") from None
    out = risk_dir / "en.model.json"
    screener_build.write_model(built.data, out)
    click.echo(
        f"wrote {out} ({built.data['version']}, {built.data['messages']} messages from {split})"
    )


@cli.command("test-flows")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def test_flows(paths: tuple[Path, ...]) -> None:
    """Run the scripted conversations; exit 1 on a failure."""
    from service.linting import run_flow_scripts

    settings = _settings()
    try:
        flowset, catalogue = _load(settings)
    except ContentError as exc:
        raise Failure("the flow files have problems:\n" + "\n".join(exc.lines)) from None
    targets = list(paths) or [settings.flows_dir / "tests"]
    ok, lines = run_flow_scripts(flowset, catalogue, targets)
    for line in lines:
        click.echo(line)
    if not ok:
        sys.exit(1)


def _load(settings: Settings) -> Any:
    from service.wiring import load_content

    return load_content(settings)


@cli.command("graph")
@click.argument("flow")
@click.option(
    "--format", "fmt", type=click.Choice(["mermaid", "svg"]), default="mermaid", show_default=True
)
def graph_command(flow: str, fmt: str) -> None:
    """Draw FLOW as Mermaid text or as an SVG picture, on standard output."""
    from flows.graph import UnknownFlowError, render

    settings = _settings()
    try:
        flowset, catalogue = _load(settings)
    except ContentError as exc:
        raise Failure("the flow files have problems:\n" + "\n".join(exc.lines)) from None

    def words(key: str) -> str:
        return str(catalogue.entry(key).text)

    try:
        drawing = render(flowset, flow, fmt, words)
    except UnknownFlowError as exc:
        raise Failure(str(exc)) from None
    click.echo(drawing, nl=False)


# ---- the demo -------------------------------------------------------------------------------


@cli.command()
@click.option("--port", type=int, envvar="PORT", default=5000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@database_errors
def demo(port: int, host: str) -> None:
    """Run the web app and the scheduler in one process, with the browser simulator."""
    from werkzeug.serving import make_server

    from scheduler.process import start_background
    from service import create_app

    settings = _settings(demo=True)
    try:
        upgrade(settings.database_url)
    except (OperationalError, ProgrammingError) as exc:
        raise database_failure(exc) from None
    try:
        listener = socket.create_server((host, port))
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
        raise Failure(
            f"cannot listen on {host}:{port} ({reason}); choose another with --port"
        ) from None
    url = f"http://{host}:{listener.getsockname()[1]}"
    if settings.public_url is None and not settings.twilio_enabled:
        # Links in the therapist's alerts then open this demo (Twilio never sees the URL).
        settings = replace(settings, public_url=url)
    svc = _services(settings)
    app = create_app(svc)
    server = make_server(host, port, app, threaded=True, fd=listener.fileno())
    listener.close()  # the server holds its own copy of the socket
    click.echo(f"bravesteps demo is running: open {url}/simulator  (health: {url}/healthz)")
    if not settings.twilio_enabled:
        from service.simulator import demo_login

        email, password = demo_login(svc)
        click.echo("no Twilio credentials: messages stay in the database and show in the simulator")
        click.echo(f"staff app: {url}/admin  (sign in as {email}, password {password})")
    scheduler_handle = start_background(svc, interval=min(settings.scheduler_interval, 5.0))
    # SIGTERM (docker stop, a test) ends the demo as cleanly as Ctrl-C does.
    signal.signal(signal.SIGTERM, _exit_quietly)
    try:
        server.serve_forever()
    finally:
        scheduler_handle.shutdown(wait=False)
        svc.db.dispose()


def _exit_quietly(_signum: int, _frame: Any) -> None:
    raise SystemExit(0)


def _unexpected(exc: BaseException) -> str:
    """Type and place of an error nobody foresaw; never its text (it may quote a parent)."""
    frames = traceback.extract_tb(exc.__traceback__)[-2:]
    where = " <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}" for f in reversed(frames))
    return f"bravesteps: unexpected {type(exc).__name__} at {where}; please report it"


def main(argv: list[str] | None = None) -> None:
    """Entry point: one line on stderr for any error; 2 for bad arguments."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        click.echo("bravesteps: no command given; see: bravesteps --help", err=True)
        sys.exit(2)
    try:
        cli.main(args=args, prog_name="bravesteps", standalone_mode=False)
    except click.UsageError as exc:
        click.echo(f"bravesteps: {exc.format_message()}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("bravesteps: aborted", err=True)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        click.echo(_unexpected(exc), err=True)
        sys.exit(1)
