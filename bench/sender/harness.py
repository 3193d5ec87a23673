"""What the tick and sender benchmarks share: fresh databases, bulk seeding, the Twilio stand-in
in its own process, phase timers, the CPU meter and the exactly-once checks.

Nothing here changes service code: timers wrap module-level names for the duration of one run and
put them back. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "5e" * 16
SMS_FROM = "+447700900000"
THERAPIST_PHONE = "+447700900555"
_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def phone_of(i: int) -> str:
    """The i-th bench parent's number (E.164, distinct, accepted by the stand-in)."""
    return f"+4475{i:08d}"


def ref_of(i: int) -> str:
    """A distinct family reference in the service's alphabet."""
    chars = []
    for _ in range(6):
        i, r = divmod(i, 32)
        chars.append(_ALPHABET[r])
    return "F-" + "".join(reversed(chars))


def code_fingerprint() -> str:
    """A short hash of the code and content measured (the tree may change between runs), and
    when it last changed."""
    import hashlib

    digest = hashlib.sha256()
    newest = 0.0
    for folder in ("service", "scheduler", "messages", "flows", "migrations"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in (".py", ".yaml", ".yml") and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
                newest = max(newest, path.stat().st_mtime)
    changed = datetime.fromtimestamp(newest, UTC)
    return f"code {digest.hexdigest()[:10]} (last changed {changed:%Y-%m-%d %H:%M} UTC)"


def machine_line(started: float) -> str:
    return (
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores, "
        f"{platform.machine()}, Python {platform.python_version()}; "
        f"whole run {time.monotonic() - started:.0f} s; {code_fingerprint()}."
    )


# ---- databases --------------------------------------------------------------------------------


@dataclass
class FreshDb:
    kind: str  # "SQLite" | "PostgreSQL"
    url: str
    name: str  # the PostgreSQL database name, or the SQLite file
    cleanup: Callable[[], None] = lambda: None


def fresh_database(
    kind: str, pg_server: str, pg_name: str, keep: bool, async_commit: bool = False
) -> FreshDb:
    """A new, migrated database: a temporary SQLite file or a dropped-and-created PostgreSQL one.

    ``async_commit`` (an experiment, PostgreSQL only) sets ``synchronous_commit = off`` on the
    database, so a COMMIT does not wait for the WAL to reach the disk."""
    from service.db import upgrade

    if kind == "sqlite":
        workdir = Path(tempfile.mkdtemp(prefix="bravesteps-bench-"))
        path = workdir / "bench.sqlite"
        db = FreshDb(
            "SQLite",
            f"sqlite:///{path}",
            str(path),
            cleanup=(lambda: None) if keep else (lambda: shutil.rmtree(workdir, True)),
        )
    else:
        import psycopg

        admin = f"postgresql://{pg_server}/postgres"

        def recreate(drop_only: bool = False) -> None:
            with psycopg.connect(admin, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
                if not drop_only:
                    connection.execute(f'CREATE DATABASE "{pg_name}"')
                    if async_commit:
                        connection.execute(
                            f'ALTER DATABASE "{pg_name}" SET synchronous_commit = off'
                        )

        recreate()
        db = FreshDb(
            "PostgreSQL, synchronous_commit=off" if async_commit else "PostgreSQL",
            f"postgresql+psycopg://{pg_server}/{pg_name}",
            pg_name,
            cleanup=(lambda: None) if keep else (lambda: recreate(drop_only=True)),
        )
    upgrade(db.url)
    return db


def settings_for(url: str, base_url: str, rate: float) -> Any:
    from service.config import load_settings

    return load_settings(
        {
            "DATABASE_URL": url,
            "BRAVESTEPS_TESTING": "1",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_SMS_FROM": SMS_FROM,
            "TWILIO_API_BASE_URL": base_url,
            "MESSAGES_PER_SECOND": f"{rate:g}",
            "QUIET_HOURS": "00:00-00:00",  # no quiet hours: the run must not depend on the hour
            "TWILIO_TIMEOUT": "10",
        }
    )


def analyse(services: Any) -> None:
    """Fresh planner statistics after a bulk load (what autovacuum would do a bit later)."""
    from sqlalchemy import text

    with services.db.engine.connect() as connection:
        if services.db.is_sqlite:
            connection.exec_driver_sql("ANALYZE")
        else:
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))


def calendar_event(services: Any, week: int, day: int) -> Any:
    """The shipped programme calendar's event on ``day`` of ``week``."""
    for event in services.calendar.events:
        if (event.week, event.day) == (week, day):
            return event
    raise SystemExit(f"the calendar has no event on week {week}, day {day}")


def seed_families(
    services: Any,
    count: int,
    now: datetime,
    *,
    due_work: str | None,
    week_day: tuple[int, int] = (3, 1),
) -> list[str]:
    """Bulk-insert one therapist and ``count`` families (+ conversations, + one due-work row
    each when ``due_work`` is "opening" or "session"), in one transaction. Returns the phones.

    "opening" is exactly what ``enrol_family`` writes for a new family (a ``start_flow`` row for
    onboarding, due now). "session" is a consented family's weekly programme event: the
    ``calendar`` row ``start_programme`` writes for the calendar's event on ``week_day`` (week 3,
    day 1 by default: a day with no therapist call prompt), due now, the programme having started
    on the right day for it. Without ``due_work`` the families are consented and nothing is due.
    """
    from sqlalchemy import insert, text

    from service.models import Conversation, DueWork, Family, Staff

    consented = due_work != "opening"
    event = calendar_event(services, *week_day) if due_work == "session" else None
    local_today = now.astimezone(ZoneInfo("Europe/London")).date()
    start = local_today - timedelta(days=7 * (week_day[0] - 1) + week_day[1] - 1)
    phones = [phone_of(i) for i in range(count)]
    with services.db.transaction() as session:
        staff_id = session.execute(
            insert(Staff)
            .values(
                ref="T-BENCH",
                name="Jo Bloggs",
                phone=THERAPIST_PHONE,
                email=None,
                channel="sms",
                role="therapist",
                active=True,
                created_at=now,
            )
            .returning(Staff.id)
        ).scalar_one()
        families = [
            {
                "id": i + 1,
                "ref": ref_of(i),
                "phone": phone,
                "channel": "sms",
                "sms_allowed": True,
                "child_name": "Sam",
                "child_age": 8,
                "language": "en",
                "timezone": "Europe/London",
                "session_day": start.weekday() if consented else None,
                "session_time": "18:00" if consented else None,
                "therapist_id": staff_id,
                "status": "active" if consented else "invited",
                "consent_at": now - timedelta(days=30) if consented else None,
                "programme_start": start if consented else None,
                "calendar_generation": 0,
                "created_at": now - timedelta(days=30) if consented else now,
            }
            for i, phone in enumerate(phones)
        ]
        session.execute(insert(Family), families)
        session.execute(
            insert(Conversation),
            [
                {
                    "family_id": i + 1,
                    "waiting": False,
                    "attempts": 0,
                    "misunderstood": 0,
                    "variables": {},
                    "updated_at": now,
                }
                for i in range(count)
            ],
        )
        rows: list[dict[str, Any]] = []
        if due_work == "opening":
            rows = [
                {
                    "family_id": i + 1,
                    "kind": "start_flow",
                    "payload": {"flow": "onboarding"},
                    "due_at": now,
                    "dedupe_key": f"opening:{i + 1}",
                    "attempts": 0,
                    "created_at": now,
                }
                for i in range(count)
            ]
        elif event is not None:
            rows = [
                {
                    "family_id": i + 1,
                    "kind": "calendar",
                    "payload": {"flow": event.flow, "week": event.week, "day": event.day},
                    "due_at": now,
                    "dedupe_key": f"cal:{i + 1}:0:{event.key}",
                    "attempts": 0,
                    "created_at": now - timedelta(days=30),
                }
                for i in range(count)
            ]
        if rows:
            session.execute(insert(DueWork), rows)
        if not services.db.is_sqlite:
            session.execute(text("SELECT setval('families_id_seq', :n)"), {"n": count})
    return phones


def seed_outbox(services: Any, count: int, now: datetime) -> None:
    """``count`` pending outbound SMS, one per family (family i gets message i), due now; the
    words are the real rendered opening message."""
    from sqlalchemy import insert

    from messages.segments import count_segments
    from service.models import Message

    body = services.catalogue.render(
        "onboarding.welcome",
        {"child_name": "Sam", "therapist_name": "Jo", "family_ref": "F-BENCH"},
        "en",
    )
    segments = count_segments(body)
    with services.db.transaction() as session:
        session.execute(
            insert(Message),
            [
                {
                    "direction": "out",
                    "family_id": i + 1,
                    "channel": "sms",
                    "body": body,
                    "catalogue_key": "onboarding.welcome",
                    "flow": "onboarding",
                    "step": "welcome",
                    "segments": segments,
                    "status": "pending",
                    "reply": False,
                    "attempts": 0,
                    "due_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(count)
            ],
        )


# ---- the Twilio stand-in in its own process ---------------------------------------------------


def _standin_main(connection: Any, account_sid: str, auth_token: str) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(ROOT))
    from twilio_standin import TwilioStandIn

    with TwilioStandIn(account_sid=account_sid, auth_token=auth_token) as standin:
        connection.send(standin.base_url)
        while True:
            command = connection.recv()
            if command == "messages":
                connection.send([(m.sid, m.to, m.body, m.status) for m in standin.messages])
            elif command == "requests":
                connection.send(
                    [
                        (r.method, r.status, r.received_at.timestamp(), r.param("To"))
                        for r in standin.requests
                    ]
                )
            elif command == "errors":
                connection.send(standin.server_errors)
            elif command == "reset":
                standin.reset()
                connection.send("ok")
            elif command == "cpu":
                usage = resource.getrusage(resource.RUSAGE_SELF)
                connection.send(usage.ru_utime + usage.ru_stime)
            else:
                connection.send("bye")
                return


@dataclass(frozen=True)
class Sent:
    sid: str
    to: str
    body: str
    status: str


@dataclass(frozen=True)
class Received:
    method: str
    status: int | None
    at: float  # epoch seconds
    to: str | None


class StandIn:
    """``tests/twilio_standin.py``'s ``TwilioStandIn``, run in a child process (``process``, the
    default: Twilio is another machine, so it must not share the sender's GIL) or on a thread of
    this process (``thread``, as the test suite runs it)."""

    def __init__(self, mode: str = "process") -> None:
        self.mode = mode
        self.pid: int | None = None

    def __enter__(self) -> StandIn:
        if self.mode == "process":
            context = multiprocessing.get_context("spawn")
            self._conn, child = context.Pipe()
            self._proc = context.Process(
                target=_standin_main, args=(child, ACCOUNT_SID, AUTH_TOKEN), daemon=True
            )
            self._proc.start()
            self.pid = self._proc.pid
            self.base_url = self._conn.recv()
        else:
            sys.path.insert(0, str(ROOT / "tests"))
            from twilio_standin import TwilioStandIn

            self._standin = TwilioStandIn(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN).start()
            self.base_url = self._standin.base_url
        assert self.base_url.startswith("http://127.0.0.1:"), self.base_url
        return self

    def _ask(self, command: str) -> Any:
        self._conn.send(command)
        return self._conn.recv()

    def messages(self) -> list[Sent]:
        if self.mode == "process":
            return [Sent(*m) for m in self._ask("messages")]
        return [Sent(m.sid, m.to, m.body, m.status) for m in self._standin.messages]

    def requests(self) -> list[Received]:
        if self.mode == "process":
            return [Received(*r) for r in self._ask("requests")]
        return [
            Received(r.method, r.status, r.received_at.timestamp(), r.param("To"))
            for r in self._standin.requests
        ]

    def errors(self) -> list[str]:
        return self._ask("errors") if self.mode == "process" else self._standin.server_errors

    def reset(self) -> None:
        if self.mode == "process":
            self._ask("reset")
        else:
            self._standin.reset()

    def __exit__(self, *exc: object) -> None:
        if self.mode == "process":
            with suppress(OSError, EOFError):
                self._ask("stop")
            self._proc.join(timeout=10)
            if self._proc.is_alive():
                self._proc.terminate()
        else:
            self._standin.stop()


# ---- timing -----------------------------------------------------------------------------------


@dataclass
class Timers:
    """Wall time spent inside wrapped functions, and how often each was called."""

    seconds: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)
    first_call: dict[str, float] = field(default_factory=dict)
    first_cpu: dict[str, float] = field(default_factory=dict)
    first_statements: dict[str, int] = field(default_factory=dict)
    first_checkouts: dict[str, int] = field(default_factory=dict)
    statements: int = 0  # SQL statements sent, counted by ``count_statements``
    checkouts: int = 0  # connections taken from the pool: one per transaction

    def wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            if name not in self.first_call:
                self.first_call[name] = start
                self.first_cpu[name] = time.process_time()
                self.first_statements[name] = self.statements
                self.first_checkouts[name] = self.checkouts
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start
                self.calls[name] += 1

        return timed


@contextmanager
def count_statements(engine: Any, timers: Timers) -> Iterator[None]:
    """Count the SQL statements ``engine`` sends and the pool checkouts (one per transaction;
    each also costs a pre-ping on PostgreSQL, a BEGIN and a reset, not counted as statements)."""
    from sqlalchemy import event

    def counted(*_: Any) -> None:
        timers.statements += 1

    def checkout(*_: Any) -> None:
        timers.checkouts += 1

    event.listen(engine, "before_cursor_execute", counted)
    event.listen(engine.pool, "checkout", checkout)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", counted)
        event.remove(engine.pool, "checkout", checkout)


@contextmanager
def patched(module: Any, timers: Timers, *names: str) -> Iterator[None]:
    """Time ``module.<name>`` for each name during the block, then put the originals back."""
    originals = {name: getattr(module, name) for name in names}
    try:
        for name, function in originals.items():
            setattr(module, name, timers.wrap(name, function))
        yield
    finally:
        for name, function in originals.items():
            setattr(module, name, function)


# ---- how busy the machine was with other work -------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _busy_jiffies() -> int:
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]  # user nice system irq softirq steal


def _proc_jiffies(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0
    return int(fields[11]) + int(fields[12])


def add_common_options(
    parser: argparse.ArgumentParser, *, db: str, pg_name: str, profile_help: str
) -> None:
    """The options the tick and sender benchmarks share."""
    parser.add_argument("--db", choices=["both", "postgres", "sqlite"], default=db)
    parser.add_argument("--pg-server", default="postgres@127.0.0.1:5432")
    parser.add_argument("--pg-name", default=pg_name)
    parser.add_argument(
        "--standin",
        choices=["process", "thread"],
        default="process",
        help="the Twilio stand-in in its own process (default) or on a thread of this one",
    )
    parser.add_argument("--profile", action="store_true", help=profile_help)
    parser.add_argument(
        "--async-commit",
        action="store_true",
        help="experiment: PostgreSQL with synchronous_commit=off (COMMIT does not wait for fsync)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")


def postgres_backends(database: str) -> list[int]:
    """PostgreSQL backend processes connected to ``database`` (read from /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.startswith(b"postgres: ") and f" {database} ".encode() in cmdline:
                pids.append(int(entry.name))
    return pids


class CpuMeter:
    """Cores used by this benchmark (itself, the stand-in process, its PostgreSQL backends) and by
    everything else on the machine while it measured. The machine may be shared."""

    def __init__(
        self, own_pids: Callable[[], list[int]], self_jiffies: Callable[[], float] | None = None
    ) -> None:
        self.own_pids = own_pids
        # This process's CPU, in clock ticks: from /proc by default; a benchmark that runs its
        # load tool as a child (wrk) counts the reaped child too (see ``rusage_jiffies``).
        self.self_jiffies = self_jiffies or (lambda: _proc_jiffies(os.getpid()))
        self.other_cores = 0.0
        self.own_cores = 0.0

    def __enter__(self) -> CpuMeter:
        self.t0 = time.monotonic()
        self.busy0 = _busy_jiffies()
        self.self0 = self.self_jiffies()
        self.own0 = {pid: _proc_jiffies(pid) for pid in self.own_pids()}
        return self

    def __exit__(self, *exc: object) -> None:
        elapsed = max(time.monotonic() - self.t0, 1e-9)
        busy = _busy_jiffies() - self.busy0
        own = self.self_jiffies() - self.self0
        for pid in set(self.own0) | set(self.own_pids()):
            own += _proc_jiffies(pid) - self.own0.get(pid, 0)
        self.other_cores = max(0.0, (busy - own) / CLK_TCK / elapsed)
        self.own_cores = own / CLK_TCK / elapsed


def rusage_jiffies() -> float:
    """This process and its reaped children, in clock ticks."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total * CLK_TCK


def write_report(title: str, body: str, started: float, standin: str, name: str) -> str:
    """The markdown a benchmark prints and keeps in ``bench/results/<name>.md``."""
    text = "\n".join(
        [f"# {title}", "", body, "", machine_line(started) + f" Stand-in: {standin}.", ""]
    )
    print()
    print(text)
    (RESULTS / f"{name}.md").write_text(text)
    return text


def own_pids(standin: StandIn, db: FreshDb) -> Callable[[], list[int]]:
    def pids() -> list[int]:
        found = [standin.pid] if standin.pid else []
        if db.kind.startswith("PostgreSQL"):
            found += postgres_backends(db.name)
        return found

    return pids


# ---- checks -----------------------------------------------------------------------------------


def check_exactly_once(
    services: Any, standin: StandIn, phones: list[str], per_family: int | None
) -> tuple[bool, str]:
    """Every family got exactly ``per_family`` messages at the stand-in (``None``: the same
    number each, at least one), all different; nothing to anyone else; every outbound row is
    ``queued`` with the SID the stand-in gave it; no SID twice; no stand-in error; every create
    call answered 201."""
    from sqlalchemy import func, select

    from service.models import Message

    problems: list[str] = []
    sent = standin.messages()
    by_phone: dict[str, list[Sent]] = {}
    for message in sent:
        by_phone.setdefault(message.to, []).append(message)
    if per_family is None:
        counts = Counter(len(by_phone.get(p, [])) for p in phones)
        per_family = max(counts.most_common(1)[0][0], 1)
    expected = set(phones)
    strangers = set(by_phone) - expected
    if strangers:
        problems.append(f"{len(strangers)} unexpected recipient(s)")
    missing = [p for p in phones if len(by_phone.get(p, [])) < per_family]
    extra = [p for p in phones if len(by_phone.get(p, [])) > per_family]
    if missing:
        problems.append(f"{len(missing)} family(ies) short of {per_family} message(s)")
    if extra:
        problems.append(f"{len(extra)} family(ies) got more than {per_family} (duplicates)")
    repeated = sum(
        1 for messages in by_phone.values() if len({m.body for m in messages}) != len(messages)
    )
    if repeated:
        problems.append(f"{repeated} family(ies) got the same words twice")
    sids = [m.sid for m in sent]
    if len(set(sids)) != len(sids):
        problems.append("a SID was given twice")
    requests = standin.requests()
    posts = [r for r in requests if r.method == "POST"]
    bad = [r for r in posts if r.status != 201]
    if bad:
        problems.append(f"{len(bad)} create call(s) not answered 201")
    if standin.errors():
        problems.append(f"{len(standin.errors())} stand-in server error(s)")
    with services.db.transaction() as session:
        statuses = dict(
            session.execute(
                select(Message.status, func.count())
                .where(Message.direction == "out")
                .group_by(Message.status)
            ).all()
        )
        db_sids = set(
            session.scalars(select(Message.twilio_sid).where(Message.twilio_sid.is_not(None)))
        )
    total = sum(statuses.values())
    if statuses.get("queued", 0) != total:
        problems.append(f"outbox not all queued: {statuses}")
    if db_sids != set(sids):
        problems.append(
            f"stored SIDs != stand-in SIDs ({len(db_sids)} stored, {len(set(sids))} sent)"
        )
    want = len(phones) * per_family
    if len(sent) != want or total != want:
        problems.append(f"{len(sent)} at the stand-in, {total} outbox rows, {want} expected")
    if problems:
        return False, "FAILED: " + "; ".join(problems)
    return True, (
        f"ok: {len(sent):,} at the stand-in = {total:,} outbox rows queued, "
        f"{per_family} per family, no duplicate"
    )


# ---- sampling profile (py-spy) ----------------------------------------------------------------


@contextmanager
def py_spy(output: Path) -> Iterator[None]:
    """Sample this process with py-spy (wall clock: idle stacks included, so waits on the
    database and on HTTP show up) while the block runs; raw folded stacks go to ``output``."""
    import signal
    import subprocess

    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    process = subprocess.Popen(
        [
            exe,
            "record",
            "--pid",
            str(os.getpid()),
            "--format",
            "raw",
            "--rate",
            "250",
            "--idle",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # let it attach
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)


OUR_CODE = ("service/", "scheduler/", "messages/", "flows/")


def _leaf_kind(leaf: str) -> str:
    if "psycopg" in leaf or "sqlite3" in leaf or "(sqlalchemy/engine/default.py" in leaf:
        return "in the database driver (psycopg's own Python code + waiting; or sqlite3)"
    if "socket" in leaf or "ssl" in leaf or "select" in leaf or "http" in leaf:
        return "HTTP socket I/O"
    if "sqlalchemy" in leaf:
        return "SQLAlchemy (Python)"
    if any(name in leaf for name in ("twilio", "requests", "urllib3", "urllib")):
        return "twilio / requests / urllib3 (Python)"
    if any(part in leaf for part in OUR_CODE):
        return "our code (Python)"
    return "other"


def summarise_profile(
    raw: Path,
    roots: tuple[tuple[str, str], ...] = (
        ("due-work phase", "do_batch ("),
        ("claims of due work", "claim_due ("),
        ("send phase", "drain ("),
    ),
    top: int = 14,
) -> str:
    """For each ``(label, frame prefix)``: the samples under that frame, where their leaf frame
    was, and the inclusive share of our code's frames (file:line of the call) beneath it."""
    stacks: list[tuple[list[str], int]] = []
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if stack and count_text.isdigit():
            stacks.append((stack.split(";"), int(count_text)))
    everything = sum(count for _, count in stacks) or 1
    out = []
    for label, prefix in roots:
        inclusive: Counter[str] = Counter()
        leaves: Counter[str] = Counter()
        total = 0
        for frames, count in stacks:
            at = next((i for i, f in enumerate(frames) if f.startswith(prefix)), None)
            if at is None:
                continue
            total += count
            for frame in set(frames[at + 1 :]):
                if any(part in frame for part in OUR_CODE):
                    inclusive[frame] += count
            leaves[_leaf_kind(frames[-1])] += count
        if not total:
            continue
        out.append(f"{label}: {total} samples ({100 * total / everything:.0f} % of the run)")
        out += [f"  {100 * n / total:5.1f} %  leaf {kind}" for kind, n in leaves.most_common()]
        out += [f"  {100 * n / total:5.1f} %  {frame}" for frame, n in inclusive.most_common(top)]
    return "\n".join(out) or "(no samples)"
