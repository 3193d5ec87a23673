"""The shipped programme through the public surface: signed webhooks in, the tick on an injected
clock, and everything counted at the Twilio stand-in. A parent who answers gets the whole
programme in order, at their chosen time, with their child's name, and their goal ratings are
stored weekly."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from conftest import Clock, enrol, inbound_form, post_signed
from sqlalchemy import select
from test_schedule import run_until, sent

from scheduler.tick import run_tick
from service.models import Measure
from service.wiring import Services

# What this parent answers to whatever the service last asked (by catalogue key prefix).
ANSWERS = {
    "onboarding.welcome": "yes",
    "onboarding.ask_day": "tuesday",
    "onboarding.ask_time": "6pm",
    "onboarding.ask_goal": "go to a friend's house for tea",
    "onboarding.ask_goal_rating": "3",
    "onboarding.ask_more": "no",
    "onboarding.check_name": "yes",
}


def reply_for(key: str, week: int) -> str | None:
    if key in ANSWERS:
        return ANSWERS[key]
    if key.startswith("check_in.goal") or key.startswith("follow_up.goal"):
        return str(min(3 + week, 10))  # getting better, a little each week
    if "worry" in key and "before" in key:
        return "6"
    if "worry" in key and "after" in key:
        return "3"
    if "worry" in key:
        return str(max(7 - week, 0))
    if "helpful" in key or "feedback" in key:
        return "5"
    if "ladder" in key and "confirm" in key:
        return "yes"
    if "ladder" in key and "step" in key:
        return "2"
    if "steps" in key or "ladder" in key:
        return "1. look at a picture of a dog\n2. watch a dog from far away\n3. walk past a dog"
    if key.endswith(".ask") or ".when" in key or "moment" in key:
        return "2"
    if "words" in key or "said" in key or "plan" in key:
        return "she said everyone would laugh at her"
    return None


def test_nine_weeks_of_the_programme(
    services: Services, client: Any, standin: Any, clock: Clock
) -> None:
    clock.now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday
    family = enrol(services, child_name="Maisie")
    run_tick(services)
    answered: list[str] = []

    def answer(now: datetime) -> None:
        """Reply, as the parent, to every question the service asked since last time."""
        for _ in range(12):
            last = sent(services)[-1]
            key = last.catalogue_key or ""
            week = next((int(p) for p in key.split("_") if p.isdigit()), 1)
            text = reply_for(key, week)
            if text is None or (answered and answered[-1] == f"{last.id}"):
                return
            answered.append(f"{last.id}")
            clock.now = max(clock.now, now) + timedelta(minutes=10)
            assert (
                post_signed(
                    client, "/twilio/messages", inbound_form(family.phone, text)
                ).status_code
                == 200
            )

    answer(clock.now)
    run_until(services, clock, datetime(2026, 5, 6, 12, 0, tzinfo=UTC), answer)

    messages = sent(services)
    keys = [m.catalogue_key or "" for m in messages]
    london = ZoneInfo("Europe/London")
    # Every week, at least the three programme days, at 18:00 local on Tuesday, Thursday, Saturday.
    for week in range(1, 9):
        started = [m for m in messages if (m.catalogue_key or "").startswith(f"week_{week}.")]
        assert len(started) >= 3, (week, keys)
        first = started[0].sent_at.astimezone(london)
        assert first.strftime("%A %H:%M") == "Tuesday 18:00", (week, first)
    programme_days = {
        m.sent_at.astimezone(london).strftime("%A %H:%M")
        for m in messages
        if not m.reply and (m.catalogue_key or "").startswith(("week_", "learn.", "check_in.intro"))
    }
    assert programme_days <= {"Tuesday 18:00", "Thursday 18:00", "Saturday 18:00"}, programme_days
    # In order: week 1's words before week 2's, and so on.
    first_seen = [
        next(i for i, k in enumerate(keys) if k.startswith(f"week_{w}.")) for w in range(1, 9)
    ]
    assert first_seen == sorted(first_seen)
    assert sum("Maisie" in (m.body or "") for m in messages) >= 8
    # None twice: each programme message reached the stand-in exactly once.
    sids = Counter(m.twilio_sid for m in messages)
    assert max(sids.values()) == 1 and len(standin.sent_to(family.phone)) == len(messages)
    with services.db.transaction() as session:
        goal_weeks = sorted(
            session.scalars(
                select(Measure.week).where(Measure.name == "goal_1", Measure.week.is_not(None))
            )
        )
    assert goal_weeks == list(range(1, 9)), goal_weeks
