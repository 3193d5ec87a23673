"""Timed work with an injected clock: eight weeks at the family's own local time, quiet hours,
reminders and timeouts, STOP and START, downtime. The clock jumps from one due moment to the next,
running the tick at each, so every message is sent at exactly the moment the service chose.
"""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from conftest import Clock, enrol, inbound_form
from sqlalchemy import func, select

from flows.calendar import Calendar, CalendarEvent
from scheduler.tick import run_tick
from service.config import Settings
from service.conversations import _sync_family
from service.inbound import handle_inbound
from service.models import DueWork, Family, Message
from service.outbox import drain
from service.programme import next_event_row, reschedule, store_next_events
from service.wiring import Services, build_services

DATA = Path(__file__).parent / "data" / "programme_8w"
PROGRAMME_KEYS = ("test.learn", "test.do", "test.check_in")


@pytest.fixture
def programme(settings: Settings, clock: Clock) -> Services:
    """Services running the eight-week test programme."""
    return build_services(
        replace(settings, flows_dir=DATA / "flows", messages_dir=DATA / "catalog"), clock=clock
    )


def next_due(services: Services) -> datetime | None:
    """The earliest moment anything is due: timed work or a message waiting to go."""
    with services.db.transaction() as session:
        work = session.scalar(select(func.min(DueWork.due_at)).where(DueWork.done_at.is_(None)))
        message = session.scalar(
            select(func.min(Message.due_at)).where(Message.status == "pending")
        )
    moments = [m for m in (work, message) if m is not None]
    if not moments:
        return None
    # SQLite's min() returns text: read it back as UTC.
    return min(
        m if isinstance(m, datetime) else datetime.fromisoformat(m).replace(tzinfo=UTC)
        for m in moments
    )


def run_until(services: Services, clock: Clock, end: datetime, on_message: Any = None) -> None:
    """Jump the clock from due moment to due moment until ``end``, ticking at each."""
    for _ in range(2000):
        due = next_due(services)
        if due is None or due > end:
            break
        clock.now = max(clock.now, due)
        seen = sent_count(services)
        run_tick(services)
        if on_message is not None and sent_count(services) > seen:
            on_message(clock.now)
    clock.now = max(clock.now, end)


def sent_count(services: Services) -> int:
    with services.db.transaction() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(Message).where(Message.sent_at.is_not(None))
            )
            or 0
        )


def sent(services: Services) -> list[Message]:
    with services.db.transaction() as session:
        return list(
            session.scalars(
                select(Message)
                .where(
                    Message.direction == "out",
                    Message.sent_at.is_not(None),
                    Message.family_id.is_not(None),
                )
                .order_by(Message.sent_at, Message.id)
            )
        )


def consent(services: Services, clock: Clock, phone: str, **extra: Any) -> None:
    enrol(services, phone=phone, **extra)
    run_tick(services)
    handle_inbound(services, inbound_form(phone, "yes"))
    drain(services)


@pytest.mark.parametrize(
    ("zone", "start", "day", "clock_time"),
    [
        # Across London's October change (25 Oct 2026): 18:00 local on both sides.
        ("Europe/London", datetime(2026, 10, 5, 12, 0, tzinfo=UTC), "tuesday", "18:00"),
        # Far from UTC, across Auckland's April change (5 Apr 2027).
        ("Pacific/Auckland", datetime(2027, 2, 22, 1, 0, tzinfo=UTC), "wednesday", "19:30"),
    ],
)
def test_eight_weeks_at_the_family_time(
    programme: Services,
    clock: Clock,
    standin: Any,
    zone: str,
    start: datetime,
    day: str,
    clock_time: str,
) -> None:
    clock.now = start
    phone = "+447700900123"
    consent(programme, clock, phone, timezone=zone, session_day=day, session_time=clock_time)

    def answer_check_ins(now: datetime) -> None:
        last = sent(programme)[-1]
        if last.catalogue_key == "test.check_in":
            clock.now = now + timedelta(hours=1)
            handle_inbound(programme, inbound_form(phone, "yes"))
            drain(programme)

    run_until(programme, clock, start + timedelta(weeks=10), answer_check_ins)
    local = ZoneInfo(zone)
    weekly = [m for m in sent(programme) if m.catalogue_key in PROGRAMME_KEYS]
    assert len(weekly) == 24
    assert Counter(m.catalogue_key for m in weekly) == {k: 8 for k in PROGRAMME_KEYS}
    hour, minute = (int(x) for x in clock_time.split(":"))
    weekdays = {"tuesday": 1, "wednesday": 2}[day]
    for message in weekly:
        at = message.sent_at.astimezone(local)
        assert (at.hour, at.minute) == (hour, minute), message.catalogue_key
    learn_days = {
        m.sent_at.astimezone(local).weekday() for m in weekly if m.catalogue_key == "test.learn"
    }
    assert learn_days == {weekdays}
    # Across the change the UTC hour moved, the local hour did not.
    assert len({m.sent_at.astimezone(UTC).hour for m in weekly}) == 2
    # Each once: the stand-in got exactly what the database says was sent.
    assert len(standin.sent_to(phone)) == len(sent(programme))
    quiet = programme.settings.quiet_hours
    for message in sent(programme):
        if not message.reply:
            assert not quiet.contains(message.sent_at.astimezone(local).time())


def test_a_new_session_day_moves_only_what_is_still_to_come(
    programme: Services, clock: Clock, standin: Any
) -> None:
    clock.now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday
    phone = "+447700900123"
    consent(programme, clock, phone, session_day="tuesday", session_time="18:00")
    run_until(programme, clock, clock.now + timedelta(days=9))  # week 1 is done
    london = ZoneInfo("Europe/London")

    def calendar() -> dict[str, tuple[datetime, datetime | None]]:
        with programme.db.transaction() as session:
            rows = session.scalars(select(DueWork).where(DueWork.kind == "calendar"))
            return {row.dedupe_key or "": (row.due_at, row.done_at) for row in rows}

    before = calendar()
    done = {key for key, (_due, done_at) in before.items() if done_at is not None}
    assert done and len(done) < len(before)
    with programme.db.transaction() as session:
        family = session.scalar(select(Family).where(Family.phone == phone))
        assert family is not None
        family.session_day, family.session_time = 3, "07:30"  # Thursdays at 07:30
        reschedule(session, programme, family, clock.now)
    after = calendar()
    assert after.keys() == before.keys()
    for key, (due, done_at) in after.items():
        if key in done:
            assert (due, done_at) == before[key]  # what was sent stays as it was
            continue
        local = due.astimezone(london)
        assert (local.hour, local.minute) == (7, 30), key
        assert due > clock.now, key
        # Each event keeps its place in the programme: its weekday moved by the same two days.
        assert (local.date() - before[key][0].astimezone(london).date()).days == 2, key


@pytest.mark.parametrize(
    ("day", "time", "variables", "moved"),
    [
        (1, None, {"session_time": "18:00"}, False),  # the time the calendar keeps already
        (1, "18:00", {"session_time": "18:00"}, False),
        (1, None, {"session_time": "19:30"}, True),
        (1, "19:30", {"session_time": "18:00"}, True),
        (None, None, {"session_day": "tuesday"}, True),
        (1, None, {"session_day": "tuesday"}, False),
        (1, None, {"session_day": "friday", "session_time": "18:00"}, True),
    ],
)
def test_only_a_new_day_or_time_moves_the_calendar(
    day: int | None, time: str | None, variables: dict[str, object], moved: bool
) -> None:
    family = Family(session_day=day, session_time=time)
    assert _sync_family(family, variables) is moved
    if "session_time" in variables:
        assert family.session_time == variables["session_time"]  # stored all the same


def test_reminder_then_timeout_path(programme: Services, clock: Clock, standin: Any) -> None:
    clock.now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    consent(programme, clock, "+447700900123", session_day="monday", session_time="18:00")
    run_until(programme, clock, clock.now + timedelta(days=14))
    keys = [m.catalogue_key for m in sent(programme)]
    first_week = keys[: keys.index("test.missed") + 1]
    assert first_week[-4:] == ["test.do", "test.check_in", "test.check_in_reminder", "test.missed"]
    by_key = {m.catalogue_key: m.sent_at for m in sent(programme)[: len(first_week)]}
    assert by_key["test.check_in_reminder"] - by_key["test.check_in"] == timedelta(days=1)
    assert by_key["test.missed"] - by_key["test.check_in"] == timedelta(days=2)


def test_stop_in_week_3_cancels_everything_after(
    programme: Services, clock: Clock, standin: Any
) -> None:
    clock.now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    phone = "+447700900123"
    consent(programme, clock, phone, session_day="monday", session_time="18:00")
    run_until(programme, clock, datetime(2026, 3, 24, 12, 0, tzinfo=UTC))  # week 3, Tuesday
    before = len(sent(programme))
    handle_inbound(programme, inbound_form(phone, "STOP"))
    drain(programme)
    run_until(programme, clock, clock.now + timedelta(weeks=10))
    after = sent(programme)[before:]
    assert [m.catalogue_key for m in after] == ["system.stopped"]
    with programme.db.transaction() as session:
        pending = session.scalar(
            select(func.count()).select_from(DueWork).where(DueWork.done_at.is_(None))
        )
    assert pending == 0

    # START brings back what was never sent, from the next session on, at the same local time.
    handle_inbound(programme, inbound_form(phone, "START"))
    drain(programme)
    run_until(programme, clock, clock.now + timedelta(weeks=8))
    weekly = [m for m in sent(programme) if m.catalogue_key in PROGRAMME_KEYS]
    assert Counter(m.catalogue_key for m in weekly) == {k: 8 for k in PROGRAMME_KEYS}
    london = ZoneInfo("Europe/London")
    assert {m.sent_at.astimezone(london).strftime("%H:%M") for m in weekly} == {"18:00"}


def test_three_days_of_downtime(programme: Services, clock: Clock, standin: Any) -> None:
    clock.now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    phone = "+447700900123"
    consent(programme, clock, phone, session_day="monday", session_time="18:00")
    run_until(programme, clock, datetime(2026, 3, 8, 12, 0, tzinfo=UTC))  # week 1 is Mon 9 Mar
    before = len(sent(programme))
    # The service is down from Monday 12:00 until Thursday 03:00: nothing runs.
    clock.now = datetime(2026, 3, 12, 3, 0, tzinfo=UTC)
    run_tick(programme)
    assert len(sent(programme)) == before  # 03:00 is quiet, and the missed days are too late
    run_until(programme, clock, clock.now + timedelta(weeks=9))
    weekly = [m for m in sent(programme)[before:] if m.catalogue_key in PROGRAMME_KEYS]
    assert Counter(m.catalogue_key for m in weekly) == {k: 8 for k in PROGRAMME_KEYS}
    london = ZoneInfo("Europe/London")
    for message in sent(programme)[before:]:
        local = message.sent_at.astimezone(london)
        assert 8 <= local.hour < 21, (message.catalogue_key, local)
    first = weekly[0].sent_at.astimezone(london)
    assert first.date().isoformat() == "2026-03-16" and first.strftime("%H:%M") == "18:00"


def test_short_downtime_sends_what_was_missed_once(
    programme: Services, clock: Clock, standin: Any
) -> None:
    clock.now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    phone = "+447700900123"
    consent(programme, clock, phone, session_day="monday", session_time="18:00")
    clock.now = datetime(2026, 3, 9, 20, 0, tzinfo=UTC)  # two hours after Monday's 18:00
    run_tick(programme)
    run_tick(programme)
    learn = [m for m in sent(programme) if m.catalogue_key == "test.learn"]
    assert len(learn) == 1 and learn[0].sent_at == clock.now


def test_quiet_hours_hold_what_the_service_starts_but_not_replies(
    programme: Services, clock: Clock, standin: Any
) -> None:
    clock.now = datetime(2026, 3, 2, 22, 30, tzinfo=UTC)  # 22:30 in London: quiet
    phone = "+447700900123"
    enrol(programme, phone=phone)
    run_tick(programme)
    assert standin.sent_to(phone) == []  # the opening waits for the morning
    handle_inbound(programme, inbound_form(phone, "HELP"))
    drain(programme)
    assert len(standin.sent_to(phone)) == 1 and "999" in standin.sent_to(phone)[0].body
    handle_inbound(programme, inbound_form(phone, "STOP"))
    drain(programme)
    assert standin.sent_to(phone)[-1].body.startswith("You will get no more messages")
    clock.now = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
    run_tick(programme)  # the held opening was cancelled by STOP: it never goes
    assert len(standin.sent_to(phone)) == 2


def test_held_opening_goes_at_the_end_of_quiet_hours(
    programme: Services, clock: Clock, standin: Any
) -> None:
    clock.now = datetime(2026, 3, 2, 22, 30, tzinfo=UTC)
    enrol(programme, phone="+447700900123")
    run_tick(programme)
    clock.now = datetime(2026, 3, 3, 7, 59, tzinfo=UTC)
    run_tick(programme)
    assert standin.sent_to("+447700900123") == []
    clock.now = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
    run_tick(programme)
    run_tick(programme)
    [opening] = sent(programme)
    assert opening.sent_at == clock.now and "Reply YES" in (opening.body or "")


def test_family_quiet_hours_override_the_default(
    programme: Services, clock: Clock, standin: Any
) -> None:
    clock.now = datetime(2026, 3, 2, 19, 0, tzinfo=UTC)
    phone = "+447700900123"
    enrol(programme, phone=phone)
    with programme.db.transaction() as session:
        family = session.scalar(select(Family))
        assert family is not None
        family.quiet_hours = "18:30-09:00"
    run_tick(programme)
    assert standin.sent_to(phone) == []
    clock.now = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
    run_tick(programme)
    assert len(standin.sent_to(phone)) == 1


def sent_on(services: Services, key: str, form: str = "%Y-%m-%d") -> list[str]:
    """When (London time, as ``form``) each message of catalogue ``key`` was sent, in order."""
    london = ZoneInfo("Europe/London")
    return [
        m.sent_at.astimezone(london).strftime(form)
        for m in sent(services)
        if m.catalogue_key == key
    ]


def learn_dates(services: Services) -> list[str]:
    return sent_on(services, "test.learn", "%Y-%m-%d %H:%M")


def test_pause_for_two_weeks_shifts_the_calendar(
    programme: Services, clock: Clock, standin: Any
) -> None:
    clock.now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    phone = "+447700900123"
    consent(programme, clock, phone, session_day="monday", session_time="18:00")
    run_until(programme, clock, datetime(2026, 3, 17, 12, 0, tzinfo=UTC))  # week 2, Tuesday
    handle_inbound(programme, inbound_form(phone, "pause for 2 weeks"))
    drain(programme)
    assert "paused for 2 weeks" in standin.sent_to(phone)[-1].body
    run_until(programme, clock, clock.now + timedelta(weeks=12))
    dates = learn_dates(programme)
    assert dates[:3] == ["2026-03-09 18:00", "2026-03-16 18:00", "2026-04-06 18:00"]
    assert len(dates) == 8
    keys = Counter(m.catalogue_key for m in sent(programme) if m.catalogue_key in PROGRAMME_KEYS)
    assert keys == {k: 8 for k in PROGRAMME_KEYS}
    with programme.db.transaction() as session:
        family = session.scalar(select(Family))
        assert family is not None and family.paused_until is None and family.status == "active"


def test_resume_early_brings_the_next_session_back(
    programme: Services, clock: Clock, standin: Any
) -> None:
    clock.now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    phone = "+447700900123"
    consent(programme, clock, phone, session_day="monday", session_time="18:00")
    run_until(programme, clock, datetime(2026, 3, 17, 12, 0, tzinfo=UTC))
    handle_inbound(programme, inbound_form(phone, "PAUSE 4"))
    clock.now = datetime(2026, 3, 19, 12, 0, tzinfo=UTC)
    handle_inbound(programme, inbound_form(phone, "resume"))
    drain(programme)
    run_until(programme, clock, clock.now + timedelta(weeks=9))
    # Week 2's remaining steps come back on their own weekdays, then week 3 as usual.
    do_dates = sent_on(programme, "test.do")
    assert do_dates[:2] == ["2026-03-11", "2026-03-25"]
    assert learn_dates(programme)[:3] == [
        "2026-03-09 18:00",
        "2026-03-16 18:00",
        "2026-03-30 18:00",
    ]


@pytest.mark.parametrize("text", ["PAUSE 9", "pause forever"])
def test_pause_asks_for_one_to_four_weeks(
    programme: Services, clock: Clock, standin: Any, text: str
) -> None:
    phone = "+447700900123"
    consent(programme, clock, phone)
    handle_inbound(programme, inbound_form(phone, text))
    drain(programme)
    assert "1 to 4 weeks" in standin.sent_to(phone)[-1].body
    with programme.db.transaction() as session:
        family = session.scalar(select(Family))
        assert family is not None and family.paused_until is None


def test_the_timetable_names_the_event_after_each() -> None:
    learn, do, talk, check = (
        CalendarEvent(1, 1, "learn"),
        CalendarEvent(1, 3, "do"),
        CalendarEvent(1, 3, "talk"),  # the same day as "do": the file's order counts
        CalendarEvent(2, 5, "check_in"),
    )
    timetable = Calendar((learn, do, talk, check))
    assert timetable.after(1, 1, "learn") == do
    assert timetable.after(1, 3, "do") == talk
    assert timetable.after(1, 3, "talk") == check
    assert timetable.after(2, 5, "check_in") is None  # the programme is over
    # An event an admin has since taken out: the next is the first on a later day.
    assert timetable.after(1, 2, "gone") == do
    assert timetable.after(1, 3, "gone") == check
    assert timetable.following(1, 1, "learn") == (do, talk, check)
    assert timetable.following(9, 1, "gone") == ()


def test_the_calendar_keeps_one_event_ahead(
    programme: Services, clock: Clock, standin: Any
) -> None:
    clock.now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    consent(programme, clock, "+447700900123", session_day="tuesday", session_time="18:00")

    def calendar() -> list[tuple[str, bool]]:
        with programme.db.transaction() as session:
            rows = session.scalars(
                select(DueWork).where(DueWork.kind == "calendar").order_by(DueWork.id)
            )
            return [(row.dedupe_key or "", row.done_at is None) for row in rows]

    assert [pending for _key, pending in calendar()] == [True]
    run_until(programme, clock, datetime(2026, 3, 6, 12, 0, tzinfo=UTC))  # week 1, two done
    rows = calendar()
    assert [key.rsplit(":", 3)[1:] for key, _pending in rows] == [
        ["1", "1", "learn"],
        ["1", "3", "do"],
        ["1", "5", "check_in"],
    ]
    assert [pending for _key, pending in rows] == [False, False, True]
    # Storing an event twice stores it once (a timetable edited under a running calendar).
    with programme.db.transaction() as session:
        family = session.scalar(select(Family))
        assert family is not None
        again = next_event_row(programme, family, {"week": 1, "day": 3, "flow": "do"}, clock.now)
        assert again is not None and again["dedupe_key"] == rows[-1][0]
        store_next_events(session, [again])
    assert calendar() == rows


def test_an_edited_timetable_applies_from_the_next_event(
    settings: Settings, clock: Clock, standin: Any, tmp_path: Path
) -> None:
    """An admin takes week 3's "do" day out while a family is in week 2: the family does not get
    it, and gets everything else once, in order."""
    clock.now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    flows = tmp_path / "flows"
    shutil.copytree(DATA / "flows", flows)
    before = replace(settings, flows_dir=flows, messages_dir=DATA / "catalog")
    services = build_services(before, clock=clock)
    consent(services, clock, "+447700900123", session_day="monday", session_time="18:00")
    run_until(services, clock, datetime(2026, 3, 17, 12, 0, tzinfo=UTC))  # week 2, Tuesday
    calendar = flows / "calendar.yaml"
    text = calendar.read_text()
    assert "  - {week: 3, day: 3, flow: do}\n" in text
    calendar.write_text(text.replace("  - {week: 3, day: 3, flow: do}\n", ""))
    services = build_services(before, clock=clock)  # the service restarted with the new file
    run_until(services, clock, clock.now + timedelta(weeks=9))
    do_days = sent_on(services, "test.do")
    assert len(do_days) == 7 and "2026-03-18" in do_days and "2026-03-25" not in do_days
    weekly = Counter(m.catalogue_key for m in sent(services) if m.catalogue_key in PROGRAMME_KEYS)
    assert weekly == {"test.learn": 8, "test.do": 7, "test.check_in": 8}


def test_a_calendar_stored_whole_by_an_earlier_version_runs_once(
    programme: Services, clock: Clock, standin: Any
) -> None:
    """Families who said YES before the calendar kept one event ahead have every event stored:
    each event done finds its next one stored already, and nothing is stored or sent twice."""
    clock.now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    consent(programme, clock, "+447700900123", session_day="monday", session_time="18:00")
    with programme.db.transaction() as session:
        family = session.scalar(select(Family))
        assert family is not None
        rows = [
            next_event_row(
                programme, family, {"week": e.week, "day": e.day, "flow": e.flow}, clock.now
            )
            for e in programme.calendar.events
        ]
        store_next_events(session, [row for row in rows if row is not None])  # the rest, as before
        stored = session.scalar(
            select(func.count()).select_from(DueWork).where(DueWork.kind == "calendar")
        )
    assert stored == len(programme.calendar.events)
    run_until(programme, clock, clock.now + timedelta(weeks=10))
    weekly = Counter(m.catalogue_key for m in sent(programme) if m.catalogue_key in PROGRAMME_KEYS)
    assert weekly == {k: 8 for k in PROGRAMME_KEYS}
    with programme.db.transaction() as session:
        keys = list(session.scalars(select(DueWork.dedupe_key).where(DueWork.kind == "calendar")))
        assert len(keys) == len(set(keys)) == len(programme.calendar.events)
