"""Risk screening over the labelled corpus: recall per category, false alarms, speed.

    python bench/screening/run.py

Prints a markdown table for development and held-out separately and writes
bench/results/screening.md. A risky message is recalled when screened as its own category or a
more urgent one (see the header of tests/data/risk_corpus.yaml).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from flows.screening import CATEGORIES, load_patterns, screen  # noqa: E402

URGENCY = {name: i for i, name in enumerate((*CATEGORIES, "none"))}


def section_table(name: str, section: dict[str, Any], patterns: Any) -> list[str]:
    lines = [
        f"### {name}",
        "",
        "| category | messages | recalled | recall |",
        "| --- | ---: | ---: | ---: |",
    ]
    risky = recalled = 0
    for label in CATEGORIES:
        messages = [str(m) for m in section.get(label, [])]
        hits = sum(URGENCY[screen(m, patterns).category] <= URGENCY[label] for m in messages)
        risky += len(messages)
        recalled += hits
        lines.append(f"| {label} | {len(messages)} | {hits} | {hits / len(messages):.3f} |")
    lines.append(f"| **all risk** | {risky} | {recalled} | {recalled / risky:.3f} |")
    none = [str(m) for m in section.get("none", [])]
    alarms = sum(screen(m, patterns).category != "none" for m in none)
    lines += ["", f"False alarms on `none`: {alarms}/{len(none)} = {alarms / len(none):.3f}", ""]
    return lines


def main() -> None:
    patterns = load_patterns(ROOT / "flows" / "risk")
    corpus = yaml.safe_load((ROOT / "tests" / "data" / "risk_corpus.yaml").read_text("utf-8"))
    lines = ["## Risk screening", ""]
    lines += section_table("Development", corpus["development"], patterns)
    lines += section_table("Held-out", corpus["heldout"], patterns)
    messages = [str(m) for section in corpus.values() for msgs in section.values() for m in msgs]
    timings = []
    for _ in range(5):
        for message in messages:
            start = time.perf_counter()
            screen(message, patterns)
            timings.append(time.perf_counter() - start)
    median_ms = statistics.median(timings) * 1000
    worst_ms = max(timings) * 1000
    lines.append(
        f"Median {median_ms:.4f} ms per message (max {worst_ms:.3f} ms) over "
        f"{len(messages)} messages x 5."
    )
    text = "\n".join(lines) + "\n"
    print(text)
    out = ROOT / "bench" / "results" / "screening.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
