"""The flow file format: what a clinician may write, checked by pydantic.

A flow is a named list of steps in the order a parent meets them. Each step does exactly one thing
(its *kind*): send a message, ask a question, set a variable, branch, record a measure, give or
record consent, raise an alert for a person, wait, go to another flow, or end. The models here only
check the shape of one file; ``flows.loader`` checks the references between files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

STEP_ID = r"^[a-z][a-z0-9_]*$"
FLOW_NAME = r"^[a-z][a-z0-9_]*$"
VARIABLE = r"^[a-z][a-z0-9_]*$"
CATALOGUE_KEY = r"^[a-z0-9_]+(\.[a-z0-9_]+)+$"

KINDS = (
    "send",
    "ask",
    "set",
    "branch",
    "record",
    "consent",
    "alert",
    "wait",
    "schedule",
    "go",
    "end",
)

_UNITS = {
    "minute": timedelta(minutes=1),
    "min": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
}
_DURATION = re.compile(r"^\s*(\d+)\s*(minute|min|hour|day|week)s?\s*$", re.IGNORECASE)


def parse_duration(text: str) -> timedelta:
    """Read a wait written the way people say it ("1 day", "3 days", "2 hours")."""
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(
            f"'{text}' is not a length of time; write it like '30 minutes', '2 hours', '3 days'"
        )
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


_CLOCK = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")
_LOCAL_MOMENT = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})[ T](\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class When:
    """A moment written in a flow: after a delay, at the next local time of day, or on a date."""

    delay: timedelta | None = None
    clock: time | None = None
    moment: datetime | None = None  # naive: family-local


def parse_when(text: str, *, allow_until: bool = True) -> When:
    """Read "3 days", "until 18:00" / "18:00", or "until 2026-12-01 09:00" (family-local)."""
    raw = str(text).strip()
    if allow_until and raw.lower().startswith("until "):
        raw = raw[len("until ") :]
    elif allow_until:
        return When(delay=parse_duration(raw))
    clock = _CLOCK.match(raw)
    if clock and int(clock.group(1)) < 24 and int(clock.group(2)) < 60:
        return When(clock=time(int(clock.group(1)), int(clock.group(2))))
    moment = _LOCAL_MOMENT.match(raw)
    if moment:
        try:
            day = date.fromisoformat(moment.group(1))
            return When(
                moment=datetime.combine(day, time(int(moment.group(2)), int(moment.group(3))))
            )
        except ValueError:
            pass
    raise ValueError(
        f"'{text}' is not a time; write a length like '2 days', a time of day like "
        "'until 18:00', or a date and time like 'until 2026-12-01 09:00'"
    )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChoiceSpec(_Strict):
    """One numbered choice of a question: the stored value, words that count, where it leads."""

    value: str
    words: list[str] = Field(default_factory=list)
    next: str | None = None

    @field_validator("value", mode="before")
    @classmethod
    def _text_value(cls, value: Any) -> str:
        return str(value)

    @field_validator("words", mode="before")
    @classmethod
    def _text_words(cls, value: Any) -> list[str]:
        return [str(word) for word in value] if isinstance(value, list) else value


class BranchCase(_Strict):
    """One arm of a branch: ``if: "worry >= 7"`` and ``next``, or ``else`` alone."""

    if_: str | None = Field(default=None, alias="if")
    next: str | None = None
    else_: str | None = Field(default=None, alias="else")

    @model_validator(mode="after")
    def _one_form(self) -> BranchCase:
        if self.else_ is not None:
            if self.if_ is not None or self.next is not None:
                raise ValueError("an 'else' arm takes only the step to go to: '- else: step_id'")
        elif self.if_ is None or self.next is None:
            raise ValueError("each arm needs 'if' and 'next' (or is '- else: step_id')")
        return self

    @property
    def target(self) -> str:
        """The step this arm leads to."""
        return self.else_ if self.else_ is not None else str(self.next)


class RecordSpec(_Strict):
    """A measure to store: its name and either a value (a number or a ``{variable}``) or the
    ``sum`` of saved answers (a questionnaire's total or a subscale)."""

    measure: str
    value: str | int | float | None = None
    sum: list[Annotated[str, Field(pattern=VARIABLE)]] | None = None

    @model_validator(mode="after")
    def _one_value(self) -> RecordSpec:
        if (self.value is None) == (self.sum is None):
            raise ValueError("give the measure either 'value' or 'sum: [answer, answer, ...]'")
        if self.sum is not None and not self.sum:
            raise ValueError("'sum' needs at least one saved answer")
        return self


class ScheduleSpec(_Strict):
    """Start another flow later: ``after`` a delay, ``at`` a local time of day, or ``on`` a date."""

    flow: str
    after: str | None = None
    at: str | None = None
    on: str | None = None

    @model_validator(mode="after")
    def _one_time(self) -> ScheduleSpec:
        given = [name for name in ("after", "at", "on") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "say when with exactly one of 'after: 3 days', 'at: \"18:00\"' or "
                "'on: \"2026-12-01 09:00\"'"
            )
        self.when()
        return self

    def when(self) -> When:
        """The moment, parsed."""
        if self.after is not None:
            return When(delay=parse_duration(self.after))
        return parse_when(str(self.at if self.at is not None else self.on), allow_until=False)


class AlertSpec(_Strict):
    """An alert for a person; the words to staff never carry the child's name or the parent's."""

    kind: str
    urgency: Literal["urgent", "soon", "routine"] = "routine"


Expect = Annotated[
    str,
    Field(
        pattern=(
            r"^(yes_no|choice|free_text|time|weekday|language|number \d+\.\.\d+|list \d+\.\.\d+)$"
        )
    ),
]


class Step(_Strict):
    """One step of a flow; exactly one of the kind fields is set."""

    id: Annotated[str, Field(pattern=STEP_ID)]
    note: str | None = None

    send: str | None = None
    ask: str | None = None
    set: dict[str, str | int | float | bool] | None = None
    branch: list[BranchCase] | None = None
    record: RecordSpec | None = None
    consent: Literal["given", "declined"] | None = None
    alert: AlertSpec | None = None
    wait: str | None = None
    schedule: ScheduleSpec | None = None
    go: str | None = None
    end: bool | None = None

    media: str | None = None
    quick_replies: list[str] | None = None
    tip: bool = False  # this send is the week's tip: REPEAT sends it again

    expect: Expect | None = None
    choices: list[ChoiceSpec] | None = None
    save: Annotated[str, Field(pattern=VARIABLE)] | None = None
    measure: str | None = None
    not_understood: str | None = None
    retries: Annotated[int, Field(ge=0, le=5)] = 2
    fallback: str | None = None
    yes: str | None = None
    no: str | None = None
    remind_after: str | None = None
    reminder: str | None = None
    give_up_after: str | None = None

    next: str | None = None

    @property
    def kind(self) -> str:
        """Which of the step kinds this step is."""
        return next(kind for kind in KINDS if getattr(self, kind) is not None)

    @model_validator(mode="after")
    def _shape(self) -> Step:
        kinds = [kind for kind in KINDS if getattr(self, kind) is not None]
        if len(kinds) != 1:
            found = ", ".join(kinds) if kinds else "none"
            raise ValueError(
                f"step '{self.id}' must do exactly one of: {', '.join(KINDS)} (found {found})"
            )
        kind = kinds[0]
        ask_only = (
            "expect",
            "choices",
            "save",
            "measure",
            "not_understood",
            "fallback",
            "yes",
            "no",
            "remind_after",
            "reminder",
            "give_up_after",
        )
        if kind != "ask":
            extra = [name for name in ask_only if getattr(self, name) is not None]
            if extra:
                raise ValueError(f"'{extra[0]}' belongs on an 'ask' step, not a '{kind}' step")
        if kind not in ("send", "ask") and (self.media or self.quick_replies):
            raise ValueError("'media' and 'quick_replies' belong on 'send' or 'ask' steps")
        if self.tip and kind != "send":
            raise ValueError("'tip: true' belongs on a 'send' step")
        if kind in ("branch", "go", "end") and self.next is not None:
            raise ValueError(f"a '{kind}' step decides where to go itself; remove 'next'")
        if kind == "end" and self.end is not True:
            raise ValueError("write 'end: true'")
        if kind == "wait":
            parse_when(str(self.wait))
        if kind == "ask":
            self._check_ask()
        return self

    def _check_ask(self) -> None:
        if self.expect is None:
            raise ValueError(
                "an 'ask' step needs 'expect': yes_no, choice, number 0..10, free_text, time, "
                "weekday or list 3..10"
            )
        if self.expect == "choice":
            if not self.choices:
                raise ValueError("'expect: choice' needs a list of 'choices'")
        elif self.choices:
            raise ValueError("'choices' only go with 'expect: choice'")
        if (self.yes or self.no) and self.expect != "yes_no":
            raise ValueError("'yes' and 'no' only go with 'expect: yes_no'")
        for field_name in ("remind_after",):
            value = getattr(self, field_name)
            if value is not None:
                parse_duration(value)
        if self.remind_after and not self.reminder:
            raise ValueError("'remind_after' needs a 'reminder' message key")
        if self.give_up_after is not None:
            self.give_up()
        if self.expect.startswith(("number", "list")):
            low, high = self.expect_range
            if low > high:
                raise ValueError(f"in '{self.expect}' the first number must not be bigger")

    @property
    def expect_range(self) -> tuple[int, int]:
        """The bounds of ``number A..B`` or ``list A..B``."""
        _, bounds = str(self.expect).split(" ", 1)
        low, high = bounds.split("..")
        return int(low), int(high)

    def give_up(self) -> tuple[timedelta, str | None]:
        """Parse ``give_up_after: 3 days -> step`` into the wait and the step (or None)."""
        text = str(self.give_up_after)
        wait, _, target = text.partition("->")
        return parse_duration(wait), (target.strip() or None)

    def targets(self) -> list[str]:
        """Every step id this step can lead to within its flow."""
        found: list[str] = []
        for name in ("next", "fallback", "yes", "no"):
            value = getattr(self, name)
            if value:
                found.append(value)
        for choice in self.choices or []:
            if choice.next:
                found.append(choice.next)
        for case in self.branch or []:
            found.append(case.target)
        if self.give_up_after:
            target = self.give_up()[1]
            if target:
                found.append(target)
        return found

    def catalogue_keys(self) -> list[str]:
        """Every catalogue key this step names."""
        return [key for key in (self.send, self.ask, self.not_understood, self.reminder) if key]


class Flow(_Strict):
    """A whole flow file."""

    flow: Annotated[str, Field(pattern=FLOW_NAME)]
    description: str | None = None
    before_consent: bool = False
    recovery: str | None = None
    expire_after: str | None = None
    steps: Annotated[list[Step], Field(min_length=1)]

    @field_validator("expire_after")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @property
    def first(self) -> str:
        """The step a parent starts on."""
        return self.steps[0].id

    @property
    def recovery_step(self) -> str:
        """Where a parent goes when the step they were on was deleted from the file."""
        return self.recovery or self.first
