"""The programme's care rules, without the database: what each kind of alert means (who hears
first, how urgent, by when, what the parent is sent) and when a family is getting worse.

Pure: the shell reads what a rule needs, asks it, and writes what it decides (an alert, a reply).
The rules are programme.md's risk table.
"""

from __future__ import annotations

from dataclasses import dataclass

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
