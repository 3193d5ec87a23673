"""Risk screening on the frozen test split: recall per category and tier, false alarms, speed.

    python bench/screening/run.py [--split tests/data/screening/test.yaml]

Prints a markdown table (and writes bench/results/screening.md) with 95% Wilson intervals. Only
figures are printed, never the messages missed: the test split is never tuned on.

- reaches a person: screened as an alert (any category) or as the review tier;
- alert at its urgency: an alert for its own category or a more urgent one;
- urgent alert (everyday messages): an alert for immediate_danger, child_protection or self_harm.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from flows.screening import ALERT, CATEGORIES, REVIEW, Screening, load_patterns, screen  # noqa: E402
from service.screener_build import read_split  # noqa: E402

URGENCY = {name: i for i, name in enumerate((*CATEGORIES, "none"))}
URGENT = {"immediate_danger", "child_protection", "self_harm"}


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of hits/n."""
    if n == 0:
        return (0.0, 0.0)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def cell(hits: int, n: int) -> str:
    low, high = wilson(hits, n)
    return f"{hits}/{n} = **{hits / n:.3f}** ({low:.3f}–{high:.3f})" if n else "–"


def reaches(s: Screening) -> bool:
    return s.tier in (ALERT, REVIEW)


def at_urgency(s: Screening, label: str) -> bool:
    return s.tier == ALERT and URGENCY[s.category] <= URGENCY[label]


def table(split: dict[str, list[str]], patterns: object) -> list[str]:
    results = {label: [screen(str(m), patterns) for m in split.get(label, [])] for label in split}  # type: ignore[arg-type]
    lines = [
        "| category | messages | reaches a person (alert or review) | alert at its urgency |",
        "| --- | ---: | ---: | ---: |",
    ]
    total = reached = alerted = 0
    for label in CATEGORIES:
        got = results.get(label, [])
        r = sum(map(reaches, got))
        a = sum(at_urgency(s, label) for s in got)
        total, reached, alerted = total + len(got), reached + r, alerted + a
        lines.append(f"| {label} | {len(got)} | {cell(r, len(got))} | {cell(a, len(got))} |")
    lines.append(f"| **all risk** | {total} | {cell(reached, total)} | {cell(alerted, total)} |")
    person = results.get("person", [])
    asked = sum(s.person or reaches(s) for s in person)
    lines += [
        "",
        f"Asking for a person (`person`), reaching the therapist: {cell(asked, len(person))}",
    ]
    none = results.get("none", [])
    lines += [
        "",
        "| everyday (`none`) | messages | rate |",
        "| --- | ---: | ---: |",
        f"| alert or review | {len(none)} | {cell(sum(map(reaches, none)), len(none))} |",
        f"| alert | {len(none)} | {cell(sum(s.tier == ALERT for s in none), len(none))} |",
        f"| urgent alert | {len(none)} | "
        f"{cell(sum(s.tier == ALERT and s.category in URGENT for s in none), len(none))} |",
        f"| review | {len(none)} | {cell(sum(s.tier == REVIEW for s in none), len(none))} |",
        f"| asks for a person | {len(none)} | {cell(sum(s.person for s in none), len(none))} |",
    ]
    return lines


def timing(messages: list[str], patterns: object, rounds: int = 5) -> str:
    times = []
    for _ in range(rounds):
        for message in messages:
            start = time.perf_counter()
            screen(message, patterns)  # type: ignore[arg-type]
            times.append(time.perf_counter() - start)
    times.sort()
    median, p99 = statistics.median(times) * 1000, times[int(len(times) * 0.99)] * 1000
    return (
        f"Screening time per message (patterns and model): median {median:.3f} ms, "
        f"p99 {p99:.3f} ms, max {times[-1] * 1000:.3f} ms, "
        f"over {len(messages)} messages x {rounds}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default=str(ROOT / "tests" / "data" / "screening" / "test.yaml"))
    args = parser.parse_args()
    patterns = load_patterns(ROOT / "flows" / "risk")
    labelled = read_split(Path(args.split))  # flat, or grouped by writer as train.yaml is
    split: dict[str, list[str]] = {}
    for label, text in zip(labelled.labels, labelled.texts, strict=True):
        split.setdefault(label, []).append(text)
    lines = [f"## Risk screening on `{Path(args.split).name}`", ""]
    lines += table(split, patterns)
    messages = [str(m) for msgs in split.values() for m in msgs]
    lines += ["", timing(messages, patterns)]
    text = "\n".join(lines) + "\n"
    print(text)
    out = ROOT / "bench" / "results" / "screening.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
