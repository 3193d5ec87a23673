"""The programme's timetable: which flow starts on which day of which week.

Clinicians write it as a list of events (``week``, ``day`` 1-7, ``flow``); week 1 day 1 is the
family's first session day after they say YES, and every event goes at the family's own session
time in their own time zone. Follow-ups are just later weeks (week 12 is about a month after week
8).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flows.loader import CALENDAR_FILE
from flows.yamlload import Located, SourceError, load_located


@dataclass(frozen=True)
class CalendarEvent:
    """One programme message day: start ``flow`` on ``day`` of ``week``."""

    week: int
    day: int
    flow: str

    @property
    def key(self) -> str:
        """Stable identity of the event within a family's calendar."""
        return f"{self.week}:{self.day}:{self.flow}"


@dataclass(frozen=True)
class Calendar:
    """All events, in time order."""

    events: tuple[CalendarEvent, ...]

    @property
    def weeks(self) -> int:
        """The last week with an event."""
        return max((e.week for e in self.events), default=0)

    def following(self, week: int, day: int, flow: str) -> tuple[CalendarEvent, ...]:
        """The events that come after (``week``, ``day``, ``flow``) in this timetable, in order.

        A family's calendar keeps only its next event; when that one is done, the first of
        these comes next. The event need not be in the timetable any more (an admin may have
        edited it since): then they are the events on later days.
        """
        for i, event in enumerate(self.events):
            if (event.week, event.day, event.flow) == (week, day, flow):
                return self.events[i + 1 :]
        return tuple(e for e in self.events if (e.week, e.day) > (week, day))

    def after(self, week: int, day: int, flow: str) -> CalendarEvent | None:
        """The event that comes next after (``week``, ``day``, ``flow``); None: the programme
        is over."""
        upcoming = self.following(week, day, flow)
        return upcoming[0] if upcoming else None


def parse_calendar(located: Located, flows: set[str]) -> Calendar:
    """Check and read a calendar document; every problem names its line."""
    data = located.value
    file = located.file
    if data is None:
        return Calendar(())
    if not isinstance(data, dict) or set(data) - {"events", "note"}:
        raise SourceError(file, 1, "a calendar file has one list, 'events:'")
    raw = data.get("events") or []
    if not isinstance(raw, list):
        raise SourceError(file, located.line(("events",)), "'events' must be a list")
    events: list[CalendarEvent] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        line = located.line(("events", i))
        if not isinstance(item, dict) or set(item) - {"week", "day", "flow", "note"}:
            raise SourceError(file, line, "each event is 'week', 'day' and 'flow' (and a 'note')")
        week, day, flow = item.get("week"), item.get("day"), item.get("flow")
        if not isinstance(week, int) or not 1 <= week <= 104:
            raise SourceError(file, line, "'week' must be a whole number from 1 to 104")
        if not isinstance(day, int) or not 1 <= day <= 7:
            raise SourceError(file, line, "'day' must be 1 (the session day) to 7")
        if not isinstance(flow, str) or flow not in flows:
            raise SourceError(file, line, f"there is no flow '{flow}'")
        event = CalendarEvent(week, day, flow)
        if event.key in seen:
            raise SourceError(file, line, "this event is listed twice")
        seen.add(event.key)
        events.append(event)
    events.sort(key=lambda e: (e.week, e.day))
    return Calendar(tuple(events))


def load_calendar(directory: Path, flows: set[str]) -> Calendar:
    """The calendar in ``directory``, or an empty one if the folder has none."""
    path = directory / CALENDAR_FILE
    if not path.exists():
        return Calendar(())
    return parse_calendar(load_located(path.read_text(encoding="utf-8"), str(path)), flows)
