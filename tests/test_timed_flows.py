"""Time in flows: waits until a local time or date, scheduling another flow, and expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flows.effects import (
    Context,
    ConversationState,
    FlowEnded,
    MessageIn,
    ScheduleFlow,
    ScheduleWake,
    Send,
    StartFlow,
    WakeUp,
)
from flows.loader import FlowSet, FlowSetError, load_flow_dir
from flows.runtime import run

KEYS = {"t.hi", "t.ask", "t.later"}
FLOWS = {
    "timed.yaml": """
flow: timed
expire_after: 3 days
steps:
  - id: hi
    send: t.hi
    next: evening
  - id: evening
    wait: until 18:00
    next: plan
  - id: plan
    schedule:
      flow: later
      after: 30 days
    next: evening_call
  - id: evening_call
    schedule:
      flow: later
      at: "19:30"
    next: dated
  - id: dated
    schedule:
      flow: later
      on: "2027-01-04 09:15"
    next: ask
  - id: ask
    ask: t.ask
    expect: yes_no
    next: done
  - id: done
    end: true
""",
    "later.yaml": """
flow: later
steps:
  - id: later
    send: t.later
    next: done
  - id: done
    end: true
""",
}


@pytest.fixture
def flowset(tmp_path: Path) -> FlowSet:
    for name, text in FLOWS.items():
        (tmp_path / name).write_text(text)
    return load_flow_dir(tmp_path, KEYS)


def ctx(now: datetime, zone: str) -> Context:
    return Context(now, {"child_name": "Sam"}, consented=True, timezone=zone)


def test_wait_until_a_local_time_then_schedules(flowset: FlowSet) -> None:
    # 15:00 UTC in Auckland (UTC+13 in December) is 04:00 the next day local.
    now = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    outcome = run(flowset, ConversationState(), StartFlow("timed"), ctx(now, "Pacific/Auckland"))
    wake = next(e for e in outcome.effects if isinstance(e, ScheduleWake) and e.reason == "resume")
    assert wake.at == datetime(2026, 12, 2, 5, 0, tzinfo=UTC)  # 18:00 on 2 Dec in Auckland
    expire = next(
        e for e in outcome.effects if isinstance(e, ScheduleWake) and e.reason == "expire"
    )
    assert expire.at == now + timedelta(days=3)

    later = run(
        flowset,
        outcome.state,
        WakeUp("resume", "timed", "evening"),
        ctx(wake.at, "Pacific/Auckland"),
    )
    scheduled = [e for e in later.effects if isinstance(e, ScheduleFlow)]
    assert [s.flow for s in scheduled] == ["later", "later", "later"]
    assert scheduled[0].at == wake.at + timedelta(days=30)
    assert scheduled[1].at == datetime(2026, 12, 2, 6, 30, tzinfo=UTC)  # 19:30 local, same day
    assert scheduled[2].at == datetime(2027, 1, 3, 20, 15, tzinfo=UTC)  # 09:15 on 4 Jan local
    assert later.state.step == "ask" and later.state.waiting


def test_a_waiting_conversation_expires(flowset: FlowSet) -> None:
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    started = run(flowset, ConversationState(), StartFlow("timed"), ctx(now, "Europe/London"))
    expired = run(
        flowset,
        started.state,
        WakeUp("expire", "timed", "evening"),
        ctx(now + timedelta(days=3), "Europe/London"),
    )
    assert expired.state.step is None and not expired.state.waiting
    assert any(isinstance(e, FlowEnded) for e in expired.effects)
    # A later message is answered kindly, not as an answer to the old question.
    after = run(flowset, expired.state, MessageIn("yes"), ctx(now + timedelta(days=4), "UTC"))
    assert [e.key for e in after.effects if isinstance(e, Send)] == ["system.not_waiting"]


def test_an_expiry_after_an_answer_is_stale(flowset: FlowSet) -> None:
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    started = run(flowset, ConversationState(), StartFlow("timed"), ctx(now, "Europe/London"))
    moved = run(
        flowset, started.state, WakeUp("resume", "timed", "evening"), ctx(now, "Europe/London")
    )
    stale = run(
        flowset, moved.state, WakeUp("expire", "timed", "evening"), ctx(now, "Europe/London")
    )
    assert stale.state == moved.state


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("    wait: until 25:00\n", "is not a time"),
        ("    wait: until tomorrow\n", "is not a time"),
        ("    schedule: {flow: later}\n", "exactly one of"),
        ("    schedule: {flow: nowhere, after: 2 days}\n", "no flow 'nowhere' to schedule"),
    ],
)
def test_bad_times_are_refused_with_a_line(tmp_path: Path, step: str, message: str) -> None:
    (tmp_path / "later.yaml").write_text(FLOWS["later.yaml"])
    (tmp_path / "bad.yaml").write_text(
        f"flow: bad\nsteps:\n  - id: first\n{step}    next: done\n  - id: done\n    end: true\n"
    )
    with pytest.raises(FlowSetError) as info:
        load_flow_dir(tmp_path, KEYS)
    [error] = info.value.errors
    assert error.file.endswith("bad.yaml") and error.line in (3, 4)
    assert message in error.message
