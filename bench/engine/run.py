#!/usr/bin/env python
"""Engine step benchmark: the median time of one ``flows.runtime.run`` for a typical answer.

One command (from the repository root, venv active)::

    python bench/engine/run.py [--runs 10000]

It loads the shipped flows and catalogue, puts a consented conversation at week 1's check-in
question ``week_1_check_in.ask_goal_1`` (a goal rating, 0 to 10) and times the engine answering
"7" there: reading the number, measuring it, the branch on the next goal and the next question.
Each run starts from the same state (the engine is pure), one ``perf_counter_ns`` pair
per run, after a warm-up. Prints one line; exits 1 if the median misses the 0.2 ms bar.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from flows.effects import Context, ConversationState, MessageIn, Send, StartFlow  # noqa: E402
from flows.loader import load_flow_dir  # noqa: E402
from flows.runtime import run  # noqa: E402
from messages.catalog import load_catalogue  # noqa: E402

TARGET_MS = 0.2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=1_000)
    args = parser.parse_args()

    catalogue = load_catalogue(ROOT / "messages" / "catalog")
    flowset = load_flow_dir(ROOT / "flows" / "programme", catalogue.keys)
    family = {"child_name": "Sam", "child_age": 8, "therapist_name": "Jo", "family_ref": "F-B"}
    ctx = Context(datetime(2026, 1, 5, 18, tzinfo=UTC), family, consented=True)
    start = ConversationState(variables={"goal_1": "sleep in her own bed", "week": 1})
    state = run(flowset, start, StartFlow("week_1_check_in"), ctx).state
    assert (state.flow, state.step, state.waiting) == ("week_1_check_in", "ask_goal_1", True)
    answer = MessageIn("7")
    check = run(flowset, state, answer, ctx)
    sent = [e.key for e in check.effects if isinstance(e, Send)]
    assert len(sent) == 1 and check.state.step != "ask_goal_1", sent

    for _ in range(args.warmup):
        run(flowset, state, answer, ctx)
    clock = time.perf_counter_ns
    times = []
    for _ in range(args.runs):
        start = clock()
        run(flowset, state, answer, ctx)
        times.append(clock() - start)
    times.sort()
    median_ms = statistics.median(times) / 1e6
    p99_ms = times[int(len(times) * 0.99) - 1] / 1e6
    verdict = "ok" if median_ms < TARGET_MS else "TOO SLOW"
    print(
        f"engine step (week_1_check_in.ask_goal_1 <- '7'): median {median_ms:.4f} ms, "
        f"p99 {p99_ms:.4f} ms over {args.runs} runs; bar {TARGET_MS} ms: {verdict} "
        f"({TARGET_MS / median_ms:.0f}x under)"
    )
    return 0 if median_ms < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
