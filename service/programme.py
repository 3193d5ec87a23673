"""Each family's programme calendar: the timetable, and one due-work row for its next event.

Consent starts it: the timetable's first event becomes a ``calendar`` row due at the family's
session time on its day, in their time zone. When the scheduler has done an event it adds the row
of the one after (``next_event_row``), so a family's calendar holds what was done and what comes
next, never the whole programme: starting one, or moving it, is one row, and a timetable an admin
edits applies to every family from its next event on. A new session day or time moves what is
still to come; PAUSE shifts it by whole weeks and RESUME brings it back; STOP cancels it and START
carries on after the last event sent, from the next session on. Rows carry a unique key per
calendar generation, so no event is ever stored twice.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime, time, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from flows.calendar import CalendarEvent
from flows.timing import (
    QuietHours,
    at_local,
    event_date,
    first_session_date,
    next_session,
    parse_clock,
    parse_quiet_hours,
    release_time,
)
from service.fastsql import insert_of, prepared, row_values, table_of
from service.models import DueWork, Family
from service.wiring import Services

DEFAULT_SESSION_TIME = "18:00"
WEEK = timedelta(weeks=1)


def _zone(family: Family) -> ZoneInfo:
    return ZoneInfo(family.timezone)


def quiet_hours(services: Services, family: Family) -> QuietHours:
    """The family's own quiet hours, else the service's."""
    if family.quiet_hours:
        return parse_quiet_hours(family.quiet_hours)
    return services.settings.quiet_hours


def not_before(services: Services, family: Family, moment: datetime) -> datetime:
    """When a message the service starts itself may go: ``moment``, or when quiet hours end."""
    return release_time(moment, _zone(family), quiet_hours(services, family))


def session_time(family: Family) -> time:
    """The family's chosen local time (18:00 until they choose)."""
    return parse_clock(family.session_time or DEFAULT_SESSION_TIME)


def session_day(family: Family, now: datetime) -> int:
    """The family's chosen weekday (the day after consent until they choose)."""
    if family.session_day is not None:
        return family.session_day
    return (now.astimezone(_zone(family)).weekday() + 1) % 7


_DUE_WORK = table_of(DueWork)
# Every column of a due-work row (calendar events and the first silence check give them all).


def due_work_row(
    family_id: int,
    kind: str,
    payload: dict[str, Any],
    due_at: datetime,
    dedupe_key: str,
    now: datetime,
) -> dict[str, Any]:
    """A new pending ``due_work`` row with every column given, as ``_INSERT_DUE_WORK`` takes it."""
    return {
        "family_id": family_id,
        "kind": kind,
        "payload": payload,
        "due_at": due_at,
        "dedupe_key": dedupe_key,
        "claim_token": None,
        "claimed_until": None,
        "attempts": 0,
        "done_at": None,
        "outcome": None,
        "created_at": now,
    }


# The columns come from due_work_row itself, so the two cannot disagree.
_DUE_WORK_COLUMNS = tuple(due_work_row(0, "", {}, datetime.min, "", datetime.min))
_INSERT_DUE_WORK = insert_of(_DUE_WORK, _DUE_WORK_COLUMNS)
_DONE_EVENTS = select(_DUE_WORK.c.payload).where(
    _DUE_WORK.c.family_id == bindparam("of_family"),
    _DUE_WORK.c.kind == "calendar",
    _DUE_WORK.c.done_at.is_not(None),
    _DUE_WORK.c.outcome == "done",
)
# The family's calendar rows still to come, and those done (reschedule moves the first kind, and
# reads whether there are any of the second).
_CALENDAR_ROWS = select(_DUE_WORK.c.id, _DUE_WORK.c.payload, _DUE_WORK.c.done_at).where(
    _DUE_WORK.c.family_id == bindparam("of_family"),
    _DUE_WORK.c.kind == "calendar",
    _DUE_WORK.c.done_at.is_(None) | (_DUE_WORK.c.outcome == "done"),
)


def move_by_id(prefix: str = "") -> Any:
    """``UPDATE`` one pending calendar row (parameters ``<prefix>row`` and ``<prefix>due``) to its
    new due time, releasing any claim on it."""
    return (
        update(_DUE_WORK)
        .where(_DUE_WORK.c.id == bindparam(f"{prefix}row"))
        .values(
            due_at=bindparam(f"{prefix}due", type_=_DUE_WORK.c.due_at.type),
            claimed_until=None,
            claim_token=None,
        )
    )


_MOVE_BY_ID = move_by_id()


@cache
def _insert_new(dialect: str) -> Any:
    """``_INSERT_DUE_WORK`` that leaves out a row whose key is stored already."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(_DUE_WORK)
        .values(row_values(_DUE_WORK, _DUE_WORK_COLUMNS))
        .on_conflict_do_nothing(
            index_elements=["dedupe_key"], index_where=_DUE_WORK.c.dedupe_key.is_not(None)
        )
    )


def _pending(session: Session, family: Family) -> list[DueWork]:
    return list(
        session.scalars(
            select(DueWork)
            .where(
                DueWork.family_id == family.id,
                DueWork.kind == "calendar",
                DueWork.done_at.is_(None),
            )
            .order_by(DueWork.due_at)
        )
    )


def _due(family: Family, week: int, day: int) -> datetime:
    return _dues(family)(week, day)


def _dues(family: Family) -> Callable[[int, int], datetime]:
    """When each (week, day) of the family's calendar is due, as the family is now: their
    programme start, session time and time zone are read once, for a whole calendar."""
    start = family.programme_start
    assert start is not None
    clock, zone = session_time(family), _zone(family)
    return lambda week, day: at_local(event_date(start, week, day), clock, zone)


def start_programme(session: Session, services: Services, family: Family, now: datetime) -> int:
    """Start the family's calendar from their next session day; returns the events stored (0 or
    1: the first; each next one follows when the one before it is done).

    The first 7-day silence check goes in with it.
    """
    rows = programme_rows(services, family, now)
    if not rows:
        return 0
    session.flush()  # what the session holds is stored first, as an ORM insert would
    connection = session.connection()
    prepared(connection, _INSERT_DUE_WORK).run_many(connection, rows)
    return len(rows) - 1


def programme_rows(services: Services, family: Family, now: datetime) -> list[dict[str, Any]]:
    """``start_programme`` without the store: sets the family's ``programme_start`` and returns
    the ``due_work`` rows to store (the first silence check, then the first event), or none if
    the programme has started already. The webhook stores them with the message's other rows."""
    if family.programme_start is not None:
        return []
    family.programme_start = first_session_date(now, _zone(family), session_day(family, now))
    from service.checkins import first_silence_check

    events = services.calendar.events
    rows = [first_silence_check(family, now)]
    if events:
        rows.append(_event_row(family, events[0], now))
    return rows


def _event_row(family: Family, event: CalendarEvent, now: datetime) -> dict[str, Any]:
    """The pending ``calendar`` row of ``event`` for the family's calendar as it is now."""
    return due_work_row(
        family.id,
        "calendar",
        {"flow": event.flow, "week": event.week, "day": event.day},
        _due(family, event.week, event.day),
        f"cal:{family.id}:{family.calendar_generation}:{event.key}",
        now,
    )


def next_event_row(
    services: Services, family: Family, done: dict[str, Any], now: datetime
) -> dict[str, Any] | None:
    """The row of the event after ``done`` (a calendar row's payload), for the scheduler to store
    with ``store_next_events`` when it has done that one; None when the programme is over."""
    event = services.calendar.after(int(done["week"]), int(done["day"]), str(done["flow"]))
    if event is None or family.programme_start is None:
        return None
    return _event_row(family, event, now)


def upcoming(
    services: Services, family: Family, pending: dict[str, Any]
) -> list[tuple[CalendarEvent, datetime]]:
    """The events after ``pending`` (the payload of the family's next event) and when each
    would be due, as the family's calendar is now; none are stored yet."""
    due = _dues(family)
    events = services.calendar.following(
        int(pending["week"]), int(pending["day"]), str(pending["flow"])
    )
    return [(event, due(event.week, event.day)) for event in events]


def store_next_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """Store next events' rows (one statement); a row whose key is stored already is left out,
    so an event is never stored twice, whatever an admin did to the timetable meanwhile."""
    if not rows:
        return
    connection = session.connection()
    prepared(connection, _insert_new(connection.dialect.name)).run_many(connection, rows)


def reschedule(session: Session, services: Services, family: Family, now: datetime) -> None:
    """The family chose a new day or time: move what is still to come, keeping the weeks.

    One read of the family's calendar rows (those to come and those done), and one update of
    those to come: usually one, the next event.
    """
    if family.programme_start is None:
        return
    session.flush()  # calendar rows changed in this session count
    connection = session.connection()
    run_moves(connection, calendar_moves(connection, family, now))


def calendar_moves(connection: Connection, family: Family, now: datetime) -> list[dict[str, Any]]:
    """``reschedule`` without the writes: sets the family's ``programme_start`` from its calendar
    rows (read here) and returns the moves of the rows still to come, for ``move_by_id``. The
    webhook writes them with the message's other rows."""
    rows = prepared(connection, _CALENDAR_ROWS).all(connection, {"of_family": family.id})
    started = any(row.done_at is not None for row in rows)
    if not started:
        family.programme_start = first_session_date(now, _zone(family), session_day(family, now))
    else:
        old = family.programme_start
        assert old is not None
        shift = (session_day(family, now) - old.weekday()) % 7
        family.programme_start = old + timedelta(days=shift)
    return _moves(family, [row for row in rows if row.done_at is None])


def _done_events(session: Session, family: Family) -> list[dict[str, Any]]:
    """The payloads of the family's calendar events that were done."""
    session.flush()  # calendar rows marked done in this session count
    connection = session.connection()
    rows = prepared(connection, _DONE_EVENTS).all(connection, {"of_family": family.id})
    return [payload for (payload,) in rows]


def shift(session: Session, family: Family, weeks: int) -> None:
    """Move the rest of the calendar by whole weeks (negative to bring it back)."""
    if family.programme_start is None or weeks == 0:
        return
    family.programme_start += weeks * WEEK
    _move(session, family, _pending(session, family))


def _move(session: Session, family: Family, rows: Sequence[Any]) -> None:
    """Recompute the due time of pending calendar rows (each with an ``id`` and a ``payload``:
    a ``DueWork`` or a row read by ``_CALENDAR_ROWS``) in one executemany, releasing claims."""
    if rows:
        run_moves(session.connection(), _moves(family, rows))


def _moves(family: Family, rows: Sequence[Any]) -> list[dict[str, Any]]:
    """Each row's new due time, as ``_MOVE_BY_ID``'s parameters."""
    due = _dues(family)
    return [
        {"row": row.id, "due": due(int(row.payload["week"]), int(row.payload["day"]))}
        for row in rows
    ]


def run_moves(connection: Connection, moves: list[dict[str, Any]]) -> None:
    """Write ``calendar_moves``' moves (one executemany)."""
    if moves:
        prepared(connection, _MOVE_BY_ID).run_many(connection, moves)


def weeks_late(due: datetime, now: datetime) -> int:
    """Whole weeks to add to ``due`` so that it is in the future."""
    return max(1, math.ceil((now - due) / WEEK)) if due <= now else 0


def catch_up(session: Session, family: Family, due: datetime, now: datetime) -> int:
    """A calendar event is too late to send now: move the calendar so it is next week's."""
    weeks = weeks_late(due, now)
    shift(session, family, weeks)
    return weeks


def pause(session: Session, family: Family, weeks: int, now: datetime) -> None:
    """Hold the programme for ``weeks`` (1-4): the calendar moves, a resume is due at the end."""
    until = now + weeks * WEEK
    if family.paused_until is not None and family.paused_until > now:
        # Already paused: the new length counts from now.
        weeks = math.ceil((until - family.paused_until) / WEEK)
    family.paused_until = until
    family.status = "paused"
    shift(session, family, weeks)
    session.execute(
        update(DueWork)
        .where(DueWork.family_id == family.id, DueWork.kind == "resume", DueWork.done_at.is_(None))
        .values(done_at=now, outcome="replaced")
        .execution_options(synchronize_session=False)
    )
    session.add(
        DueWork(family_id=family.id, kind="resume", payload={}, due_at=until, created_at=now)
    )


def resume(session: Session, family: Family, now: datetime) -> None:
    """End a pause early or on time: the next event comes at the next session, not at once."""
    if family.paused_until is None:
        return
    rows = _pending(session, family)
    if rows:
        ahead = next_session(now, _zone(family), session_day(family, now), session_time(family))
        first = rows[0].due_at
        back = math.floor((first - ahead) / WEEK) if first > ahead else 0
        shift(session, family, -back)
    family.paused_until = None
    family.status = "active" if family.consent_at else family.status
    session.execute(
        update(DueWork)
        .where(DueWork.family_id == family.id, DueWork.kind == "resume", DueWork.done_at.is_(None))
        .values(done_at=now, outcome="resumed early")
        .execution_options(synchronize_session=False)
    )


def restart_after_stop(session: Session, services: Services, family: Family, now: datetime) -> int:
    """START after STOP: carry on after the last event sent, from the family's next session on.
    Returns the events stored (0 or 1)."""
    if family.programme_start is None:
        return 0
    done = [(int(p["week"]), int(p["day"]), str(p["flow"])) for p in _done_events(session, family)]
    remaining = services.calendar.following(*max(done)) if done else services.calendar.events
    if not remaining:
        return 0
    family.calendar_generation += 1
    first = remaining[0]
    family.programme_start += weeks_late(_due(family, first.week, first.day), now) * WEEK
    store_next_events(session, [_event_row(family, first, now)])
    return 1


HELD = "held"


def hold_for_alert(family: Family) -> None:
    """An urgent alert is open: the programme waits until a person resumes it."""
    if family.status not in ("opted_out", "declined"):
        family.status = HELD


def resume_after_alert(session: Session, family: Family, now: datetime) -> None:
    """A person says the programme may carry on: the next event comes at its next session."""
    if family.status != HELD:
        return
    family.status = "active" if family.consent_at else "invited"
    rows = _pending(session, family)
    if rows and family.programme_start is not None:
        due = _dues(family)
        first = min(due(int(r.payload["week"]), int(r.payload["day"])) for r in rows)
        shift(session, family, weeks_late(first, now))
