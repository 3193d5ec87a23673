#!/usr/bin/env python
"""Tick benchmark: one ``run_tick`` for N families that are all due at once, PostgreSQL and SQLite.

One command (from the repository root, venv active)::

    python bench/tick/run.py [--families 10000] [--event opening|session|both] [--db postgres]

``--db sqlite`` or ``--db both`` for SQLite. For each database it makes a fresh database (a
temporary SQLite file; PostgreSQL ``bravesteps_bench_tick`` on 127.0.0.1, dropped and re-created),
migrates it, and bulk-inserts in one transaction one therapist and N families, each with one
due-work row due now:

- ``opening`` (default): what ``enrol_family`` writes, a ``start_flow`` row for ``onboarding``;
  the engine sends one message (``onboarding.welcome``) per family.
- ``session``: a consented family's weekly programme event, the ``calendar`` row that
  ``start_programme`` writes for the shipped calendar's event on ``--week-day`` (default week 3,
  day 1: that week's "learn" flow, no therapist call prompt); the engine sends that flow's
  messages (three at the time of writing) to every family.

Then it times ONE real ``scheduler.tick.run_tick(services)`` with the gateway pointed at the
local Twilio stand-in (``tests/twilio_standin.py``, in its own process on 127.0.0.1) and pacing off
(``MESSAGES_PER_SECOND=0``, quiet hours off). Inside that one call, ``claim_due``, ``do_batch``,
``reconcile``, ``drain`` and the gateway's ``send`` are wrapped with timers (no service code is
changed), which splits the tick into:

- due-work phase = from the start of the tick to the start of ``reconcile``: every claim, every
  engine run and every commit of the outbox rows (the 10 s bar);
- send phase = ``drain``: claiming the outbox and handing each message to the stand-in;
- whole tick = the call, end to end.

Checks afterwards: every family got exactly its message(s) at the stand-in, all different, and
nothing to anyone else; every outbox row is ``queued`` with the SID the stand-in gave it; every
due-work row is done with outcome ``done``. Prints a markdown table and writes it to
``bench/results/tick.md``; ``--profile`` also samples the tick with py-spy (wall clock), writes the
stacks to ``bench/results/tick-<db>-<event>.pyspy.txt`` and prints where the time went.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sender"))

from harness import (
    RESULTS,
    CpuMeter,
    StandIn,
    Timers,
    add_common_options,
    analyse,
    calendar_event,
    check_exactly_once,
    count_statements,
    fresh_database,
    own_pids,
    patched,
    py_spy,
    seed_families,
    settings_for,
    summarise_profile,
    write_report,
)

TARGET_S = 10.0
# Messages each family must get: the opening is one; the weekly event is whatever the shipped
# flow sends, the same for every family.
PER_FAMILY: dict[str, int | None] = {"opening": 1, "session": None}


def run_one(kind: str, event: str, args: argparse.Namespace) -> dict[str, object]:
    from sqlalchemy import func, select

    import scheduler.tick as tick
    from service.models import DueWork
    from service.wiring import build_services

    db = fresh_database(kind, args.pg_server, args.pg_name, args.keep, args.async_commit)
    try:
        with StandIn(args.standin) as standin:
            services = build_services(settings_for(db.url, standin.base_url, 0.0))
            try:
                t_seed = time.monotonic()
                now = services.now()
                phones = seed_families(
                    services, args.families, now, due_work=event, week_day=args.week_day
                )
                flow = (
                    "onboarding"
                    if event == "opening"
                    else calendar_event(services, *args.week_day).flow
                )
                analyse(services)
                seeded = time.monotonic() - t_seed
                timers = Timers()
                gateway = services.gateway
                gateway.send = timers.wrap("gateway.send", gateway.send)  # type: ignore[method-assign]
                profile = RESULTS / f"tick-{kind}-{event}.pyspy.txt"
                with (
                    py_spy(profile) if args.profile else contextlib.nullcontext(),
                    patched(tick, timers, "claim_due", "do_batch", "reconcile", "drain"),
                    count_statements(services.db.engine, timers),
                    CpuMeter(own_pids(standin, db)) as meter,
                ):
                    cpu0 = time.process_time()
                    start = time.perf_counter()
                    report_at = services.now()
                    report = tick.run_tick(services, report_at)
                    total = time.perf_counter() - start
                due_phase = timers.first_call["reconcile"] - start
                due_cpu = timers.first_cpu["reconcile"] - cpu0
                due_statements = timers.first_statements["reconcile"]
                due_transactions = timers.first_checkouts["reconcile"]
                send_phase = timers.seconds["drain"]
                ok, check = check_exactly_once(services, standin, phones, PER_FAMILY[event])
                seeded_kind = "start_flow" if event == "opening" else "calendar"
                with services.db.transaction() as session:
                    outcomes = dict(
                        session.execute(
                            select(DueWork.outcome, func.count())
                            .where(DueWork.kind == seeded_kind, DueWork.due_at <= report_at)
                            .group_by(DueWork.outcome)
                        ).all()
                    )
                    later = session.scalar(
                        select(func.count()).where(
                            DueWork.kind != seeded_kind, DueWork.due_at > report_at
                        )
                    )
                    # Each calendar event done stores the family's next one.
                    following = session.scalar(
                        select(func.count()).where(
                            DueWork.kind == "calendar",
                            DueWork.done_at.is_(None),
                            DueWork.due_at > report_at,
                        )
                    )
                if outcomes != {"done": args.families}:
                    ok, check = False, check + f"; FAILED: due work outcomes {outcomes}"
                elif event == "session" and following != args.families:
                    ok, check = False, check + f"; FAILED: {following} next events stored"
                elif ok:
                    check += f"; {args.families:,} due-work rows done"
                    if later:
                        check += f" ({later:,} reminders scheduled for later)"
                    if following:
                        check += f", {following:,} next calendar events stored"
                sent = report.sent.accepted
                result = {
                    "db": db.kind,
                    "event": event,
                    "flow": flow,
                    "families": args.families,
                    "due_phase": due_phase,
                    "due_cpu": due_cpu,
                    "due_statements": due_statements,
                    "due_transactions": due_transactions,
                    "send_statements": timers.statements - due_statements,
                    "send_transactions": timers.checkouts - due_transactions,
                    "claim": timers.seconds["claim_due"],
                    "claims": timers.calls["claim_due"],
                    "do_work": timers.seconds["do_batch"],
                    "send_phase": send_phase,
                    "gateway": timers.seconds["gateway.send"],
                    "sent": sent,
                    "total": total,
                    "seed": seeded,
                    "own": meter.own_cores,
                    "other": meter.other_cores,
                    "ok": ok,
                    "check": check,
                    "line": report.line(),
                }
                print(
                    "  due-work phase: this process was on the CPU "
                    f"{100 * due_cpu / due_phase:.0f} % of the wall time",
                    flush=True,
                )
                print(
                    f"  per due item: {due_statements / args.families:.2f} statements in "
                    f"{due_transactions / args.families:.2f} transactions, "
                    f"{1000 * due_cpu / args.families:.2f} ms CPU of this process; per message "
                    f"sent: {(timers.statements - due_statements) / max(sent, 1):.2f} statements "
                    f"in {(timers.checkouts - due_transactions) / max(sent, 1):.2f} transactions",
                    flush=True,
                )
                print(
                    f"  {db.kind} {event}: due-work {due_phase:.2f} s, send {send_phase:.2f} s "
                    f"({sent / send_phase if send_phase else 0:.0f}/s), tick {total:.2f} s; "
                    f"{report.line()}; {check}",
                    flush=True,
                )
                if args.profile:
                    print(summarise_profile(profile))
                    print(f"  py-spy stacks written to {profile}")
                return result
            finally:
                services.db.dispose()
    finally:
        db.cleanup()


def table(results: list[dict[str, object]]) -> str:
    lines = [
        "| database | due event | families | due-work phase (claim + engine + commit) "
        "| due items/s | per due item | send phase (pacing off) | sent/s | whole tick "
        "| bar: < 10 s (PostgreSQL) | other load | checks |",
        "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for r in results:
        due, send, total = float(r["due_phase"]), float(r["send_phase"]), float(r["total"])  # type: ignore[arg-type]
        families, sent = int(r["families"]), int(r["sent"])  # type: ignore[call-overload]
        scaled = due * 10_000 / families
        if str(r["db"]).startswith("PostgreSQL"):
            verdict = f"due-work {'✅' if scaled < TARGET_S else '❌'}" + (
                f" {due:.1f} s" if families == 10_000 else f" ≈{scaled:.1f} s per 10,000"
            )
            whole = total * 10_000 / families
            verdict += f"; whole tick {'✅' if whole < TARGET_S else '❌'}" + (
                f" {total:.1f} s" if families == 10_000 else f" ≈{whole:.1f} s per 10,000"
            )
        else:
            verdict = "(no bar on SQLite)"
        per = sent // families if families else 0
        event = "opening: " if r["event"] == "opening" else "weekly event: "
        event += f"{r['flow']} ({per} msg{'s' if per != 1 else ''} each)"
        lines.append(
            f"| {r['db']} | {event} | {families:,} | {due:.2f} s "
            f"(claims {float(r['claim']):.2f} s, batches {float(r['do_work']):.2f} s) "  # type: ignore[arg-type]
            f"| {families / due:,.0f} "
            f"| {int(r['due_statements']) / families:.2f} SQL statements in "  # type: ignore[call-overload]
            f"{int(r['due_transactions']) / families:.2f} transactions, "  # type: ignore[call-overload]
            f"{1000 * float(r['due_cpu']) / families:.2f} ms CPU here "  # type: ignore[arg-type]
            f"| {send:.2f} s | {sent / send if send else 0:,.0f} "
            f"| **{total:.2f} s** | {verdict} | {float(r['other']):.2f} cores "  # type: ignore[arg-type]
            f"| {r['check']} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", type=int, default=10_000)
    parser.add_argument("--event", choices=["opening", "session", "both"], default="opening")
    parser.add_argument(
        "--week-day",
        default="3:1",
        help="for --event session: the calendar event WEEK:DAY (default 3:1, no call prompt)",
    )
    add_common_options(
        parser,
        db="postgres",
        pg_name="bravesteps_bench_tick",
        profile_help="sample the tick with py-spy and summarise",
    )
    args = parser.parse_args()
    week, _, day = args.week_day.partition(":")
    args.week_day = (int(week), int(day or 1))

    started = time.monotonic()
    RESULTS.mkdir(parents=True, exist_ok=True)
    kinds = ["postgres", "sqlite"] if args.db == "both" else [args.db]
    events = ["opening", "session"] if args.event == "both" else [args.event]
    results = []
    for kind in kinds:
        for event in events:
            print(f"{kind}, {event}: {args.families:,} families ...", flush=True)
            results.append(run_one(kind, event, args))
    write_report("Tick benchmark", table(results), started, args.standin, "tick")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
