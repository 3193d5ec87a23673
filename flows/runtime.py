"""The engine: one event in, the new conversation state and a list of effects out.

Pure by design (no database, network or clock): the shell passes the time in ``Context`` and
applies the returned effects. That keeps thousands of scripted conversations fast and makes every
flow behaviour testable without a server.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flows import matching
from flows.conditions import parse_condition
from flows.effects import (
    CancelWakes,
    Context,
    ConversationState,
    Effect,
    Event,
    FlowEnded,
    MessageIn,
    Note,
    Outcome,
    RaiseAlert,
    RecordConsent,
    RecordMeasure,
    SaveAnswer,
    ScheduleFlow,
    ScheduleWake,
    Send,
    StartFlow,
    Visited,
    WakeUp,
)
from flows.loader import WAITING_KINDS, FlowSet
from flows.model import Step, When, parse_duration, parse_when
from flows.timing import at_local, next_local_time

MAX_STEPS_PER_EVENT = 200
TIP_VARIABLE = "last_tip"
NOT_WAITING = "system.not_waiting"
PERSON_WILL_REPLY = "system.person_will_reply"
THANKS_FOR_MEDIA = "system.thanks_for_media"
ENGINE_KEYS = (NOT_WAITING, PERSON_WILL_REPLY, THANKS_FOR_MEDIA)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def run(flowset: FlowSet, state: ConversationState, event: Event, ctx: Context) -> Outcome:
    """Apply one event to a conversation and return what changed and what to do."""
    effects: list[Effect] = []
    if isinstance(event, StartFlow):
        if event.flow not in flowset.flows:
            effects.append(Note(f"start of unknown flow {event.flow} ignored"))
            return Outcome(state, effects)
        effects.append(CancelWakes())
        state = _enter(flowset, state, event.flow)
        if event.variables:
            state = state.at(variables={**state.variables, **event.variables})
        return Outcome(_advance(flowset, state, ctx, effects, reply=False), effects)

    state, recovered = _recover(flowset, state, effects)
    if recovered:
        reply = isinstance(event, MessageIn)
        return Outcome(_advance(flowset, state, ctx, effects, reply=reply), effects)
    if isinstance(event, WakeUp):
        return Outcome(_wake(flowset, state, event, ctx, effects), effects)
    return Outcome(_answer(flowset, state, event, ctx, effects), effects)


def _enter(flowset: FlowSet, state: ConversationState, flow: str) -> ConversationState:
    return state.at(
        flow=flow,
        version=flowset.versions[flow],
        step=flowset.flows[flow].first,
        waiting=False,
        attempts=0,
    )


def _recover(
    flowset: FlowSet, state: ConversationState, effects: list[Effect]
) -> tuple[ConversationState, bool]:
    """Carry a conversation across an edit of its flow file."""
    if state.flow is None:
        return state, False
    flow = flowset.flows.get(state.flow)
    if flow is None:
        effects.append(Note(f"flow {state.flow} no longer exists; conversation closed"))
        effects.append(CancelWakes())
        return state.at(flow=None, version=None, step=None, waiting=False, attempts=0), False
    version = flowset.versions[state.flow]
    if state.version == version:
        return state, False
    if state.step is None:
        return state.at(version=version), False
    step = flowset.step(state.flow, state.step)
    if step is not None:
        if state.waiting and step.kind not in WAITING_KINDS:
            # The question was turned into a step that does not wait: nothing would ever move
            # the parent on, so run the step from here.
            effects.append(Note(f"step {state.step} of {state.flow} no longer waits; carried on"))
            effects.append(CancelWakes())
            return state.at(version=version, waiting=False, attempts=0), True
        return state.at(version=version), False
    effects.append(
        Note(f"step {state.step} of {state.flow} was removed; moved to {flow.recovery_step}")
    )
    effects.append(CancelWakes())
    moved = state.at(version=version, step=flow.recovery_step, waiting=False, attempts=0)
    return moved, True


def _variables(state: ConversationState, ctx: Context) -> dict[str, Any]:
    options = " ".join(f"{i}) {name}." for i, (_, name) in enumerate(ctx.languages, start=1))
    return {
        **ctx.family,
        "language_count": len(ctx.languages),
        "language_options": options,
        **state.variables,
    }


def _send(
    flowset: FlowSet,
    state: ConversationState,
    ctx: Context,
    step: Step,
    key: str,
    effects: list[Effect],
    reply: bool,
) -> None:
    flow = flowset.flows[str(state.flow)]
    if not ctx.consented and not flow.before_consent:
        effects.append(Note(f"{state.flow}.{step.id} not sent: no consent yet"))
        return
    effects.append(
        Send(
            key=key,
            variables=_variables(state, ctx),
            flow=str(state.flow),
            step=step.id,
            media=step.media,
            quick_replies=tuple(step.quick_replies or ()),
            reply=reply,
        )
    )


def _advance(
    flowset: FlowSet,
    state: ConversationState,
    ctx: Context,
    effects: list[Effect],
    reply: bool,
) -> ConversationState:
    """Run steps that need no answer until one waits or the flow ends."""
    for _ in range(MAX_STEPS_PER_EVENT):
        step = flowset.step(str(state.flow), str(state.step))
        if step is None:
            effects.append(Note(f"step {state.step} missing in {state.flow}; conversation closed"))
            return state.at(step=None, waiting=False)
        effects.append(Visited(str(state.flow), step.id))
        kind = step.kind
        if kind == "send":
            _send(flowset, state, ctx, step, str(step.send), effects, reply)
            if step.tip:
                # REPEAT sends this week's tip again.
                state = state.at(variables={**state.variables, TIP_VARIABLE: step.send})
            state = state.at(step=step.next)
        elif kind == "ask":
            _send(flowset, state, ctx, step, str(step.ask), effects, reply)
            _schedule_ask_timers(step, state, ctx, effects)
            _schedule_expiry(flowset, state, step, ctx, effects)
            return state.at(waiting=True, attempts=0)
        elif kind == "set":
            values = {k: _fill(v, _variables(state, ctx)) for k, v in (step.set or {}).items()}
            state = state.at(variables={**state.variables, **values}, step=step.next)
        elif kind == "branch":
            state = state.at(step=_branch(step, _variables(state, ctx)))
        elif kind == "record":
            assert step.record is not None
            variables = _variables(state, ctx)
            if step.record.sum is not None:
                parts = [_number(variables.get(name)) for name in step.record.sum]
                value = None if None in parts else sum(p for p in parts if p is not None)
            else:
                value = _number(_fill(step.record.value, variables))
            if value is None:
                effects.append(Note(f"{state.flow}.{step.id}: measure value is not a number"))
            else:
                effects.append(RecordMeasure(step.record.measure, value, str(state.flow), step.id))
            state = state.at(step=step.next)
        elif kind == "consent":
            given = step.consent == "given"
            effects.append(RecordConsent(given, str(state.flow), step.id))
            ctx = replace(ctx, consented=given)
            state = state.at(step=step.next)
        elif kind == "alert":
            assert step.alert is not None
            effects.append(
                RaiseAlert(step.alert.kind, step.alert.urgency, str(state.flow), step.id)
            )
            state = state.at(step=step.next)
        elif kind == "wait":
            at = moment(parse_when(str(step.wait)), ctx)
            effects.append(ScheduleWake(at, "resume", str(state.flow), step.id))
            _schedule_expiry(flowset, state, step, ctx, effects)
            return state.at(waiting=True, attempts=0)
        elif kind == "schedule":
            assert step.schedule is not None
            at = moment(step.schedule.when(), ctx)
            effects.append(ScheduleFlow(step.schedule.flow, at))
            state = state.at(step=step.next)
        elif kind == "go":
            effects.append(FlowEnded(str(state.flow)))
            state = _enter(flowset, state, str(step.go))
        else:  # end
            effects.append(FlowEnded(str(state.flow)))
            return state.at(step=None, waiting=False, attempts=0)
    effects.append(Note(f"{state.flow}: more than {MAX_STEPS_PER_EVENT} steps at once; stopped"))
    return state.at(step=None, waiting=False)


def moment(when: When, ctx: Context) -> datetime:
    """The UTC moment a flow's "after", "until 18:00" or "until <date> <time>" means now."""
    zone = ZoneInfo(ctx.timezone)
    if when.delay is not None:
        return ctx.now + when.delay
    if when.clock is not None:
        return next_local_time(ctx.now, zone, when.clock)
    assert when.moment is not None
    return max(ctx.now, at_local(when.moment.date(), when.moment.time(), zone))


def _schedule_expiry(
    flowset: FlowSet, state: ConversationState, step: Step, ctx: Context, effects: list[Effect]
) -> None:
    """A conversation left waiting longer than its flow's ``expire_after`` is closed."""
    flow = flowset.flows[str(state.flow)]
    if flow.expire_after:
        at = ctx.now + parse_duration(flow.expire_after)
        effects.append(ScheduleWake(at, "expire", str(state.flow), step.id))


def open_question(flowset: FlowSet, state: ConversationState, ctx: Context) -> list[Effect]:
    """The question the parent is being asked now, sent again (for MENU), if there is one."""
    step = flowset.step(str(state.flow), str(state.step)) if state.waiting else None
    if step is None or step.kind != "ask":
        return []
    effects: list[Effect] = []
    _send(flowset, state, ctx, step, str(step.ask), effects, True)
    return effects


def reawaken(flowset: FlowSet, state: ConversationState, ctx: Context) -> list[Effect]:
    """After START: ask the open question again, or let a wait that was cancelled run on."""
    if not state.waiting or state.flow is None or state.step is None:
        return []
    step = flowset.step(state.flow, state.step)
    if step is None:
        return []
    effects: list[Effect] = []
    if step.kind == "ask":
        _send(flowset, state, ctx, step, str(step.ask), effects, True)
        _schedule_ask_timers(step, state, ctx, effects)
        _schedule_expiry(flowset, state, step, ctx, effects)
    elif step.kind == "wait":
        effects.append(ScheduleWake(ctx.now, "resume", state.flow, step.id))
    return effects


def _schedule_ask_timers(
    step: Step, state: ConversationState, ctx: Context, effects: list[Effect]
) -> None:
    flow = str(state.flow)
    if step.remind_after:
        at = ctx.now + parse_duration(step.remind_after)
        effects.append(ScheduleWake(at, "remind", flow, step.id))
    if step.give_up_after:
        wait, _ = step.give_up()
        effects.append(ScheduleWake(ctx.now + wait, "give_up", flow, step.id))


def _branch(step: Step, variables: dict[str, Any]) -> str:
    for case in step.branch or []:
        if case.else_ is not None:
            return case.else_
        if parse_condition(str(case.if_)).holds(variables):
            return str(case.next)
    raise AssertionError("the loader guarantees an else arm")


def _fill(value: Any, variables: dict[str, Any]) -> Any:
    """Replace a whole-value ``{name}`` reference with the variable's value."""
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return variables.get(value[1:-1])
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def interpret(
    step: Step,
    text: str,
    media_count: int = 0,
    languages: tuple[tuple[str, str], ...] = (("en", "English"),),
) -> tuple[bool, Any, str | None]:
    """Read the parent's reply to ``step``: (understood, value, the step it leads to)."""
    expect = str(step.expect)
    if expect == "language":
        options = [matching.Choice(code, (code, name)) for code, name in languages]
        code = matching.match_choice(text, options)
        return (code is not None), code, step.next
    if expect == "yes_no":
        yes = matching.parse_yes_no(text)
        if yes is None:
            return False, None, None
        return True, "yes" if yes else "no", (step.yes if yes else step.no) or step.next
    if expect == "choice":
        choices = [matching.Choice(c.value, tuple(c.words)) for c in step.choices or []]
        value = matching.match_choice(text, choices)
        if value is None:
            return False, None, None
        chosen = next(c for c in step.choices or [] if c.value == value)
        return True, value, chosen.next or step.next
    if expect.startswith("number"):
        low, high = step.expect_range
        number = matching.parse_number(text, low, high)
        return (number is not None), number, step.next
    if expect.startswith("list"):
        low, high = step.expect_range
        items = matching.parse_list(text, low, high)
        return (items is not None), items, step.next
    if expect == "time":
        parsed = matching.parse_time(text)
        if parsed is None:
            return False, None, None
        return True, f"{parsed[0]:02d}:{parsed[1]:02d}", step.next
    if expect == "weekday":
        day = matching.parse_weekday(text)
        return (day is not None), (WEEKDAYS[day] if day is not None else None), step.next
    # free_text: any words, or a voice note or picture
    cleaned = text.strip()
    if cleaned or media_count:
        return True, cleaned or "(media)", step.next
    return False, None, None


def _answer(
    flowset: FlowSet,
    state: ConversationState,
    event: MessageIn,
    ctx: Context,
    effects: list[Effect],
) -> ConversationState:
    step = flowset.step(str(state.flow), str(state.step)) if state.flow else None
    only_media = bool(event.media_count) and not event.text.strip()
    where = (str(state.flow or ""), str(state.step or ""))
    if step is None or not state.waiting or step.kind != "ask":
        key = THANKS_FOR_MEDIA if only_media else NOT_WAITING
        effects.append(Send(key, _variables(state, ctx), *where, reply=True))
        return state
    if only_media and step.expect != "free_text":
        # A voice note or picture where a number or word was asked: kept for the therapist,
        # thanked, and the question still stands (it is not a wrong answer).
        effects.append(Send(THANKS_FOR_MEDIA, _variables(state, ctx), *where, reply=True))
        return state
    understood, value, target = interpret(step, event.text, event.media_count, ctx.languages)
    if understood:
        effects.append(CancelWakes())
        effects.append(SaveAnswer(str(state.flow), step.id, str(step.ask), value, event.text))
        variables = dict(state.variables)
        if step.save:
            variables[step.save] = value
        if step.measure:
            number = _number(value)
            if number is not None:
                effects.append(RecordMeasure(step.measure, number, str(state.flow), step.id))
        state = state.at(variables=variables, step=target, waiting=False, attempts=0)
        return _advance(flowset, state, ctx, effects, reply=True)
    attempts = state.attempts + 1
    if attempts <= step.retries:
        _send(flowset, state, ctx, step, step.not_understood or str(step.ask), effects, True)
        return state.at(attempts=attempts)
    if step.fallback:
        effects.append(CancelWakes())
        state = state.at(step=step.fallback, waiting=False, attempts=0)
        return _advance(flowset, state, ctx, effects, reply=True)
    effects.append(RaiseAlert("not_understood", "routine", str(state.flow), step.id))
    effects.append(
        Send(PERSON_WILL_REPLY, _variables(state, ctx), str(state.flow), step.id, reply=True)
    )
    return state.at(attempts=0)


def _wake(
    flowset: FlowSet,
    state: ConversationState,
    event: WakeUp,
    ctx: Context,
    effects: list[Effect],
) -> ConversationState:
    """A timer fired: act only if the conversation is still where the timer was set."""
    if not (state.waiting and state.flow == event.flow and state.step == event.step):
        effects.append(Note(f"stale {event.reason} wake-up for {event.flow}.{event.step}"))
        return state
    step = flowset.step(event.flow, event.step)
    assert step is not None
    if event.reason == "resume" and step.kind == "wait":
        return _advance(flowset, state.at(step=step.next, waiting=False), ctx, effects, False)
    if event.reason == "expire":
        effects.append(CancelWakes())
        effects.append(Note(f"{event.flow} expired at {event.step}; conversation closed"))
        effects.append(FlowEnded(event.flow))
        return state.at(step=None, waiting=False, attempts=0)
    if event.reason == "remind" and step.reminder:
        _send(flowset, state, ctx, step, step.reminder, effects, False)
        return state
    if event.reason == "give_up" and step.give_up_after:
        target = step.give_up()[1]
        effects.append(CancelWakes())
        if target is None:
            effects.append(FlowEnded(event.flow))
            return state.at(step=None, waiting=False, attempts=0)
        return _advance(
            flowset, state.at(step=target, waiting=False, attempts=0), ctx, effects, False
        )
    effects.append(Note(f"{event.reason} wake-up has nothing to do at {event.flow}.{event.step}"))
    return state
