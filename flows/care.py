"""The programme's care rules, without the database: what each kind of alert means (who hears
first, how urgent, by when, what the parent is sent), what a risky or borderline message or an
unreadable one brings, when a family is getting worse, when a quiet family is nudged, and in
which weeks the therapist is asked to call.

Pure: the shell reads what a rule needs, asks it, and writes what it decides (an alert, a reply).
The rules are programme.md's risk table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flows.screening import Screening

# A goal rating down by this much or more, or the worry rating up by as much, since the last
# rating of the same measure is "getting worse" (programme.md's risk table: a supportive message
# and a routine alert to the therapist).
WORSE_BY = 3.0


def is_getting_worse(name: str, previous: float, value: float) -> bool:
    """Whether ``value`` for the measure ``name`` (``goal1``…, ``worry``) is worse than
    ``previous`` by ``WORSE_BY``: goals are better high, worry is better low; other measures never
    get worse."""
    if name.startswith("goal"):
        return previous - value >= WORSE_BY
    if name == "worry":
        return value - previous >= WORSE_BY
    return False


ROTA = ("therapist", "duty", "safeguarding", "lead")


@dataclass(frozen=True)
class Rule:
    """What an alert kind means: who hears first, how urgent, and how long they have."""

    roles: tuple[str, ...]
    urgency: str  # urgent | soon | routine
    within: str  # "15 minutes" | "same working day" | "<n> working hours" | "<n> working days"
    reply: str | None = None  # the catalogue key sent to the parent at once
    pauses_programme: bool = False


RULES: dict[str, Rule] = {
    "immediate_danger": Rule(
        ("duty", "safeguarding"), "urgent", "15 minutes", "risk.immediate_danger", True
    ),
    "child_protection": Rule(
        ("safeguarding", "therapist"), "urgent", "same working day", "risk.child_protection", True
    ),
    "self_harm": Rule(("therapist",), "urgent", "4 working hours", "risk.self_harm", True),
    "domestic_abuse": Rule(("therapist",), "soon", "1 working days", "risk.domestic_abuse"),
    "parent_distress": Rule(("therapist",), "soon", "1 working days", "risk.parent_distress"),
    "getting_worse": Rule(("therapist",), "routine", "2 working days", "system.getting_worse"),
    "quiet": Rule(("therapist",), "routine", "3 working days"),
    "asked_for_person": Rule(("therapist",), "routine", "1 working days"),
    "not_understood": Rule(("therapist",), "routine", "1 working days"),
    # A borderline message (the screening's review tier), and what cannot be screened.
    "please_read": Rule(("therapist",), "routine", "1 working days"),
    "please_listen": Rule(("therapist",), "routine", "1 working days"),  # a parent's voice note
    "please_look": Rule(("therapist",), "routine", "1 working days"),  # a picture or a video
}
DEFAULT_RULE = Rule(("therapist",), "routine", "1 working days")
URGENCY_RANK = {"routine": 0, "soon": 1, "urgent": 2}


def rule_for(kind: str) -> Rule:
    """The rule for an alert kind (flows may raise kinds of their own: routine, therapist)."""
    return RULES.get(kind, DEFAULT_RULE)


# A person checks in: the therapist is asked to call in these weeks of the programme.
CALL_WEEKS = frozenset({1, 2, 4, 6, 8})
# A family silent this long gets one friendly nudge and the therapist is told; so does one that
# misses this many check-ins in a row.
SILENT_FOR = timedelta(days=7)
MISSED_IN_A_ROW = 2
# The silence check runs a day after the 7 days, so a parent who answers each weekly check-in is
# never chased.
GRACE = timedelta(days=1)


def prompts_a_call(week: object) -> bool:
    """Whether the first day of ``week`` asks the therapist to call."""
    return week in CALL_WEEKS


@dataclass(frozen=True)
class Silence:
    """What a silence check decides: nudge the family (and tell the therapist) or not, and when to
    check again (None: never, the family is not in the programme)."""

    nudge: bool
    check_again_at: datetime | None


def check_silence(
    *,
    last_heard: datetime | None,
    consented_at: datetime | None,
    held: bool,
    nudged: bool,
    now: datetime,
) -> Silence:
    """Seven days without a word from a family in the programme: one nudge until the parent writes
    again (``nudged``); a family a person holds (``held``) is never nudged automatically."""
    last = last_heard or consented_at
    if consented_at is None or last is None:
        return Silence(False, None)
    if held:
        last = now
    if now - last < SILENT_FOR:
        return Silence(False, last + SILENT_FOR + GRACE)
    return Silence(not nudged, now + SILENT_FOR)


@dataclass(frozen=True)
class MissedCheckIn:
    """A check-in went unanswered: the family's count of them in a row, and whether to nudge."""

    in_a_row: int
    nudge: bool


def missed_check_in(in_a_row_before: int, *, nudged: bool) -> MissedCheckIn:
    """The second check-in missed in a row brings one nudge (none while one is unanswered)."""
    in_a_row = in_a_row_before + 1
    return MissedCheckIn(in_a_row, in_a_row >= MISSED_IN_A_ROW and not nudged)


# What the parent is told outside staffed hours, after the crisis numbers: nobody is reading now.
OUT_OF_HOURS_KEY = "system.not_watched_now"
# The routine alert of the review tier (a borderline message).
REVIEW_ALERT = "please_read"


@dataclass(frozen=True)
class RiskResponse:
    """What a screened message brings: the catalogue keys sent to the parent at once (in order),
    the alert raised, and whether the programme waits for a person."""

    replies: tuple[str, ...]
    alert: str
    holds_programme: bool = False


def respond_to_alert(found: Screening, *, staffed: bool) -> RiskResponse:
    """A risky message: the numbers for its category (self-harm about the child has its own),
    "nobody is reading now" outside staffed hours, the category's alert, and for an urgent one the
    programme held."""
    rule = rule_for(found.category)
    key = rule.reply
    if key == "risk.self_harm" and found.about == "child":
        key = "risk.self_harm_child"
    replies: tuple[str, ...] = (key,) if key else ()
    if not staffed:
        replies += (OUT_OF_HOURS_KEY,)
    return RiskResponse(replies, found.category, rule.pauses_programme)


def respond_to_review(found: Screening) -> RiskResponse:
    """A borderline message, after the flow's own reply: one line on help now for its category,
    and a "please read" to the therapist."""
    return RiskResponse((f"review.{found.category}",), REVIEW_ALERT)


def respond_to_media(content_types: list[str]) -> RiskResponse:
    """A voice note, picture or video cannot be screened: the therapist is asked to listen (any
    audio) or to look."""
    listen = any(t.startswith("audio") for t in content_types)
    return RiskResponse((), "please_listen" if listen else "please_look")
