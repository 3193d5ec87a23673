#!/usr/bin/env python
"""CPU per message in one process, without HTTP: the webhook and the baseline side by side.

    python bench/webhook/inprocess.py                  # SQLite
    python bench/webhook/inprocess.py --db postgres    # PostgreSQL

Sets up the databases exactly as ``run.py`` does (families enrolled and ticked, signed requests),
builds each app as gunicorn does (``create_app()`` with the benchmark's environment), and calls it
as a WSGI application, one signed request after the other: no sockets, no gunicorn, no wrk, so the
figures are the apps' own work and vary much less from run to run than ``run.py``'s.

On SQLite each app is measured twice: alone, and with another connection committing a one-row
insert between its requests, as the other gunicorn worker of ``run.py`` does. SQLite keeps a page
cache per connection and empties it whenever another connection has committed since its last
transaction, so every request of a busy multi-worker service reads the pages it touches again:
the second figure shows what that costs each app.

Prints a markdown table and writes it to ``bench/results/webhook-inprocess.md``.
"""

from __future__ import annotations

import argparse
import io
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as bench  # noqa: E402

Call = Callable[[str, str], None]


def wsgi_caller(app: Any) -> Call:
    """Send one signed request (``signature``, urlencoded ``body``) to a WSGI ``app``."""
    host = bench.PUBLIC_URL.split("://", 1)[1]

    def call(signature: str, body: str) -> None:
        data = body.encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": bench.PATH,
            "QUERY_STRING": "",
            "SERVER_NAME": host,
            "SERVER_PORT": "443",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": host,
            "wsgi.url_scheme": "https",
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
            "CONTENT_LENGTH": str(len(data)),
            "HTTP_X_TWILIO_SIGNATURE": signature,
            "wsgi.input": io.BytesIO(data),
            "wsgi.errors": sys.stderr,
        }
        statuses: list[str] = []
        b"".join(app(environ, lambda status, headers, exc_info=None: statuses.append(status)))
        if not statuses[0].startswith("200"):
            raise SystemExit(f"{bench.PATH} answered {statuses[0]}")

    return call


def other_writer(url: str) -> Callable[[], None]:
    """A commit by another connection to the SQLite database at ``url`` (one row, one page)."""
    connection = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    connection.execute("CREATE TABLE IF NOT EXISTS bench_other_writer (x INTEGER)")
    return lambda: connection.execute("INSERT INTO bench_other_writer VALUES (1)") and None


def measure(call: Call, requests: Iterable[list[str]], between: Callable[[], None] | None) -> Any:
    """Microseconds of wall time and of this process's CPU per request (``between`` excluded)."""
    wall = cpu = 0.0
    count = 0
    for signature, body in requests:
        if between is not None:
            between()
        started, cpu_started = time.perf_counter(), time.process_time()
        call(signature, body)
        wall += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
        count += 1
    return wall / count * 1e6, cpu / count * 1e6, count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--messages", type=int, default=8000, help="measured, per app and case")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--families", type=int, default=1000)
    parser.add_argument("--pg", default="postgres@127.0.0.1:5432")
    parser.add_argument("--out", type=Path, default=bench.RESULTS / "webhook-inprocess.md")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="bravesteps-webhook-inprocess-"))
    dbs = bench.databases(args.db, workdir, args.pg, "bravesteps_bench_webhook_inprocess")
    sqlite = args.db == "sqlite"
    cases = [("alone", False), ("another connection commits between requests", True)]
    try:
        total = (args.warmup + args.messages) * (2 if sqlite else 1)
        requests_file = bench.prepare_in_process(dbs, args.families, total, workdir)
        requests = [line.split("\t") for line in requests_file.read_text().splitlines()]
        bench.prepare_baseline_db(dbs.baseline_url)
        os.environ["BENCH_DATABASE_URL"] = dbs.baseline_url
        import logging

        from baseline import create_app as create_baseline

        from service import create_app

        apps = {"webhook": create_app(), "one-insert baseline": create_baseline()}
        logging.getLogger().setLevel(logging.WARNING)
        figures: dict[tuple[str, bool], tuple[float, float, int]] = {}
        for name, app in apps.items():
            url = dbs.service_url if name == "webhook" else dbs.baseline_url
            # Each app answers the same stream: the onboarding in the same order, per case.
            stream = iter(requests)
            for label, other in cases if sqlite else cases[:1]:
                between = other_writer(url) if other else None
                call = wsgi_caller(app)
                measure(call, (next(stream) for _ in range(args.warmup)), between)
                figures[name, other] = measure(
                    call, (next(stream) for _ in range(args.messages)), between
                )
                wall, cpu, _count = figures[name, other]
                bench.log(f"{dbs.kind} {name}, {label}: {wall:.0f} µs wall, {cpu:.0f} µs CPU")
        for app in apps.values():
            db = app.extensions.get("bravesteps")
            if db is not None:
                db.db.dispose()
    finally:
        dbs.cleanup()

    rows = [
        f"# Webhook in one process ({dbs.kind}, {args.messages:,} messages per row, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        "| app | case | wall per message | CPU per message | baseline's CPU ÷ this |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for (name, other), (wall, cpu, _count) in figures.items():
        label = cases[1][0] if other else cases[0][0]
        ratio = figures["one-insert baseline", other][1] / cpu
        rows.append(f"| {name} | {label} | {wall:,.0f} µs | {cpu:,.0f} µs | {ratio:.2f}× |")
    command = "python bench/webhook/inprocess.py" + ("" if sqlite else " --db postgres")
    rows += ["", f"Command: `{command}`"]
    report = "\n".join(rows)
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
