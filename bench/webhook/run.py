#!/usr/bin/env python
"""Webhook benchmark: ``POST /twilio/messages`` vs a one-insert baseline, SQLite and PostgreSQL.

One command (from the repository root, venv active)::

    python bench/webhook/run.py --seconds 10

For each database it makes a fresh database (a temporary SQLite file; a dropped and re-created
PostgreSQL database), migrates it, enrols ``--families`` families plus a few warm-up families in one
transaction, runs one tick so every family is at the consent question, and pre-signs thousands of
distinct inbound messages (one MessageSid each; several per family, round by round, so one family's
messages are far apart in the stream). The databases are set up side by side. Then, for the
one-insert baseline (``baseline.py``) and for the service, it starts gunicorn (sync workers,
``--workers``) on a free loopback port, warms up with wrk on the warm-up families, runs wrk
(``--connections``, ``--latency``) for ``--seconds``, waits for the last in-flight requests to land,
stops gunicorn, and checks:

- every response was 200 (wrk's Lua counts any other status; socket errors are reported too);
- stored inbound rows == distinct messages sent, and no MessageSid stored twice;
- (service) every stored inbound message was matched to its enrolled family;
- the gunicorn log has no ERROR, traceback or worker timeout.

The service runs with ``BRAVESTEPS_DISPATCH=off`` (replies stay in the outbox for the tick), so
the figure is the webhook itself — signature, dedupe, family lock, engine step, commit, TwiML — not
outbound HTTP. Twilio credentials are set (so the signature IS checked) and point at
``http://127.0.0.1:9``, where nothing is ever sent. All traffic stays on 127.0.0.1.

Prints a markdown table and writes it to ``bench/results/webhook.md`` (wrk's own --latency
reports and the gunicorn logs go to ``bench/results/logs/``). Exit status: 0 when both bars are
met, 2 when a webhook misses a bar (throughput or p99), 1 when a correctness check failed.
``hotspots.py`` profiles the webhook under one worker.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "sender"))

from harness import (  # noqa: E402  (one /proc reader for every benchmark)
    CpuMeter,
    postgres_backends,
    rusage_jiffies,
)
from sqlalchemy import create_engine, make_url, text  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

PUBLIC_URL = "https://bravesteps.bench.invalid"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "5e" * 16
SMS_FROM = "+447700900000"
THERAPIST_PHONE = "+447700900555"
PATH = "/twilio/messages"
# What parents send, round by round: the consent answer, then onboarding's day, time, goal and
# rating, then things the flow does not expect at that point (each still a full engine step).
BODIES = [
    "Yes",
    "Monday",
    "18:00",
    "Getting to school without tears",
    "3",
    "ok thanks",
    "What do we do this week?",
    "Thank you",
]
BLOCK = 50  # families per block in the request stream (see write_requests)
MEASURED_PREFIX = "SMm"  # MessageSids of measured requests
WARMUP_PREFIX = "SMw"  # ... and of warm-up requests (other families)


# ---- helpers --------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def phone_of(index: int) -> str:
    """A distinct, possible UK mobile number for family ``index``."""
    return f"+4474{index:08d}"


def clean_env(**extra: str) -> dict[str, str]:
    """A minimal environment, so no developer's BRAVESTEPS_*/TWILIO_* setting leaks in."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
    env.update(extra)
    return env


# ---- how busy the machine was with other work --------------------------------------------


def children_of(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


# ---- databases ------------------------------------------------------------------------------


@dataclass
class Databases:
    kind: str  # "SQLite" | "PostgreSQL"
    service_url: str
    baseline_url: str
    cleanup: Callable[[], None] = lambda: None


def sqlite_databases(workdir: Path) -> Databases:
    return Databases(
        "SQLite",
        f"sqlite:///{workdir / 'service.sqlite'}",
        f"sqlite:///{workdir / 'baseline.sqlite'}",
    )


def postgres_databases(server: str, name: str, keep: bool) -> Databases:
    import psycopg

    admin = f"postgresql://{server}/postgres"
    names = (name, name + "_baseline")

    def recreate(drop_only: bool = False) -> None:
        with psycopg.connect(admin, autocommit=True) as connection:
            for db in names:
                connection.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
                if not drop_only:
                    connection.execute(f'CREATE DATABASE "{db}"')

    recreate()
    return Databases(
        "PostgreSQL",
        f"postgresql+psycopg://{server}/{names[0]}",
        f"postgresql+psycopg://{server}/{names[1]}",
        cleanup=(lambda: None) if keep else (lambda: recreate(drop_only=True)),
    )


def databases(kind: str, workdir: Path, pg: str, pg_name: str, keep: bool = False) -> Databases:
    """Fresh databases of ``kind`` (sqlite, or postgres/postgresql/pg on server ``pg``)."""
    if kind == "sqlite":
        return sqlite_databases(workdir)
    if kind in ("postgres", "postgresql", "pg"):
        return postgres_databases(pg, pg_name, keep)
    raise SystemExit(f"unknown --db '{kind}'")


def prepare_service_db(url: str, phones: list[str], workdir: Path) -> dict[str, Any]:
    """Migrate, enrol every family in one transaction, tick: every family at the consent question.

    The tick is ``bravesteps tick``, as an operator would run it.
    """
    from service.config import load_settings
    from service.db import upgrade
    from service.enrolment import EnrolRequest, add_staff, enrol_family
    from service.wiring import build_services

    started = time.perf_counter()
    upgrade(url)
    # No Twilio credentials here: the tick's sender keeps the opening messages in the database.
    settings = load_settings({"DATABASE_URL": url, "QUIET_HOURS": "00:00-00:00"})
    svc = build_services(settings)
    now = svc.now()
    languages = svc.catalogue.complete_languages()
    with svc.db.transaction() as session:
        staff = add_staff(
            session,
            name="Bench Therapist",
            phone=THERAPIST_PHONE,
            email=None,
            channel="sms",
            role="therapist",
            region="GB",
            now=now,
        )
        for phone in phones:
            enrol_family(
                session,
                EnrolRequest(
                    phone=phone,
                    channel="sms",
                    child_name="Sam",
                    child_age=8,
                    therapist_ref=staff.ref,
                ),
                region="GB",
                default_timezone="Europe/London",
                languages=languages,
                now=now,
            )
    svc.db.dispose()
    enrolled = time.perf_counter()
    bravesteps = Path(sys.executable).with_name("bravesteps")
    env = clean_env(DATABASE_URL=url, QUIET_HOURS="00:00-00:00")
    ticks = [
        subprocess.Popen(
            [str(bravesteps), "tick"], cwd=workdir, env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(1)
    ]
    lines = []
    for tick in ticks:
        out, _ = tick.communicate(timeout=600)
        if tick.returncode != 0:
            raise SystemExit(f"setup: bravesteps tick failed ({tick.returncode})")
        lines.append(out.strip())
    engine = create_engine(url)
    with engine.connect() as connection:
        waiting = connection.scalar(
            text("SELECT count(*) FROM conversations WHERE step = 'welcome' AND waiting")
        )
    engine.dispose()
    if waiting != len(phones):
        raise SystemExit(
            f"setup: only {waiting} of {len(phones)} families are at the consent question "
            f"({' / '.join(lines)})"
        )
    return {
        "enrol_s": enrolled - started,
        "tick_s": time.perf_counter() - enrolled,
        "tick": " / ".join(lines),
    }


def prepare_baseline_db(url: str) -> None:
    from baseline import create_schema

    from service.db import make_engine

    engine = make_engine(url)
    create_schema(engine)
    engine.dispose()


# ---- requests -------------------------------------------------------------------------------


def write_requests(
    path: Path, phones: list[str], rounds: int, prefix: str, block: int = BLOCK
) -> int:
    """One signed request per line, ``signature<TAB>body``.

    Families go in blocks of ``block``: every family of a block sends its first message, then
    every one its second, and so on through ``BODIES`` (one onboarding conversation), before the
    next block starts; once every family has had its turn, the next cycle of ``BODIES`` begins. So
    any stretch of the stream holds the whole mix of onboarding answers (not only consent answers),
    and one family's messages are ``block`` lines apart; with ``block`` a multiple of wrk's thread
    count they all go through the same wrk thread, in order, never two at once.
    """
    validator = RequestValidator(AUTH_TOKEN)
    url = PUBLIC_URL + PATH
    count = 0
    with path.open("w") as out:
        for cycle in range(0, rounds, len(BODIES)):
            for start in range(0, len(phones), block):
                for r in range(cycle, min(rounds, cycle + len(BODIES))):
                    body = BODIES[r % len(BODIES)]
                    for phone in phones[start : start + block]:
                        sid = f"{prefix}{count:031x}"
                        form = {
                            "ToCountry": "GB",
                            "SmsMessageSid": sid,
                            "NumMedia": "0",
                            "SmsSid": sid,
                            "SmsStatus": "received",
                            "Body": body,
                            "To": SMS_FROM,
                            "NumSegments": "1",
                            "MessageSid": sid,
                            "AccountSid": ACCOUNT_SID,
                            "From": phone,
                            "FromCountry": "GB",
                            "ApiVersion": "2010-04-01",
                        }
                        signature = validator.compute_signature(url, form)
                        out.write(f"{signature}\t{urlencode(form)}\n")
                        count += 1
    return count


# ---- gunicorn and wrk -----------------------------------------------------------------------


class Server:
    """One gunicorn master we started, stopped by its own pid."""

    def __init__(
        self, target: str, env: dict[str, str], workers: int, workdir: Path, log_path: Path
    ) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.log_file = log_path.open("w")
        command = [
            sys.executable, "-m", "gunicorn",
            "--workers", str(workers),
            "--worker-class", "sync",
            "--bind", f"127.0.0.1:{self.port}",
            "--pythonpath", f"{ROOT},{HERE}",
            target,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, cwd=workdir, env=env, stdout=self.log_file, stderr=subprocess.STDOUT
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log_file.flush()
                raise SystemExit(
                    f"gunicorn exited ({self.process.returncode}); see {self.log_path}:\n"
                    + self.log_path.read_text()[-2000:]
                )
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.port}/healthz", timeout=2
                ) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"gunicorn did not answer /healthz in {timeout:.0f} s: {self.log_path}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()

    def log_problems(self) -> list[str]:
        pattern = re.compile(r"\bERROR\b|Traceback|WORKER TIMEOUT|unhandled|CRITICAL")
        return [line for line in self.log_path.read_text().splitlines() if pattern.search(line)]


@dataclass
class WrkResult:
    data: dict[str, Any]
    raw: str

    @property
    def rps(self) -> float:
        return float(self.data["requests"]) / (self.data["duration_us"] / 1e6)


def run_wrk(
    port: int, request_file: Path, seconds: float, threads: int, connections: int
) -> WrkResult:
    command = [
        "wrk",
        "-t", str(threads),
        "-c", str(connections),
        "-d", f"{max(1, round(seconds))}s",
        "--timeout", "10s",
        "--latency",
        "-s", str(HERE / "requests.lua"),
        f"http://127.0.0.1:{port}",
        "--", str(request_file), str(threads),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
    if done.returncode != 0:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    match = re.search(r"^BENCH_RESULT (\{.*\})$", done.stdout, re.MULTILINE)
    if not match:
        raise SystemExit(f"wrk printed no BENCH_RESULT line:\n{done.stdout}\n{done.stderr}")
    data = json.loads(match.group(1))
    # Cross-check against wrk's own text output (the --latency report).
    printed = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    data["printed_rps"] = float(printed.group(1)) if printed else None
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", done.stdout)
    data["non2xx"] = int(non2xx.group(1)) if non2xx else 0
    return WrkResult(data, done.stdout)


# ---- one measured app -----------------------------------------------------------------------


@dataclass
class Measurement:
    database: str
    app: str
    wrk: WrkResult
    stored: int
    stored_distinct: int
    extra: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def settle(count: Callable[[], int], expected: int, timeout: float = 20.0) -> int:
    """Wait for requests still in flight when wrk stopped to land (count reaches ``expected``)."""
    deadline = time.monotonic() + timeout
    last, stable_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now_count = count()
        if now_count >= expected:
            return now_count
        if now_count != last:
            last, stable_since = now_count, time.monotonic()
        elif time.monotonic() - stable_since > 2.0:
            return now_count
        time.sleep(0.2)
    return count()


def measure(
    *,
    database: str,
    app: str,
    target: str,
    env: dict[str, str],
    count_sql: str,
    url: str,
    args: argparse.Namespace,
    workdir: Path,
    warm_file: Path,
    measured_file: Path,
) -> Measurement:
    tag = f"{database.lower()}-{'service' if app == 'webhook' else 'baseline'}"
    log_path = RESULTS / "logs" / f"webhook-{tag}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    counter = create_engine(url, poolclass=NullPool)

    def stored() -> tuple[int, int, int]:
        with counter.connect() as connection:
            row = connection.execute(text(count_sql), {"prefix": MEASURED_PREFIX + "%"}).one()
        return int(row[0]), int(row[1] or 0), int(row[2] or 0)

    log(f"{database} {app}: starting gunicorn ({args.workers} sync workers)")
    server = Server(target, env, args.workers, workdir, log_path)
    try:
        if args.warmup > 0:
            run_wrk(server.port, warm_file, args.warmup, args.threads, args.connections)
        log(f"{database} {app}: wrk -t{args.threads} -c{args.connections} -d{args.seconds}s")
        pg_name = make_url(url).database if url.startswith("postgresql") else None

        def own_pids() -> list[int]:
            pids = [server.process.pid, *children_of(server.process.pid)]
            return pids + (postgres_backends(pg_name) if pg_name else [])

        with CpuMeter(own_pids, rusage_jiffies) as meter:
            result = run_wrk(
                server.port, measured_file, args.seconds, args.threads, args.connections
            )
        settle(lambda: stored()[0], result.data["distinct"])
    finally:
        server.stop()
    count, distinct, unmatched = stored()
    counter.dispose()

    d = result.data
    problems = []
    if d["non200"] or d["non2xx"]:
        problems.append(f"{d['non200']} non-200 responses")
    socket_errors = d["err_connect"] + d["err_read"] + d["err_write"] + d["err_timeout"]
    if socket_errors:
        problems.append(
            f"socket errors: connect {d['err_connect']}, read {d['err_read']}, "
            f"write {d['err_write']}, timeout {d['err_timeout']}"
        )
    if d["wrapped"]:
        problems.append(
            f"wrk ran out of distinct messages ({d['loaded']}) and repeated some: "
            "raise --per-family"
        )
    if count != d["distinct"]:
        problems.append(f"stored {count} inbound rows but sent {d['distinct']} distinct messages")
    if distinct != count:
        problems.append(f"{count - distinct} MessageSids stored more than once")
    if unmatched:
        problems.append(f"{unmatched} stored messages not matched to an enrolled family")
    log_problems = server.log_problems()
    if log_problems:
        problems.append(f"{len(log_problems)} error lines in {log_path.name}: {log_problems[0]}")
    (RESULTS / "logs" / f"webhook-{tag}-wrk.txt").write_text(result.raw)
    log(
        f"{database} {app}: {result.rps:,.0f} req/s, p50 {d['p50_us'] / 1000:.1f} ms, "
        f"p99 {d['p99_us'] / 1000:.1f} ms; completed {d['requests']}, sent {d['sent']}, "
        f"stored {count}; server {meter.own_cores:.2f} cores, "
        f"other load {meter.other_cores:.2f} cores; "
        f"{'ok' if not problems else '; '.join(problems)}"
    )
    extra = {"other_cores": meter.other_cores, "own_cores": meter.own_cores}
    return Measurement(database, app, result, count, distinct, extra, problems)


def service_env(url: str) -> dict[str, str]:
    return clean_env(
        DATABASE_URL=url,
        SECRET_KEY="bench-" + "0" * 58,
        PUBLIC_URL=PUBLIC_URL,
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_SMS_FROM=SMS_FROM,
        TWILIO_API_BASE_URL="http://127.0.0.1:9",  # never contacted: dispatch is off
        BRAVESTEPS_DISPATCH="off",
        QUIET_HOURS="00:00-00:00",
    )


def prepare_in_process(dbs: Databases, families: int, messages: int, workdir: Path) -> Path:
    """For a benchmark that plays a web worker in this process (``memory.py``, ``inprocess.py``):
    ``families`` enrolled and ticked, at least ``messages`` signed requests in whole rounds, and
    the service's environment set for ``create_app()``. Returns the file of signed requests."""
    phones = [phone_of(i) for i in range(families)]
    log(f"{dbs.kind}: enrolling {len(phones)} families and ticking")
    prepare_service_db(dbs.service_url, phones, workdir)
    rounds = -(-messages // families)
    requests_file = workdir / "messages.tsv"
    log(f"{dbs.kind}: signing {rounds * families:,} messages")
    write_requests(requests_file, phones, rounds, MEASURED_PREFIX)
    os.environ.update(service_env(dbs.service_url))
    return requests_file


def prepare(
    kind: str, service_url: str, baseline_url: str, args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    """Everything before the load: databases, families, tick, signed request files."""
    phones = [phone_of(i) for i in range(args.families)]
    warm_phones = [phone_of(10_000_000 + i) for i in range(args.warmup_families)]
    log(f"{kind}: enrolling {len(phones) + len(warm_phones)} families and ticking")
    setup = prepare_service_db(service_url, phones + warm_phones, workdir)
    prepare_baseline_db(baseline_url)
    rounds = args.per_family or max(
        len(BODIES), math.ceil(args.seconds * args.max_rate / args.families)
    )
    write_requests(workdir / f"{kind.lower()}-warmup.tsv", warm_phones, rounds, WARMUP_PREFIX)
    total = write_requests(
        workdir / f"{kind.lower()}-measured.tsv", phones, rounds, MEASURED_PREFIX
    )
    setup.update(rounds=rounds, messages=total)
    log(
        f"{kind}: setup {setup['enrol_s']:.1f} s enrol + {setup['tick_s']:.1f} s tick; "
        f"{total:,} signed messages ({rounds} per family)"
    )
    return setup


def bench_database(dbs: Databases, args: argparse.Namespace, workdir: Path) -> list[Measurement]:
    warm_file = workdir / f"{dbs.kind.lower()}-warmup.tsv"
    measured_file = workdir / f"{dbs.kind.lower()}-measured.tsv"
    # Migrate again just before the server starts (a no-op at head): a working tree that gained
    # a migration since set-up would otherwise fail every request on a missing column.
    bravesteps = Path(sys.executable).with_name("bravesteps")
    subprocess.run(
        [str(bravesteps), "db", "upgrade"],
        cwd=workdir,
        env=clean_env(DATABASE_URL=dbs.service_url),
        check=True,
        capture_output=True,
    )
    common = dict(args=args, workdir=workdir, warm_file=warm_file, measured_file=measured_file)
    baseline = measure(
        database=dbs.kind,
        app="one-insert baseline",
        target="baseline:create_app()",
        env=clean_env(BENCH_DATABASE_URL=dbs.baseline_url),
        count_sql=(
            "SELECT count(*), count(DISTINCT sid), 0 FROM bench_inbound WHERE sid LIKE :prefix"
        ),
        url=dbs.baseline_url,
        **common,  # type: ignore[arg-type]
    )
    service = measure(
        database=dbs.kind,
        app="webhook",
        target="service:create_app()",
        env=service_env(dbs.service_url),
        count_sql=(
            "SELECT count(*), count(DISTINCT twilio_sid), "
            "sum(CASE WHEN family_id IS NULL THEN 1 ELSE 0 END) "
            "FROM messages WHERE direction = 'in' AND twilio_sid LIKE :prefix"
        ),
        url=dbs.service_url,
        **common,  # type: ignore[arg-type]
    )
    return [baseline, service]


def after_run(dbs: Databases, setup: dict[str, Any]) -> None:
    """What the measured run left behind, for the report."""
    engine = create_engine(dbs.service_url)
    with engine.connect() as connection:
        setup["outbox_pending"] = connection.scalar(
            text("SELECT count(*) FROM messages WHERE direction = 'out' AND status = 'pending'")
        )
        setup["steps"] = dict(
            connection.execute(
                text("SELECT step, count(*) FROM conversations GROUP BY step ORDER BY 2 DESC")
            ).all()
        )
    engine.dispose()


# ---- report ---------------------------------------------------------------------------------


def ms(us: float) -> str:
    return f"{us / 1000:.1f} ms"


def table(results: list[Measurement], args: argparse.Namespace) -> str:
    lines = [
        "| database | app | req/s | p50 | p99 | ratio to baseline (req/s) | p99 vs baseline "
        "| other load | checks |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    base: dict[str, Measurement] = {m.database: m for m in results if m.app != "webhook"}
    for m in results:
        d = m.wrk.data
        b = base[m.database]
        if m.app == "webhook":
            ratio = m.wrk.rps / b.wrk.rps
            p99 = d["p99_us"] / b.wrk.data["p99_us"]
            ratio_s = f"**{ratio:.2f}×** {'✅' if ratio >= args.bar_rps else '❌'} (bar ≥ 0.5×)"
            p99_s = f"{p99:.2f}× {'✅' if p99 <= args.bar_p99 else '❌'} (bar ≤ 3×)"
        else:
            ratio_s, p99_s = "1.00×", "1.00×"
        checks = (
            f"ok: {d['requests']:,} × 200, {m.stored:,} stored = {d['distinct']:,} sent, "
            "no duplicate"
            if m.ok
            else "FAIL: " + "; ".join(m.problems)
        )
        lines.append(
            f"| {m.database} | {m.app} | {m.wrk.rps:,.0f} | {ms(d['p50_us'])} | "
            f"{ms(d['p99_us'])} | {ratio_s} | {p99_s} | {m.extra['other_cores']:.2f} cores "
            f"| {checks} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="measured wrk run (default 10)")
    parser.add_argument("--warmup", type=float, default=2, help="wrk warm-up seconds (default 2)")
    parser.add_argument("--families", type=int, default=1000, help="measured families (1000)")
    parser.add_argument("--warmup-families", type=int, default=100)
    parser.add_argument(
        "--per-family", type=int, default=0,
        help="messages per family (default: enough for --max-rate req/s for --seconds)",
    )  # fmt: skip
    parser.add_argument("--max-rate", type=float, default=6000, help="for sizing (default 6000)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (2)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (8)")
    parser.add_argument("--db", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument(
        "--pg", default="postgres@127.0.0.1:5432",
        help="PostgreSQL server as user@host:port (trust auth)",
    )  # fmt: skip
    parser.add_argument(
        "--pg-name", default="bravesteps_bench_webhook", help="database to recreate"
    )
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument("--out", type=Path, default=RESULTS / "webhook.md")
    parser.add_argument("--bar-rps", type=float, default=0.5)
    parser.add_argument("--bar-p99", type=float, default=3.0)
    args = parser.parse_args(argv)

    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    RESULTS.mkdir(parents=True, exist_ok=True)
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    started = time.monotonic()
    results: list[Measurement] = []
    setups: dict[str, dict[str, Any]] = {}
    workdir = Path(tempfile.mkdtemp(prefix="bravesteps-bench-"))
    try:
        all_dbs = [databases(kind, workdir, args.pg, args.pg_name, args.keep) for kind in kinds]
        try:
            # Set-up is mostly one CPU-bound tick per database: do the databases side by side.
            fork = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(max_workers=len(all_dbs), mp_context=fork) as pool:
                futures = [
                    pool.submit(prepare, dbs.kind, dbs.service_url, dbs.baseline_url, args, workdir)
                    for dbs in all_dbs
                ]
                for dbs, future in zip(all_dbs, futures, strict=True):
                    setups[dbs.kind] = future.result()
            for dbs in all_dbs:
                results.extend(bench_database(dbs, args, workdir))
                after_run(dbs, setups[dbs.kind])
        finally:
            for dbs in all_dbs:
                dbs.cleanup()
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    elapsed = time.monotonic() - started
    body = table(results, args)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}"
    details = [
        f"Run {when} on {machine}, Python {platform.python_version()}; whole run {elapsed:.0f} s.",
        f"gunicorn {args.workers} sync workers; wrk -t{args.threads} -c{args.connections} "
        f"-d{args.seconds:g}s after a {args.warmup:g} s warm-up on other families; "
        "service with BRAVESTEPS_DISPATCH=off, signature checked.",
    ]
    for kind, s in setups.items():
        details.append(
            f"{kind}: {args.families} families (+{args.warmup_families} warm-up), "
            f"{s['messages']:,} distinct signed messages ({s['rounds']} per family); setup "
            f"{s['enrol_s']:.1f} s enrol + {s['tick_s']:.1f} s tick; after the run "
            f"{s['outbox_pending']:,} replies pending in the outbox (dispatch off); "
            "conversation steps " + ", ".join(f"{k}: {v}" for k, v in s["steps"].items()) + "."
        )
    report = "# Webhook benchmark\n\n" + body + "\n\n" + "\n\n".join(details) + "\n"
    command = "python bench/webhook/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
    report += f"\nCommand: `{command.strip()}`\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(report)
    log(f"written to {args.out}")
    failed = [m for m in results if not m.ok]
    base = {m.database: m for m in results if m.app != "webhook"}
    missed = [
        m
        for m in results
        if m.app == "webhook"
        and (
            m.wrk.rps < args.bar_rps * base[m.database].wrk.rps
            or m.wrk.data["p99_us"] > args.bar_p99 * base[m.database].wrk.data["p99_us"]
        )
    ]
    if failed:
        return 1
    return 2 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
