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
