#!/usr/bin/env python
"""Sender benchmark: ``service.outbox.drain`` handing pending messages to the local Twilio stand-in.

One command (from the repository root, venv active)::

    python bench/sender/run.py [--messages 5000] [--paced 50:500,10:100] [--db both]

For each database it makes a fresh database (a temporary SQLite file; PostgreSQL
``bravesteps_bench_sender`` on 127.0.0.1, dropped and re-created), migrates it, bulk-inserts one
therapist and enough families, and then for each scenario empties the outbox, puts one pending
outbound SMS per family in it (the real rendered opening message, due now, quiet hours off), and
times one ``drain(services)`` against the stand-in (``tests/twilio_standin.py``, in its own
process on 127.0.0.1):

- unpaced: ``MESSAGES_PER_SECOND=0``, ``--messages`` messages: messages per second (bar >= 500/s).
  ``claim_outbox``, ``prepare_batch``, ``record_batch`` and the gateway's ``send`` are wrapped with
  timers (no service code is changed) to show where the time goes.
- paced: ``MESSAGES_PER_SECOND=R`` for N messages, for each ``R:N`` in ``--paced``: the rate the
  stand-in saw, (N - 1) / (last arrival - first arrival), against R (bar: within +/-5 %), the most
  messages that arrived in any 1-second window, and the drain's own N / elapsed.

After each scenario it checks that every family got exactly one message at the stand-in, nothing
went to anyone else, and every outbox row is ``queued`` with the SID the stand-in gave it. Prints a
markdown table and writes it to ``bench/results/sender.md``. ``--profile`` samples the unpaced
drain with py-spy (wall clock) and prints where the time went.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import itertools
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    RESULTS,
    CpuMeter,
    StandIn,
    Timers,
    add_common_options,
    analyse,
    check_exactly_once,
    count_statements,
    fresh_database,
    own_pids,
    patched,
    py_spy,
    seed_families,
    seed_outbox,
    settings_for,
    summarise_profile,
    write_report,
)

UNPACED_BAR = 500.0
ACCURACY_BAR = 0.05


def parse_paced(text: str) -> list[tuple[float, int]]:
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        rate, _, count = item.partition(":")
        pairs.append((float(rate), int(count)))
    return pairs


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """The most arrivals in any half-open window of ``window`` seconds."""
    best = 0
    for i, start in enumerate(times):
        best = max(best, bisect.bisect_left(times, start + window) - i)
    return best


def scenario(
    db: Any, standin: StandIn, phones: list[str], rate: float, count: int, profile: bool
) -> dict[str, Any]:
    from sqlalchemy import delete

    import service.outbox as outbox
    from service.models import Message
    from service.wiring import build_services

    services = build_services(settings_for(db.url, standin.base_url, rate))
    try:
        with services.db.transaction() as session:
            session.execute(delete(Message))
        standin.reset()
        seed_outbox(services, count, services.now())
        analyse(services)
        timers = Timers()
        gateway = services.gateway
        gateway.send = timers.wrap("gateway.send", gateway.send)  # type: ignore[method-assign]
        output = RESULTS / f"sender-{'sqlite' if db.kind == 'SQLite' else 'postgres'}.pyspy.txt"
        with (
            py_spy(output) if profile else contextlib.nullcontext(),
            patched(outbox, timers, "claim_outbox", "prepare_batch", "record_batch"),
            count_statements(services.db.engine, timers),
            CpuMeter(own_pids(standin, db)) as meter,
        ):
            cpu0 = time.process_time()
            start = time.perf_counter()
            report = outbox.drain(services)
            elapsed = time.perf_counter() - start
            cpu = time.process_time() - cpu0
        if profile:
            print(summarise_profile(output))
            print(f"  py-spy stacks written to {output}")
        ok, check = check_exactly_once(services, standin, phones[:count], 1)
        if report.accepted != count:
            ok, check = False, check + f"; FAILED: drain reported {report}"
        arrivals = sorted(r.at for r in standin.requests() if r.method == "POST")
        span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
        gaps = [b - a for a, b in itertools.pairwise(arrivals)]
        return {
            "db": db.kind,
            "rate": rate,
            "count": count,
            "elapsed": elapsed,
            "drain_rate": report.accepted / elapsed,
            "seen_rate": (len(arrivals) - 1) / span if span else 0.0,
            "max_1s": max_in_window(arrivals),
            "gap_min": min(gaps) if gaps else 0.0,
            "gap_median": statistics.median(gaps) if gaps else 0.0,
            "gap_max": max(gaps) if gaps else 0.0,
            "send": timers.seconds["gateway.send"],
            "prepare": timers.seconds["prepare_batch"],
            "record": timers.seconds["record_batch"],
            "claim": timers.seconds["claim_outbox"],
            "statements": timers.statements,
            "transactions": timers.checkouts,
            "cpu": cpu,
            "other": meter.other_cores,
            "own": meter.own_cores,
            "ok": ok,
            "check": check,
        }
    finally:
        services.db.dispose()


def run_db(kind: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    from service.wiring import build_services

    paced = parse_paced(args.paced)
    families = max([args.messages, *(count for _, count in paced)])
    db = fresh_database(kind, args.pg_server, args.pg_name, args.keep, args.async_commit)
    results = []
    try:
        with StandIn(args.standin) as standin:
            services = build_services(settings_for(db.url, standin.base_url, 0.0))
            phones = seed_families(services, families, services.now(), due_work=None)
            services.db.dispose()
            for rate, count in [(0.0, args.messages), *paced]:
                r = scenario(db, standin, phones, rate, count, args.profile and not rate)
                results.append(r)
                if rate:
                    print(
                        f"  {db.kind} paced {rate:g}/s, {count}: stand-in saw "
                        f"{r['seen_rate']:.2f}/s ({100 * (r['seen_rate'] / rate - 1):+.2f} %), "
                        f"max {r['max_1s']} in 1 s, drain {r['drain_rate']:.2f}/s; {r['check']}",
                        flush=True,
                    )
                else:
                    print(
                        f"  {db.kind} unpaced, {count}: {r['drain_rate']:.0f}/s in "
                        f"{r['elapsed']:.2f} s (gateway.send {r['send']:.2f} s on all threads, "
                        f"prepare "
                        f"{r['prepare']:.2f} s, record {r['record']:.2f} s, claims "
                        f"{r['claim']:.2f} s; {r['statements'] / count:.2f} statements in "
                        f"{r['transactions'] / count:.2f} transactions and "
                        f"{1000 * r['cpu'] / count:.2f} ms CPU here per message); {r['check']}",
                        flush=True,
                    )
    finally:
        db.cleanup()
    return results


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| database | pacing | messages | time | messages/s (drain) | rate seen at the stand-in "
        "| bar | where the time went (per message) | other load | checks |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | --- | ---: | --- |",
    ]
    for r in results:
        n = r["count"]
        if r["rate"]:
            error = r["seen_rate"] / r["rate"] - 1
            bar = (
                f"{'✅' if abs(error) <= ACCURACY_BAR else '❌'} {100 * error:+.2f} % "
                f"(bar ±5 %); max {r['max_1s']} in any 1 s"
            )
            pacing = f"{r['rate']:g}/s"
            where = (
                f"gaps min {1000 * r['gap_min']:.1f} / median {1000 * r['gap_median']:.1f} / "
                f"max {1000 * r['gap_max']:.1f} ms (setting {1000 / r['rate']:.1f} ms)"
            )
            seen = f"{r['seen_rate']:.2f}/s"
            drain = f"{r['drain_rate']:.2f}"
        else:
            ok = r["drain_rate"] >= UNPACED_BAR
            bar = f"{'✅' if ok else '❌'} ≥ {UNPACED_BAR:.0f}/s"
            pacing = "off"
            where = (
                f"HTTP to the stand-in {1000 * r['send'] / n:.2f} ms (summed over threads), "
                f"prepare "
                f"{1000 * r['prepare'] / n:.2f} ms, record {1000 * r['record'] / n:.2f} ms, "
                f"claims {1000 * r['claim'] / n:.2f} ms; {r['statements'] / n:.2f} SQL statements "
                f"in {r['transactions'] / n:.2f} transactions; {1000 * r['cpu'] / n:.2f} ms CPU "
                "in the sender"
            )
            seen = f"{r['seen_rate']:,.0f}/s"
            drain = f"**{r['drain_rate']:,.0f}**"
        lines.append(
            f"| {r['db']} | {pacing} | {n:,} | {r['elapsed']:.2f} s | {drain} | {seen} | {bar} "
            f"| {where} | {r['other']:.2f} cores | {r['check']} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5_000, help="unpaced messages")
    parser.add_argument(
        "--paced", default="50:500,10:100", help="RATE:COUNT pairs, comma-separated; '' for none"
    )
    add_common_options(
        parser,
        db="both",
        pg_name="bravesteps_bench_sender",
        profile_help="sample the unpaced drain with py-spy",
    )
    args = parser.parse_args()

    started = time.monotonic()
    RESULTS.mkdir(parents=True, exist_ok=True)
    kinds = ["postgres", "sqlite"] if args.db == "both" else [args.db]
    results = []
    for kind in kinds:
        print(f"{kind} ...", flush=True)
        results += run_db(kind, args)
    write_report("Sender benchmark", table(results), started, args.standin, "sender")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
