"""The ``bravesteps`` command line, run as the real console script in subprocesses.

Each invocation imports the whole service (about a second of CPU), so commands that do not depend
on each other are started side by side, and the rarer mistakes go through the same entry point,
``service.cli.main``, in this process. Every output is checked for phone numbers, the child's name
and the text of the messages sent.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import _sqlite_url, env_for
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session
from twilio_standin import TwilioStandIn

from service.cli import main
from service.db import Database
from service.enrolment import add_staff
from service.models import DueWork, Family, Message, Staff

BRAVESTEPS = Path(sys.executable).with_name("bravesteps")
PARENT_PHONE = "07700 900123"
PARENT_E164 = "+447700900123"
STAFF_PHONES = ("07700 900555", "07700 900556")
CHILD = "Zebedee"
REF = re.compile(r"[A-Z]-[A-Z0-9]{4,}")
# Never in any output: phone numbers in any spelling, and the child's name.
PRIVATE = (
    PARENT_E164,
    PARENT_PHONE,
    "7700900123",
    "7700 900123",
    "+447700900555",
    "7700900555",
    "+447700900556",
    "7700900556",
    CHILD,
)


@dataclass
class Run:
    """One finished command."""

    args: tuple[str, ...]
    code: int
    out: str
    err: str

    @property
    def last_line(self) -> str:
        lines = self.out.strip().splitlines()
        return lines[-1] if lines else ""


@contextmanager
def session_on(url: str) -> Iterator[Session]:
    """A transaction on ``url``, to check what a command wrote."""
    database = Database(url)
    try:
        with database.transaction() as session:
            yield session
    finally:
        database.dispose()


def start(args: Sequence[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """Start ``bravesteps ARGS`` with exactly ``env`` (plus PATH and HOME)."""
    base = {"PATH": os.environ.get("PATH", ""), "HOME": str(cwd), "LANG": "C.UTF-8"}
    return subprocess.Popen(
        [str(BRAVESTEPS), *args],
        cwd=cwd,
        env={**base, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_all(
    commands: Sequence[Sequence[str]],
    env: dict[str, str],
    cwd: Path,
    extra: Sequence[str] = (),
    envs: Sequence[dict[str, str]] | None = None,
) -> list[Run]:
    """Run commands side by side (``envs``: one environment each); check each leaks nothing."""
    chosen = envs or [env] * len(commands)
    processes = [(tuple(a), start(a, e, cwd)) for a, e in zip(commands, chosen, strict=True)]
    runs = []
    for args, process in processes:
        out, err = process.communicate(timeout=90)
        runs.append(Run(args, process.returncode, out, err))
    for run in runs:
        for secret in (*PRIVATE, *extra):
            assert secret not in run.out + run.err, (run.args, secret)
        assert "Traceback" not in run.err, run.err
    return runs


def bravesteps(*args: str, env: dict[str, str], cwd: Path, extra: Sequence[str] = ()) -> Run:
    """Run one command."""
    return run_all([args], env, cwd, extra)[0]


def ok(run: Run) -> Run:
    assert run.code == 0, (run.args, run.err)
    assert run.err == "", run.err
    return run


def one_line_error(run: Run, code: int) -> str:
    """The single stderr line of a failed command."""
    assert run.code == code, (run.args, run.code, run.out, run.err)
    assert len(run.err.splitlines()) == 1, run.err
    assert run.err.startswith("bravesteps: "), run.err
    return run.err.strip()


def enrol_args(therapist: str, **override: str) -> list[str]:
    options = {
        "--phone": PARENT_PHONE,
        "--channel": "sms",
        "--child-name": CHILD,
        "--child-age": "8",
        "--therapist": therapist,
    }
    options.update(override)
    args = ["enrol"]
    for name, value in options.items():
        if value:
            args += [name, value]
    return args


@pytest.fixture
def cli_database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh, empty SQLite file, or the suite's PostgreSQL database (migrated and emptied)."""
    if backend == "postgres":
        return str(request.getfixturevalue("database_url"))
    return f"sqlite:///{tmp_path / 'cli.sqlite'}"


@pytest.fixture
def db(cli_database: str) -> Iterator[Database]:
    """The same database, to check what the commands wrote."""
    database = Database(cli_database)
    yield database
    database.dispose()


def test_set_up_enrol_and_tick_send_the_opening_message_once(
    backend: str,
    cli_database: str,
    db: Database,
    standin: TwilioStandIn,
    tmp_path: Path,
) -> None:
    env = env_for(cli_database, standin)
    del env["BRAVESTEPS_TESTING"]  # commands must run as in production, without SECRET_KEY
    assert "SECRET_KEY" not in env
    env["QUIET_HOURS"] = "00:00-00:00"  # the ticks use the real clock: any time of day will do

    first = ok(bravesteps("db", "upgrade", env=env, cwd=tmp_path))
    assert "newest schema" in first.out
    assert {"families", "staff", "messages", "due_work"} <= set(
        inspect(db.engine).get_table_names()
    )

    therapist = ok(
        bravesteps(
            "therapist",
            "add",
            "--name",
            "Jo Bloggs",
            "--phone",
            STAFF_PHONES[0],
            env=env,
            cwd=tmp_path,
        )
    )
    assert REF.fullmatch(therapist.last_line), therapist.out
    with db.transaction() as session:
        staff = session.scalar(select(Staff).where(Staff.ref == therapist.last_line))
        assert staff is not None
        assert (staff.role, staff.phone) == ("therapist", "+447700900555")

    enrolled = ok(
        bravesteps(
            *enrol_args(therapist.last_line, **{"--session-day": "wed", "--session-time": "18:30"}),
            env=env,
            cwd=tmp_path,
        )
    )
    ref = enrolled.last_line
    assert REF.fullmatch(ref) and ref != therapist.last_line
    with db.transaction() as session:
        family = session.scalar(select(Family).where(Family.ref == ref))
        assert family is not None
        assert (family.phone, family.child_name, family.child_age) == (PARENT_E164, CHILD, 8)
        assert (family.session_day, family.session_time) == (2, "18:30")
    assert standin.sent_to(PARENT_E164) == []

    # Two ticks at once (the given time, and now): the opening message still goes exactly once.
    runs = run_all([["tick", "--now", "2026-03-02T18:00:00+00:00"], ["tick"]], env, tmp_path)
    for run in runs:
        assert ok(run).last_line.startswith("tick: "), run.out
    sent = standin.sent_to(PARENT_E164)
    assert len(sent) == 1, [m.body for m in sent]
    assert CHILD in (sent[0].body or "")
    bodies = [m.body or "" for m in standin.messages]
    assert bodies
    for run in (first, therapist, enrolled, *runs):
        for body in bodies:
            assert body not in run.out + run.err
            assert body[:30] not in run.out + run.err


@pytest.fixture
def migrated(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A migrated SQLite database with one therapist: (url, therapist ref)."""
    url = _sqlite_url(tmp_path, tmp_path_factory)
    database = Database(url)
    with database.transaction() as session:
        staff = add_staff(
            session,
            name="Jo Bloggs",
            phone="+447700900555",
            email=None,
            channel="sms",
            role="therapist",
            region="GB",
            now=datetime(2026, 3, 2, tzinfo=UTC),
        )
        ref = staff.ref
    database.dispose()
    return url, ref


# Each reaches the error by another road: click itself, the enrolment checks, an option callback.
BAD_ARGUMENTS: list[tuple[dict[str, str], str]] = [
    ({"--phone": ""}, "--phone"),
    ({"--child-age": "40"}, "--child-age"),
    ({"--timezone": "Europe"}, "--timezone"),
]


def test_bad_arguments_exit_2_and_an_old_database_exit_1_with_one_line(
    migrated: tuple[str, str], tmp_path: Path
) -> None:
    url, therapist = migrated
    env = {"DATABASE_URL": url}
    commands = [enrol_args(therapist, **override) for override, _ in BAD_ARGUMENTS]
    commands += [["tick", "--now", "yesterday"], ["tick"]]
    expected = [word for _, word in BAD_ARGUMENTS] + ["--now"]
    envs = [env] * (len(commands) - 1) + [{"DATABASE_URL": f"sqlite:///{tmp_path / 'new.sqlite'}"}]
    runs = run_all(commands, env, tmp_path, envs=envs)
    for run, word in zip(runs[:-1], expected, strict=True):
        line = one_line_error(run, 2)
        assert word in line, (run.args, line)
        assert run.out == ""
    assert "run: bravesteps db upgrade" in one_line_error(runs[-1], 1)
    assert runs[-1].out == ""
    with session_on(url) as session:
        assert session.scalars(select(Family)).all() == []


# ---- the same entry point in this process: cheaper, for the rarer mistakes ----------------------


@pytest.fixture
def in_process(
    migrated: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, str]:
    """``main()`` reads this database from a clean environment in a temp folder."""
    url, ref = migrated
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "FLOWS_DIR", "MESSAGES_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    return url, ref


def call(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``bravesteps ARGV`` through ``main``: (exit code, stdout, stderr)."""
    code: Any = 0
    try:
        main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    for secret in PRIVATE:
        assert secret not in out + err
    return int(code or 0), out, err


MORE_BAD_ENROLMENTS: list[tuple[dict[str, str], str]] = [
    ({"--phone": ""}, "--phone"),
    ({"--phone": "not a phone"}, "--phone"),
    ({"--therapist": "T-NOBODY"}, "T-NOBODY"),
    ({"--child-age": "40"}, "--child-age"),
    ({"--session-time": "25:00"}, "--session-time"),
    ({"--timezone": "Mars/Olympus_Mons"}, "--timezone"),
    ({"--channel": "fax"}, "--channel"),
    ({"--child-age": "eight"}, "--child-age"),
    ({"--child-age": "2"}, "--child-age"),
    ({"--child-name": " "}, "--child-name"),
    ({"--session-day": "funday"}, "--session-day"),
    ({"--session-time": "6pm"}, "--session-time"),
    ({"--language": "xx"}, "--language"),
    ({"--phone": "123"}, "--phone"),
    ({"--timezone": "Europe"}, "--timezone"),
    ({"--therapist": ""}, "--therapist"),
]


@pytest.mark.parametrize(("override", "word"), MORE_BAD_ENROLMENTS)
def test_more_bad_enrolments(
    override: dict[str, str],
    word: str,
    in_process: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, therapist = in_process
    code, out, err = call(enrol_args(therapist, **override), capsys)
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("bravesteps: "), err
    assert word in err
    assert out == ""


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        (
            ["therapist", "add", "--name", "Jo", "--phone", STAFF_PHONES[1], "--role", "boss"],
            "--role",
        ),
        (["therapist", "add", "--name", "Jo"], "--phone"),
        (["therapist", "add", "--name", "Jo", "--phone", "12"], "--phone"),
        (
            ["therapist", "add", "--name", "Jo", "--phone", STAFF_PHONES[1], "--email", "x"],
            "--email",
        ),
        (["therapist", "add", "--name", "Jo", "--phone", "+447700900555"], "already exists"),
        (["tick", "--now", "yesterday"], "--now"),
        (["tick", "--now", "2026-13-01T00:00:00"], "--now"),
        (["no-such-command"], "no-such-command"),
        ([], "--help"),
    ],
)
def test_more_bad_commands(
    argv: list[str], word: str, in_process: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = call(argv, capsys)
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("bravesteps: "), err
    assert word in err
    assert out == ""


@pytest.mark.parametrize(
    ("options", "role", "channel"),
    [
        ([], "therapist", "sms"),
        (["--role", "therapist"], "therapist", "sms"),
        (["--role", "duty", "--channel", "whatsapp"], "duty", "whatsapp"),
        (["--role", "safeguarding", "--email", "sg@example.org"], "safeguarding", "sms"),
        (["--role", "lead"], "lead", "sms"),
    ],
)
def test_therapist_add_prints_the_reference_last_for_every_role(
    options: list[str],
    role: str,
    channel: str,
    in_process: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, _ = in_process
    argv = ["therapist", "add", "--name", "Ann Other", "--phone", STAFF_PHONES[1], *options]
    code, out, err = call(argv, capsys)
    assert (code, err) == (0, "")
    ref = out.strip().splitlines()[-1]
    assert REF.fullmatch(ref)
    with session_on(url) as session:
        staff = session.scalar(select(Staff).where(Staff.ref == ref))
        assert staff is not None
        assert (staff.name, staff.role, staff.channel) == ("Ann Other", role, channel)
        assert staff.phone == "+447700900556"


def test_db_upgrade_twice_is_harmless(
    in_process: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    url, therapist = in_process
    for _ in range(2):
        code, out, err = call(["db", "upgrade"], capsys)
        assert (code, err) == (0, "") and "newest schema" in out
    with session_on(url) as session:
        assert session.scalar(select(Staff.ref)) == therapist  # nothing was lost


def test_the_same_phone_cannot_be_enrolled_twice(
    in_process: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, therapist = in_process
    code, out, _ = call(enrol_args(therapist), capsys)
    assert code == 0 and REF.fullmatch(out.strip().splitlines()[-1])
    code, out, err = call(enrol_args(therapist), capsys)
    assert code == 2 and "already enrolled" in err and len(err.splitlines()) == 1


def test_help_still_works(in_process: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = call(["enrol", "--help"], capsys)
    assert (code, err) == (0, "")
    assert "--session-time" in out


def test_tick_acts_at_the_given_time(
    in_process: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    url, therapist = in_process
    code, _, _ = call(enrol_args(therapist), capsys)
    assert code == 0

    def opening() -> tuple[datetime | None, int]:
        """When the opening work was done, and how many messages the family has."""
        with session_on(url) as session:
            family = session.scalar(select(Family).where(Family.phone == PARENT_E164))
            assert family is not None
            work = session.scalar(select(DueWork).where(DueWork.family_id == family.id))
            assert work is not None
            messages = session.scalars(select(Message).where(Message.family_id == family.id))
            return work.done_at, len(messages.all())

    code, out, _ = call(["tick", "--now", "2000-01-01T00:00:00+00:00"], capsys)
    assert code == 0 and out.startswith("tick: 0 due item(s) done")
    assert opening() == (None, 0)
    code, out, _ = call(["tick", "--now", "2100-01-01T09:00"], capsys)  # no zone: UTC
    assert code == 0 and out.startswith("tick: 1 due item(s) done")
    assert opening() == (datetime(2100, 1, 1, 9, 0, tzinfo=UTC), 1)
