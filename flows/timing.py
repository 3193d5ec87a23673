"""Family-local time: session times, quiet hours, and the programme calendar's dates.

Everything here is pure: the moment is always passed in. Times are computed in the family's IANA
zone and converted to UTC only at the end, so 18:00 in London stays 18:00 local on both sides of a
daylight-saving change, and a local time that does not exist on the night the clocks go forward is
moved to the first real minute after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class QuietHours:
    """Local hours in which the service starts nothing non-urgent."""

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        """True when ``moment`` (local) falls in the quiet hours, across midnight too."""
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def parse_quiet_hours(text: str) -> QuietHours:
    """Read ``21:00-08:00``; raise ``ValueError`` with how to write it."""
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", text)
    if not match:
        raise ValueError("write it as HH:MM-HH:MM, for example 21:00-08:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise ValueError("hours go 00-23 and minutes 00-59")
    return QuietHours(time(h1, m1), time(h2, m2))


def parse_clock(text: str) -> time:
    """``HH:MM`` as a time of day."""
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def at_local(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """The UTC moment of ``clock`` on ``day`` in ``zone``; a skipped local time moves forward."""
    # For a time the clocks skip, zoneinfo (fold=0) applies the offset from before the jump,
    # which lands the same distance after it: 01:30 on the night London springs forward is 02:30.
    # For a time that happens twice (autumn), fold=0 takes the first.
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def release_time(moment: datetime, zone: ZoneInfo, quiet: QuietHours) -> datetime:
    """``moment``, or the end of the quiet hours it falls in (for messages the service starts)."""
    local = moment.astimezone(zone)
    if not quiet.contains(local.time().replace(tzinfo=None)):
        return moment
    end_day = local.date()
    if quiet.start > quiet.end and local.time() >= quiet.start:
        end_day += timedelta(days=1)
    return at_local(end_day, quiet.end, zone)


def first_session_date(after: datetime, zone: ZoneInfo, session_day: int) -> date:
    """The first ``session_day`` (Monday = 0) strictly after the local date of ``after``."""
    local = after.astimezone(zone).date()
    ahead = (session_day - local.weekday()) % 7 or 7
    return local + timedelta(days=ahead)


def event_date(start: date, week: int, day: int) -> date:
    """Programme day ``day`` (1-7) of ``week`` (1-based), counted from week 1 day 1 = ``start``."""
    return start + timedelta(days=7 * (week - 1) + (day - 1))


def next_session(after: datetime, zone: ZoneInfo, session_day: int, clock: time) -> datetime:
    """The family's next session moment strictly after ``after``."""
    local = after.astimezone(zone).date()
    for offset in range(8):
        day = local + timedelta(days=offset)
        if day.weekday() == session_day:
            moment = at_local(day, clock, zone)
            if moment > after:
                return moment
    raise AssertionError("a weekday recurs within 8 days")


def next_local_time(after: datetime, zone: ZoneInfo, clock: time) -> datetime:
    """The next moment strictly after ``after`` when the family's clock shows ``clock``."""
    local = after.astimezone(zone).date()
    for offset in range(3):
        moment = at_local(local + timedelta(days=offset), clock, zone)
        if moment > after:
            return moment
    raise AssertionError("a time of day recurs within 3 days")


@dataclass(frozen=True)
class StaffedHours:
    """When the team reads messages: weekdays (Monday = 0) and local hours."""

    days: frozenset[int]
    start: time
    end: time

    def is_staffed(self, moment: datetime, zone: ZoneInfo) -> bool:
        """True when ``moment`` falls in staffed hours."""
        local = moment.astimezone(zone)
        return local.weekday() in self.days and self.start <= local.time() < self.end

    def add_working(self, moment: datetime, zone: ZoneInfo, amount: timedelta) -> datetime:
        """``moment`` plus ``amount`` of staffed time (the clock stops outside staffed hours)."""
        left = amount
        cursor = moment
        for _ in range(60):  # bounded: at most a few weeks of working days
            local = cursor.astimezone(zone)
            day_start = at_local(local.date(), self.start, zone)
            day_end = at_local(local.date(), self.end, zone)
            if local.weekday() not in self.days or cursor >= day_end:
                cursor = at_local(local.date() + timedelta(days=1), self.start, zone)
                continue
            cursor = max(cursor, day_start)
            available = day_end - cursor
            if left <= available:
                return cursor + left
            left -= available
            cursor = at_local(local.date() + timedelta(days=1), self.start, zone)
        return cursor

    def end_of_working_day(self, moment: datetime, zone: ZoneInfo) -> datetime:
        """The end of today's staffed hours, or of the next staffed day if today's are over."""
        start = self.add_working(moment, zone, timedelta(0))
        return at_local(start.astimezone(zone).date(), self.end, zone)


_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_staffed_hours(text: str) -> StaffedHours:
    """Read ``Mon-Fri 09:00-17:00`` (or ``Mon,Wed 10:00-14:00``)."""
    match = re.fullmatch(
        r"\s*([A-Za-z]{3}(?:\s*[-,]\s*[A-Za-z]{3})*)\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*",
        text,
    )
    if not match:
        raise ValueError("write it like Mon-Fri 09:00-17:00")
    days: set[int] = set()
    for part in match.group(1).lower().replace(" ", "").split(","):
        ends = part.split("-")
        if any(e not in _DAY_NAMES for e in ends):
            raise ValueError("days are Mon, Tue, Wed, Thu, Fri, Sat, Sun")
        first, last = _DAY_NAMES.index(ends[0]), _DAY_NAMES.index(ends[-1])
        days.update(
            range(first, last + 1) if first <= last else [*range(first, 7), *range(last + 1)]
        )
    h1, m1, h2, m2 = (int(match.group(i)) for i in range(2, 6))
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h1, m1) >= (h2, m2):
        raise ValueError("the hours must be a range within one day, like 09:00-17:00")
    return StaffedHours(frozenset(days), time(h1, m1), time(min(h2, 23), m2 if h2 < 24 else 59))
