"""Scripted conversations: the flow tests that clinicians can read and write.

A script says what the parent sends, what the service must answer (a catalogue key, or words the
message must contain), what must be stored, and lets time jump forward so reminders and waits fire.
It runs the same pure engine as the service, with a simulated clock, so hundreds run in a second.

    script: parent says yes and sets a goal
    start: onboarding
    family: {child_name: Sam}
    conversation:
      - send: onboarding.welcome
      - parent: "yep"
      - send: [onboarding.thanks_yes, onboarding.not_emergency]
      - after: 2 days
      - stored: {session_day: tuesday}

Each line of ``conversation`` is one of: ``parent`` (what the parent sends, exactly as written),
``send`` (a key, a list of keys, or ``{contains: words}``, in the order they are sent), ``after``
(let time pass: due reminders and waits fire), ``stored`` (variables the conversation holds),
``measured`` (the last value of each measure), ``consent`` (given / not given), ``opted_out``
(true / false), ``alert`` (an alert of this kind was raised) and ``at_step`` (``flow.step``).
A message the service sends that the script does not expect is a failure.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flows.conversation import handle_message
from flows.effects import (
    CancelWakes,
    Context,
    ConversationState,
    Effect,
    Event,
    MessageIn,
    OptIn,
    OptOut,
    RaiseAlert,
    RecordConsent,
    RecordMeasure,
    ScheduleFlow,
    ScheduleWake,
    Send,
    StartFlow,
    Visited,
    WakeUp,
)
from flows.loader import FlowSet
from flows.model import parse_duration
from flows.runtime import run
from flows.yamlload import Located, SourceError, load_located

Render = Callable[[str, dict[str, Any], str], str]
DEFAULT_FAMILY = {
    "child_name": "Sam",
    "child_age": 8,
    "therapist_name": "Jo",
    "family_ref": "F-TEST",
}
ITEM_KINDS = (
    "parent",
    "send",
    "after",
    "stored",
    "measured",
    "consent",
    "opted_out",
    "alert",
    "at_step",
)


@dataclass
class ScriptResult:
    """How one script went."""

    name: str
    file: str
    failures: list[str] = field(default_factory=list)
    visited: set[tuple[str, str]] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        """True when every line of the script held."""
        return not self.failures


@dataclass
class _Harness:
    flowset: FlowSet
    render: Render
    family: dict[str, Any]
    language: str
    now: datetime
    state: ConversationState = field(default_factory=ConversationState)
    consented: bool = False
    opted_out: bool = False
    wakes: list[ScheduleWake] = field(default_factory=list)
    scheduled: list[ScheduleFlow] = field(default_factory=list)
    timezone: str = "Europe/London"
    languages: tuple[tuple[str, str], ...] = (("en", "English"),)
    measures: dict[str, float] = field(default_factory=dict)
    alerts: list[str] = field(default_factory=list)
    outbox: list[tuple[str, str]] = field(default_factory=list)
    visited: set[tuple[str, str]] = field(default_factory=set)

    def context(self) -> Context:
        return Context(
            self.now,
            dict(self.family),
            self.consented,
            self.language,
            self.timezone,
            self.languages,
        )

    def event(self, event: Event) -> None:
        if isinstance(event, MessageIn):
            outcome = handle_message(
                self.flowset, self.state, event, self.context(), self.opted_out
            )
        else:
            outcome = run(self.flowset, self.state, event, self.context())
        self.state = outcome.state
        for effect in outcome.effects:
            self._apply(effect)

    def _apply(self, effect: Effect) -> None:
        if isinstance(effect, Send):
            text = self.render(effect.key, dict(effect.variables), self.language)
            self.outbox.append((effect.key, text))
        elif isinstance(effect, RecordConsent):
            self.consented = effect.given
        elif isinstance(effect, OptOut):
            self.opted_out = True
            self.wakes.clear()
        elif isinstance(effect, OptIn):
            self.opted_out = False
        elif isinstance(effect, ScheduleWake):
            self.wakes.append(effect)
        elif isinstance(effect, ScheduleFlow):
            self.scheduled.append(effect)
        elif isinstance(effect, CancelWakes):
            self.wakes.clear()
        elif isinstance(effect, RecordMeasure):
            self.measures[effect.name] = effect.value
        elif isinstance(effect, RaiseAlert):
            self.alerts.append(effect.kind)
        elif isinstance(effect, Visited):
            self.visited.add((effect.flow, effect.step))

    def pass_time(self, until: datetime) -> None:
        """Fire every wake-up and scheduled flow due before ``until``, in time order."""
        while True:
            timers: list[ScheduleWake | ScheduleFlow] = [*self.wakes, *self.scheduled]
            due = sorted((t for t in timers if t.at <= until), key=lambda t: t.at)
            if not due:
                break
            timer = due[0]
            self.now = max(self.now, timer.at)
            if isinstance(timer, ScheduleFlow):
                self.scheduled.remove(timer)
                if not self.opted_out:
                    self.event(StartFlow(timer.flow))
            else:
                self.wakes.remove(timer)
                self.event(WakeUp(timer.reason, timer.flow, timer.step))
        self.now = until


def _expected(spec: Any) -> list[dict[str, str]]:
    items = spec if isinstance(spec, list) else [spec]
    out = []
    for item in items:
        if isinstance(item, str):
            out.append({"key": item})
        elif isinstance(item, dict):
            out.append({k: str(v) for k, v in item.items()})
        else:
            out.append({"key": str(item)})
    return out


def run_script(flowset: FlowSet, render: Render, located: Located) -> ScriptResult:
    """Play one script against the flows and collect every line that did not hold."""
    data = located.value if isinstance(located.value, dict) else {}
    result = ScriptResult(str(data.get("script") or Path(located.file).stem), located.file)

    def fail(path: tuple[str | int, ...], message: str) -> None:
        result.failures.append(f"{located.file}:{located.line(path)}: {message}")

    known = (
        "script",
        "start",
        "family",
        "language",
        "languages",
        "timezone",
        "at",
        "consented",
        "conversation",
    )
    unknown = [k for k in data if k not in known]
    if unknown:
        fail((unknown[0],), f"unknown key '{unknown[0]}'; use {', '.join(known)}")
        return result
    timezone = str(data.get("timezone") or "Europe/London")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        fail(("timezone",), f"'{timezone}' is not a time zone like Europe/London")
        return result
    start = data.get("start")
    if not isinstance(start, str) or start not in flowset.flows:
        fail(("start",), f"'start' must name a flow; there is no flow '{start}'")
        return result
    try:
        at = (
            datetime.fromisoformat(str(data["at"]))
            if "at" in data
            else datetime(2026, 1, 5, 17, tzinfo=UTC)
        )
    except ValueError:
        fail(("at",), "'at' must be a date and time like 2026-01-05T17:00:00+00:00")
        return result
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    family = data.get("family") or {}
    if not isinstance(family, dict):
        fail(("family",), "'family' takes names and values, like {child_name: Sam}")
        return result
    harness = _Harness(
        flowset=flowset,
        render=render,
        family={**DEFAULT_FAMILY, **family},
        language=str(data.get("language") or "en"),
        now=at,
        timezone=timezone,
        consented=data.get("consented") is True,
        languages=tuple(
            (str(k), str(v)) for k, v in (data.get("languages") or {"en": "English"}).items()
        ),
    )
    harness.event(StartFlow(str(start)))
    conversation = data.get("conversation") or []
    if not isinstance(conversation, list):
        fail(("conversation",), "'conversation' is a list of lines, each starting with '- '")
        return result
    for i, item in enumerate(conversation):
        path: tuple[str | int, ...] = ("conversation", i)
        if not isinstance(item, dict) or len(item) != 1 or next(iter(item)) not in ITEM_KINDS:
            fail(path, f"each line is one of: {', '.join(ITEM_KINDS)}")
            break
        kind, value = next(iter(item.items()))
        if kind == "parent" and value is not None and not isinstance(value, dict | list):
            # The words exactly as written: "7.0" or "+44" must not be retyped by YAML.
            value = located.texts.get((*path, kind), value)
        if kind in ("parent", "after") and harness.outbox:
            key, text = harness.outbox[0]
            fail(
                path,
                f"the service also sent {key} ('{_short(text)}'), which the script does not expect",
            )
            harness.outbox.clear()
        try:
            carry_on = _line(harness, kind, value, functools.partial(fail, path))
        except (TypeError, ValueError) as exc:
            fail(path, f"cannot read this '{kind}' line ({exc})")
            carry_on = False
        if not carry_on:
            break
    if harness.outbox and not result.failures:
        key, text = harness.outbox[0]
        fail(("conversation",), f"at the end the service also sent {key} ('{_short(text)}')")
    result.visited = harness.visited
    return result


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def _line(harness: _Harness, kind: str, value: Any, fail: Callable[[str], None]) -> bool:
    """Play one script line; False stops the script (the rest would only repeat the error)."""
    if kind == "parent":
        harness.event(MessageIn("" if value is None else str(value)))
        return True
    if kind == "after":
        try:
            harness.pass_time(harness.now + parse_duration(str(value)))
        except ValueError as exc:
            fail(str(exc))
            return False
        return True
    if kind == "send":
        for expected in _expected(value):
            if not harness.outbox:
                fail(
                    f"expected the service to send {_describe(expected)}, but it sent nothing more"
                )
                return False
            key, text = harness.outbox.pop(0)
            if "key" in expected and expected["key"] != key:
                fail(f"expected {expected['key']}, but the service sent {key} ('{_short(text)}')")
                return False
            if "contains" in expected and expected["contains"].lower() not in text.lower():
                fail(f"expected words '{expected['contains']}' in '{_short(text)}'")
                return False
        return True
    if kind == "stored":
        for name, want in dict(value or {}).items():
            got = harness.state.variables.get(name)
            if str(got).lower() != str(want).lower() and got != want:
                fail(f"expected {name} = {want!r} to be stored, found {got!r}")
        return True
    if kind == "measured":
        for name, want in dict(value or {}).items():
            got = harness.measures.get(name)
            if got is None or float(got) != float(want):
                fail(f"expected measure {name} = {want}, found {got}")
        return True
    if kind == "consent":
        want = str(value).lower() == "given"
        if harness.consented != want:
            fail(
                f"expected consent {value}, but it is "
                f"{'given' if harness.consented else 'not given'}"
            )
        return True
    if kind == "opted_out":
        want_out = _truth(value)
        if want_out is None:
            fail(f"write 'opted_out: true' or 'opted_out: false', not {value!r}")
        elif harness.opted_out != want_out:
            fail(f"expected opted_out {want_out}, found {harness.opted_out}")
        return True
    if kind == "alert":
        if str(value) not in harness.alerts:
            fail(f"expected an alert '{value}', raised: {harness.alerts or 'none'}")
        return True
    # at_step
    where = f"{harness.state.flow}.{harness.state.step}"
    if where != str(value):
        fail(f"expected the conversation at {value}, it is at {where}")
    return True


def _truth(value: Any) -> bool | None:
    """``true``/``yes``/``on`` or ``false``/``no``/``off``; None for anything else."""
    if isinstance(value, bool):
        return value
    said = str(value).strip().lower()
    if said in ("true", "yes", "on", "1"):
        return True
    if said in ("false", "no", "off", "0"):
        return False
    return None


def _describe(expected: dict[str, str]) -> str:
    if "key" in expected:
        return expected["key"]
    return f"a message containing '{expected.get('contains', '')}'"


def find_scripts(paths: Iterable[Path]) -> list[Path]:
    """Every ``*.yaml`` script under the given files and folders."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(path.rglob("*.yaml")))
        elif path.exists():
            found.append(path)
        else:
            raise SourceError(str(path), 1, "no such file or folder")
    return found


def load_script(path: Path) -> Located:
    """Read one script file with its lines."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SourceError(str(path), 1, "the file is not UTF-8 text; save it as UTF-8") from None
    return load_located(text, str(path), core_schema=True)


def coverage(flowset: FlowSet, results: Iterable[ScriptResult]) -> tuple[int, int, list[str]]:
    """(steps reached, all steps, the unreached ones as flow.step)."""
    reached: set[tuple[str, str]] = set()
    for result in results:
        reached |= result.visited
    every = [(name, step.id) for name, flow in flowset.flows.items() for step in flow.steps]
    missing = [f"{f}.{s}" for f, s in every if (f, s) not in reached]
    return len(every) - len(missing), len(every), missing
