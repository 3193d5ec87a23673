#!/usr/bin/env python
"""Does a web worker's memory stay flat over 100,000 inbound messages?

    python bench/webhook/memory.py                      # SQLite, 100,000 messages
    python bench/webhook/memory.py --db postgres        # PostgreSQL
    python bench/webhook/memory.py --messages 20000     # a shorter look

One process plays one web worker: it builds the app exactly as gunicorn does
(``service:create_app()`` with the benchmark's environment: Twilio signatures checked, dispatch
off), and sends it ``--messages`` distinct signed inbound messages through Flask's test client,
one after the other, from ``--families`` enrolled families (set up as ``run.py`` does: every family
at the consent question, then the onboarding answers and words the flow does not expect, round
after round). Every ``--every`` messages it records the process's resident memory (``VmRSS``),
the Python heap in use (``sys.getallocatedblocks``) and the number of objects the garbage
collector tracks, after a collection.

Memory is "flat" when, after the first sample (caches warm, pools filled), resident memory grows
by less than ``--flat-mb`` (default 5 MB) over the rest of the run and the object count by less
than 1%: a leak of even 100 bytes per message would add 10 MB over 100,000 messages. Prints a
markdown table and writes it to ``bench/results/webhook-memory.md``. Exit status 0 when flat, 2
when not, 1 when a request failed.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as bench  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--families", type=int, default=1000)
    parser.add_argument("--every", type=int, default=10_000, help="sample every N messages")
    parser.add_argument("--flat-mb", type=float, default=5.0)
    parser.add_argument("--pg", default="postgres@127.0.0.1:5432")
    parser.add_argument("--out", type=Path, default=bench.RESULTS / "webhook-memory.md")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="bravesteps-webhook-memory-"))
    dbs = bench.databases(args.db, workdir, args.pg, "bravesteps_bench_webhook_memory")
    try:
        requests_file = bench.prepare_in_process(dbs, args.families, args.messages, workdir)
        import logging

        from service import create_app

        app = create_app()
        logging.getLogger().setLevel(logging.WARNING)  # the service's INFO lines, not memory
        client = app.test_client()
        base = bench.PUBLIC_URL
        samples: list[tuple[int, float, int, int, float]] = []
        started = time.perf_counter()
        with requests_file.open() as lines:
            for count, line in enumerate(lines, 1):
                if count > args.messages:
                    break
                signature, body = line.rstrip("\n").split("\t")
                response = client.post(
                    bench.PATH,
                    data=body,
                    content_type="application/x-www-form-urlencoded",
                    headers={"X-Twilio-Signature": signature},
                    base_url=base,
                )
                if response.status_code != 200:
                    bench.log(f"message {count}: HTTP {response.status_code}")
                    return 1
                if count % args.every == 0:
                    gc.collect()
                    sample = (
                        count,
                        rss_mb(),
                        sys.getallocatedblocks(),
                        len(gc.get_objects()),
                        time.perf_counter() - started,
                    )
                    samples.append(sample)
                    bench.log(
                        f"{count:,} messages: RSS {sample[1]:.1f} MB, "
                        f"{sample[3]:,} tracked objects, {count / sample[4]:.0f} messages/s"
                    )
        app.extensions["bravesteps"].db.dispose()
    finally:
        dbs.cleanup()

    first, last = samples[0], samples[-1]
    grew_mb = last[1] - first[1]
    grew_objects = (last[3] - first[3]) / first[3]
    flat = grew_mb < args.flat_mb and grew_objects < 0.01
    lines = [
        f"Memory of one web worker over {last[0]:,} inbound messages ({dbs.kind}, "
        f"{args.families:,} families, Flask test client in one process)",
        "",
        "| messages | RSS | Python allocated blocks | tracked objects | messages/s so far |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for count, rss, heap, objects, elapsed in samples:
        lines.append(
            f"| {count:,} | {rss:.1f} MB | {heap:,} | {objects:,} | {count / elapsed:.0f} |"
        )
    lines += [
        "",
        f"After the first {first[0]:,} messages: RSS {grew_mb:+.1f} MB, tracked objects "
        f"{grew_objects:+.2%} → {'flat ✅' if flat else 'NOT flat ❌'} "
        f"(bar: < {args.flat_mb:g} MB and < 1%).",
    ]
    report = "\n".join(lines)
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report + "\n")
    return 0 if flat else 2


if __name__ == "__main__":
    raise SystemExit(main())
