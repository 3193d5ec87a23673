"""What the engine asks the shell to do, and the state it hands back.

The engine never sends, stores or schedules anything itself; it returns these values and the shell
applies them in one transaction (goflow's "events", cosmicpython's "actions").
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class ConversationState:
    """Where one family is in its conversation; stored as the family's conversation row."""

    flow: str | None = None
    version: str | None = None
    step: str | None = None
    waiting: bool = False
    attempts: int = 0
    variables: dict[str, Any] = field(default_factory=dict)

    def at(self, **changes: Any) -> ConversationState:
        """A copy with some fields changed."""
        return replace(self, **changes)


@dataclass(frozen=True)
class Context:
    """What the engine may know about the family and the moment, given by the shell."""

    now: datetime
    family: dict[str, Any] = field(default_factory=dict)
    consented: bool = False
    language: str = "en"
    timezone: str = "UTC"
    # Languages whose catalogue is complete, as (code, name): the only ones offered to parents.
    languages: tuple[tuple[str, str], ...] = (("en", "English"),)


# ---- events the engine is given -------------------------------------------------------------


@dataclass(frozen=True)
class StartFlow:
    """Begin ``flow`` at its first step (enrolment, a programme week starting).

    ``variables`` are set on entry: the calendar passes the programme ``week``.
    """

    flow: str
    variables: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MessageIn:
    """A message from the parent."""

    text: str
    media_count: int = 0
    asks_for_person: bool = False  # the screening read a request for a person in it


@dataclass(frozen=True)
class WakeUp:
    """A timer the engine asked for has come due."""

    reason: str  # "resume" (after a wait), "remind", "give_up"
    flow: str
    step: str


Event = StartFlow | MessageIn | WakeUp


# ---- effects the engine returns -------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    """Send the catalogue message ``key`` to the parent."""

    key: str
    variables: dict[str, Any]
    flow: str
    step: str
    media: str | None = None
    quick_replies: tuple[str, ...] = ()
    reply: bool = False  # an answer to something the parent just wrote


@dataclass(frozen=True)
class SaveAnswer:
    """Store the parent's answer to a question."""

    flow: str
    step: str
    question: str
    value: Any
    raw: str


@dataclass(frozen=True)
class RecordMeasure:
    """Store a measure (goal rating, worry rating...) for charts and alerts."""

    name: str
    value: float
    flow: str
    step: str


@dataclass(frozen=True)
class RecordConsent:
    """The parent gave or declined consent."""

    given: bool
    flow: str
    step: str


@dataclass(frozen=True)
class RaiseAlert:
    """Tell a person; ``kind`` and ``urgency`` only, never the parent's words."""

    kind: str
    urgency: str
    flow: str
    step: str


@dataclass(frozen=True)
class ScheduleWake:
    """Wake this conversation at ``at`` for ``reason`` unless it has moved on."""

    at: datetime
    reason: str
    flow: str
    step: str


@dataclass(frozen=True)
class ScheduleFlow:
    """Start ``flow`` for this family at ``at``."""

    flow: str
    at: datetime


@dataclass(frozen=True)
class CancelWakes:
    """Drop any wake-ups still pending for the conversation (it moved on)."""


@dataclass(frozen=True)
class FlowEnded:
    """The flow finished."""

    flow: str


@dataclass(frozen=True)
class OptOut:
    """The parent said STOP: send nothing more until START."""


@dataclass(frozen=True)
class OptIn:
    """The parent said START after a STOP."""


@dataclass(frozen=True)
class PauseProgramme:
    """The parent asked to pause the programme for ``weeks`` (1-4)."""

    weeks: int


@dataclass(frozen=True)
class ResumeProgramme:
    """The parent asked to carry on after a pause."""


@dataclass(frozen=True)
class Visited:
    """The conversation passed through this step (for flow coverage; the shell ignores it)."""

    flow: str
    step: str


@dataclass(frozen=True)
class Note:
    """Something worth a log line (no personal data): a recovery, a blocked send, a loop guard."""

    text: str


Effect = (
    Send
    | SaveAnswer
    | RecordMeasure
    | RecordConsent
    | RaiseAlert
    | ScheduleWake
    | ScheduleFlow
    | CancelWakes
    | FlowEnded
    | OptOut
    | OptIn
    | PauseProgramme
    | ResumeProgramme
    | Visited
    | Note
)


@dataclass(frozen=True)
class Outcome:
    """The new state and what to do."""

    state: ConversationState
    effects: list[Effect]
