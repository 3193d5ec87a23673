#!/usr/bin/env python
"""Where a webhook request spends its time: py-spy on ONE gunicorn worker under wrk.

    python bench/webhook/hotspots.py --db sqlite --seconds 15
    python bench/webhook/hotspots.py --db postgres --seconds 15

Sets up a database exactly as ``run.py`` does (fresh, families enrolled and ticked, signed
requests), starts the service under gunicorn with one sync worker and ``BRAVESTEPS_DISPATCH=off``,
keeps it busy with wrk (2 connections, so a request is always waiting), and samples the worker with
``py-spy record --idle`` (waiting on the database counts too). Writes
``bench/results/webhook-profile-<db>.md``: the share of request time under each line of the
project's code (inclusive), the deepest project line each sample is under (what to change), and
which library the time finally lands in. The raw stacks go next to it (``.raw.txt``) for
flamegraph tools. Needs ``py-spy`` (``pip install py-spy``) and wrk.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as bench  # noqa: E402

PROJECT = ("service/", "flows/", "messages/", "scheduler/")
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>.*):(?P<line>\d+)\)$")
VIEW = "webhooks.py"  # a sample is request time when a frame of the webhook view is on the stack


def short(path: str) -> str:
    """A path relative to the repository or to site-packages."""
    root = str(bench.ROOT) + "/"
    if path.startswith(root):
        return path[len(root) :]
    marker = "site-packages/"
    if marker in path:
        return path.split(marker, 1)[1]
    return path.rsplit("/lib/python3", 1)[-1].split("/", 1)[-1] if "/lib/python3" in path else path


def is_project(path: str) -> bool:
    return path.startswith(PROJECT)


DRIVER_CALLS = {
    "do_execute",
    "do_executemany",
    "do_execute_no_params",
    "do_commit",
    "do_rollback",
    "do_close",
    "connect",
    "do_ping",
}
# The request's own path, outermost last: each sample is put under the line of the deepest of these
# functions on its stack.
SPINE = [
    ("service/inbound.py", "_process"),
    ("service/inbound.py", "handle_inbound"),
    ("service/webhooks.py", "inbound"),
    ("service/webhooks.py", "signed.<locals>.checked"),
]


def layer(path: str, func: str) -> str:
    """Which library a leaf frame belongs to."""
    if path.startswith("sqlalchemy/engine/") and func.rsplit(".", 1)[-1] in DRIVER_CALLS:
        return "database driver calls in C (sqlite3 / libpq: execute, commit, connect, close)"
    if path.startswith("service/db.py"):
        return "database driver calls in C (sqlite3 / libpq: execute, commit, connect, close)"
    if path.startswith("sqlalchemy/orm/"):
        return "SQLAlchemy ORM (unit of work, loading, attributes)"
    if path.startswith("sqlalchemy/"):
        return "SQLAlchemy Core/engine (compile, execute, pool, events)"
    if path.startswith(("psycopg/", "psycopg_binary/", "psycopg_pool/")):
        return "psycopg (incl. waiting for PostgreSQL)"
    if path.startswith(("werkzeug/", "flask/", "gunicorn/")):
        return "HTTP: gunicorn, werkzeug, flask"
    if path.startswith("twilio/"):
        return "twilio library (signature, TwiML)"
    if path.startswith("flows/"):
        return "flows (the engine)"
    if path.startswith("messages/"):
        return "messages (catalogue, segments, TwiML helpers)"
    if path.startswith(("service/", "scheduler/")):
        return "service code itself"
    if path.startswith(("xml/", "hmac", "hashlib", "base64")):
        return "stdlib: xml / hmac"
    return "other (stdlib, json, datetime, ...)"


def source_line(path: str, line: int) -> str:
    try:
        text = (bench.ROOT / path).read_text().splitlines()[line - 1].strip()
    except (OSError, IndexError):
        return ""
    return f"`{text[:90]}`" if text else ""


def parse(raw: Path) -> list[tuple[list[tuple[str, str, int]], int]]:
    stacks = []
    for line in raw.read_text().splitlines():
        if not line.strip():
            continue
        text, count = line.rsplit(" ", 1)
        frames = []
        for part in text.split(";"):
            match = FRAME.match(part)
            if match:
                frames.append((match["func"], short(match["file"]), int(match["line"])))
        stacks.append((frames, int(count)))
    return stacks


def report(stacks: list[tuple[list[tuple[str, str, int]], int]], top: int, title: str) -> str:
    total = sum(count for _, count in stacks)
    in_request = [(f, c) for f, c in stacks if any(VIEW in frame[1] for frame in f)]
    request_total = sum(c for _, c in in_request) or 1
    inclusive: Counter[str] = Counter()
    deepest: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    spine: Counter[str] = Counter()
    for frames, count in in_request:
        for path, func in SPINE:
            hits = [(p, ln) for fn, p, ln in frames if p == path and fn == func]
            if hits:
                where, line = hits[-1]
                spine[f"`{where}:{line}` {source_line(where, line)}"] += count
                break
        seen = set()
        deepest_project = None
        for func, path, line in frames:
            if is_project(path):
                key = f"`{path}:{line}` {func}"
                if key not in seen:
                    inclusive[key] += count
                    seen.add(key)
                deepest_project = key
        if deepest_project:
            deepest[deepest_project] += count
        leaf = frames[-1] if frames else ("?", "?", 0)
        layers[layer(leaf[1], leaf[0])] += count

    def rows(counter: Counter[str]) -> list[str]:
        return [f"| {100 * c / request_total:5.1f}% | {k} |" for k, c in counter.most_common(top)]

    out = [
        f"# Webhook profile: {title}",
        "",
        f"{total} samples, {request_total} inside the webhook view "
        f"({100 * request_total / max(total, 1):.0f}%); percentages are of request time.",
        "",
        "## Request time by line of the request's own path",
        "",
        "Each sample counts under the line of the deepest of "
        + ", ".join(f"`{func}`" for _, func in SPINE)
        + " on its stack.",
        "",
        "| share | line |",
        "| ---: | --- |",
        *rows(spine),
        "",
        "## Inclusive time under each project line (call sites)",
        "",
        "| share | where |",
        "| ---: | --- |",
        *rows(inclusive),
        "",
        "## Deepest project line on the stack (the line to change)",
        "",
        "| share | where |",
        "| ---: | --- |",
        *rows(deepest),
        "",
        "## Where the time finally lands (leaf frame's library)",
        "",
        "| share | layer |",
        "| ---: | --- |",
        *[f"| {100 * c / request_total:5.1f}% | {k} |" for k, c in layers.most_common()],
        "",
    ]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--families", type=int, default=500)
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--pg", default="postgres@127.0.0.1:5432")
    parser.add_argument("--from-raw", type=Path, help="only analyse an earlier .raw.txt")
    args = parser.parse_args()
    if args.from_raw:
        print(report(parse(args.from_raw), args.top, str(args.from_raw)))
        return 0
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(pyspy).exists():
        raise SystemExit("py-spy is not installed: pip install py-spy")

    workdir = Path(tempfile.mkdtemp(prefix="bravesteps-profile-"))
    bench.RESULTS.mkdir(parents=True, exist_ok=True)
    dbs = bench.databases(args.db, workdir, args.pg, "bravesteps_bench_webhook_profile")
    try:
        phones = [bench.phone_of(i) for i in range(args.families)]
        bench.prepare_service_db(dbs.service_url, phones, workdir)
        requests = workdir / "requests.tsv"
        bench.write_requests(requests, phones, len(bench.BODIES), bench.MEASURED_PREFIX)
        log_path = bench.RESULTS / "logs" / f"webhook-profile-{args.db}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        server = bench.Server(
            "service:create_app()", bench.service_env(dbs.service_url), 1, workdir, log_path
        )
        raw = bench.RESULTS / f"webhook-profile-{args.db}.raw.txt"
        try:
            (worker,) = bench.children_of(server.process.pid)
            results: dict[str, bench.WrkResult] = {}
            load = threading.Thread(
                target=lambda: results.update(
                    wrk=bench.run_wrk(server.port, requests, args.seconds + 2, 1, args.connections)
                )
            )
            load.start()
            time.sleep(1)
            bench.log(f"py-spy on worker {worker} for {args.seconds:g} s")
            command = [pyspy, "record", "--pid", str(worker), "--duration"]
            command += [str(int(args.seconds)), "--rate", str(args.rate), "--idle"]
            command += ["--format", "raw", "--output", str(raw)]
            subprocess.run(command, check=True, capture_output=True)
            load.join()
        finally:
            server.stop()
        wrk = results["wrk"]
        title = (
            f"{dbs.kind}, 1 sync worker, wrk -c{args.connections}: {wrk.rps:.0f} req/s "
            f"({1000 / max(wrk.rps, 1e-9):.1f} ms per request) while sampled"
        )
        text = report(parse(raw), args.top, title)
        out = bench.RESULTS / f"webhook-profile-{args.db}.md"
        out.write_text(text)
        print(text)
        bench.log(f"written to {out} (raw stacks: {raw})")
    finally:
        dbs.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
