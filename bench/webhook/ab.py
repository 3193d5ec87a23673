#!/usr/bin/env python
"""Is this tree's webhook cheaper than another commit's? An interleaved A/B in process.

    python bench/webhook/ab.py --before HEAD                 # SQLite, the working tree vs HEAD
    python bench/webhook/ab.py --before HEAD~3 --db postgres
    python bench/webhook/ab.py --before HEAD --other         # SQLite, another writer in between

On a shared machine whose speed drifts by tens of percent within a minute, two runs of
``run.py`` (or of ``inprocess.py``) one after the other cannot tell a 5% change from the drift.
Here the commit ``--before`` is checked out in a temporary git worktree (A) beside this tree (B);
each gets a worker process that sets up its own databases as ``inprocess.py`` does (the same
families, the same signed messages) and then answers chunks of messages on demand, A and B in
turn (ABBA…), so the drift falls on both alike. Each chunk's figure is the CPU a message: the
worker's, plus its PostgreSQL backend's on PostgreSQL. Chunk i of A and of B hold the same
messages, so their ratio is a fair pair; the median of the pairs' ratios is the answer.

Prints a markdown table; exit status 0. A's database is migrated by A's code, B's by B's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def worker(args: argparse.Namespace) -> int:
    """Set up, warm up, print ``ready``; then for each line N read, answer N messages and print
    the CPU microseconds a message."""
    root = Path(args.worker).resolve()
    os.chdir(root)
    sys.path[:0] = [str(root / "bench" / "webhook"), str(root)]
    import logging

    import inprocess
    import run as bench

    workdir = Path(tempfile.mkdtemp(prefix="bravesteps-ab-"))
    dbs = bench.databases(args.db, workdir, args.pg, args.pg_name)
    try:
        requests_file = bench.prepare_in_process(dbs, args.families, args.total, workdir)
        requests = iter([line.split("\t") for line in requests_file.read_text().splitlines()])
        import service
        from service import create_app

        if not str(Path(service.__file__).resolve()).startswith(str(root)):
            raise SystemExit(f"imported {service.__file__}, not the tree at {root}")
        app = create_app()
        logging.getLogger().setLevel(logging.WARNING)
        other = args.other and args.db == "sqlite"
        between = inprocess.other_writer(dbs.service_url) if other else None
        call = inprocess.wsgi_caller(app)
        server = _backend_cpu(dbs.service_url) if args.db != "sqlite" else (lambda: 0.0)
        inprocess.measure(call, (next(requests) for _ in range(args.warmup)), between)
        print("ready", flush=True)
        for line in sys.stdin:
            count = int(line)
            before = server()
            _wall, cpu, _n = inprocess.measure(
                call, (next(requests) for _ in range(count)), between
            )
            print(cpu + (server() - before) / count * 1e6, flush=True)
        app.extensions["bravesteps"].db.dispose()
    finally:
        dbs.cleanup()
    return 0


def _backend_cpu(url: str) -> Callable[[], float]:
    """Seconds of CPU used so far by the PostgreSQL backends serving database ``url``."""
    from harness import CLK_TCK, _proc_jiffies, postgres_backends  # on the path once run is
    from sqlalchemy import make_url

    pids = postgres_backends(make_url(url).database)
    return lambda: sum(_proc_jiffies(pid) for pid in pids) / CLK_TCK


def compare(args: argparse.Namespace) -> int:
    total = args.warmup + args.chunks * args.size + 10
    tree = Path(tempfile.mkdtemp(prefix="bravesteps-ab-tree-")) / "before"
    subprocess.run(
        ["git", "worktree", "add", "--detach", "--quiet", str(tree), args.before],
        cwd=ROOT,
        check=True,
    )
    workers: dict[str, subprocess.Popen[str]] = {}
    figures: dict[str, list[float]] = {"A": [], "B": []}
    try:
        for name, root in (("A", tree), ("B", ROOT)):
            command = [sys.executable, __file__, "--worker", str(root), "--db", args.db]
            command += ["--pg", args.pg, "--pg-name", f"{args.pg_name}_{name.lower()}"]
            command += ["--total", str(total), "--families", str(args.families)]
            command += ["--warmup", str(args.warmup)] + (["--other"] if args.other else [])
            env = dict(os.environ, PYTHONPATH=str(root))
            workers[name] = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
            )
        for name, process in workers.items():
            assert process.stdout is not None
            if process.stdout.readline().strip() != "ready":
                raise SystemExit(f"worker {name} did not start")
        for i in range(args.chunks):
            for name in ("A", "B") if i % 2 == 0 else ("B", "A"):
                process = workers[name]
                assert process.stdin is not None and process.stdout is not None
                process.stdin.write(f"{args.size}\n")
                process.stdin.flush()
                figures[name].append(float(process.stdout.readline()))
    finally:
        for process in workers.values():
            if process.stdin is not None:
                process.stdin.close()
            process.wait(timeout=120)
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
        shutil.rmtree(tree.parent, ignore_errors=True)

    ratios = sorted(b / a for a, b in zip(figures["A"], figures["B"], strict=True))
    case = args.db + (", another writer between requests" if args.other else "")
    print(f"# Webhook A/B in process ({case}; {args.chunks} chunks of {args.size} messages)\n")
    print("| tree | CPU a message, median | fastest chunk |")
    print("| --- | ---: | ---: |")
    for name, label in (("A", f"A: `{args.before}`"), ("B", "B: this tree")):
        median, fastest = statistics.median(figures[name]), min(figures[name])
        print(f"| {label} | {median:,.0f} µs | {fastest:,.0f} µs |")
    print(
        f"\nB ÷ A, chunk by chunk: median **{statistics.median(ratios):.3f}** "
        f"(from {ratios[0]:.3f} to {ratios[-1]:.3f})"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default="HEAD", help="the commit to compare with (A)")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--chunks", type=int, default=24)
    parser.add_argument("--size", type=int, default=200, help="messages a chunk")
    parser.add_argument("--other", action="store_true", help="SQLite: commit between requests")
    parser.add_argument("--families", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--pg", default="postgres@127.0.0.1:5432")
    parser.add_argument("--pg-name", default="bravesteps_bench_ab")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--total", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    return worker(args) if args.worker else compare(args)


if __name__ == "__main__":
    raise SystemExit(main())
