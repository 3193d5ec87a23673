"""Running the engine for one family inside one transaction, and applying what it returns.

The caller holds the family's row lock; everything here happens in the caller's session, so the new
state, the answers, the alerts, the wake-ups and the outgoing messages commit together or not
at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from flows.care import is_getting_worse, rule_for
from flows.effects import (
    CancelWakes,
    Context,
    ConversationState,
    Effect,
    FlowEnded,
    Note,
    OptIn,
    OptOut,
    Outcome,
    PauseProgramme,
    RaiseAlert,
    RecordConsent,
    RecordMeasure,
    ResumeProgramme,
    SaveAnswer,
    ScheduleFlow,
    ScheduleWake,
    Send,
)
from flows.runtime import WEEKDAYS
from messages.segments import count_segments
from service.alerts import raise_alert
from service.models import (
    PRIORITY_FIRST,
    PRIORITY_NORMAL,
    Answer,
    ConsentEvent,
    Conversation,
    DueWork,
    Family,
    Measure,
    Message,
)
from service.programme import (
    DEFAULT_SESSION_TIME,
    not_before,
    pause,
    reschedule,
    restart_after_stop,
    resume,
    start_programme,
)
from service.wiring import Services

log = logging.getLogger("bravesteps.conversations")

#: ``session.info`` key: a caller that knows which families may have a wake-up stored and pending
#: (the tick, for a batch) puts their ids here; cancelling wake-ups for another family then needs
#: no statement. Scheduling a wake-up adds the family.
MAY_HAVE_WAKES = "may_have_wakes"


def lock_family(session: Session, **where: object) -> Family | None:
    """Load a family and hold its row until commit, so its messages are handled one at a time."""
    # The conversation and therapist come in separate queries *after* the lock is held: on
    # PostgreSQL a row joined into the locking query would be read as it was before the wait.
    statement = (
        select(Family)
        .filter_by(**where)
        .options(selectinload(Family.conversation), selectinload(Family.therapist))
        .with_for_update()
    )
    return session.execute(statement).scalar_one_or_none()


def state_of(family: Family) -> ConversationState:
    """The engine's view of the family's stored conversation."""
    row = family.conversation
    return ConversationState() if row is None else state_from(row)


def state_from(row: Any) -> ConversationState:
    """The engine's view of a stored conversation: a ``Conversation`` or a Core row of its
    columns (the webhook's fast path)."""
    return ConversationState(
        flow=row.flow,
        version=row.flow_version,
        step=row.step,
        waiting=row.waiting,
        attempts=row.attempts,
        variables=dict(row.variables or {}),
    )


def context_for(
    family: Family,
    now: datetime,
    languages: tuple[tuple[str, str], ...] = (("en", "English"),),
    voice_notes: int = 0,
) -> Context:
    """What the engine may know about the family: first names and settings, nothing else."""
    therapist = family.therapist.name if family.therapist else None
    return make_context(family, therapist, now, languages, voice_notes)


def make_context(
    family: Any,
    therapist_name: str | None,
    now: datetime,
    languages: tuple[tuple[str, str], ...],
    voice_notes: int,
) -> Context:
    """:func:`context_for` from a ``Family`` or a Core row of its columns."""
    therapist_first = (therapist_name or "").split(" ")[0]
    return Context(
        now=now,
        family={
            "child_name": family.child_name,
            "child_age": family.child_age,
            "therapist_name": therapist_first,
            "family_ref": family.ref,
            "voice_notes_available": voice_notes,
        },
        consented=family.consent_at is not None,
        language=family.language,
        timezone=family.timezone,
        languages=languages,
    )


@dataclass
class Applied:
    """What applying an outcome created, for the caller to dispatch and report."""

    outbox: list[int] = field(default_factory=list)
    alerts: list[int] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)  # queued, ids known after the flush


def apply_outcome(
    session: Session,
    services: Services,
    family: Family,
    outcome: Outcome,
    now: datetime,
    inbound: Message | None = None,
    *,
    flush: bool = True,
) -> Applied:
    """Write the new state and every effect in the caller's transaction.

    ``flush=False`` is for a caller that stores many families' rows at once (the tick): the new
    messages are returned in ``messages`` outside the session, for it to insert, and the other
    rows wait for its flush; ``outbox`` then lists only rows already stored.
    """
    applied = Applied()
    _store_state(session, services, family, outcome.state, now)
    week = outcome.state.variables.get("week")
    week = week if isinstance(week, int) else None
    for effect in outcome.effects:
        _apply(session, services, family, effect, now, inbound, applied, week, store=flush)
    if flush:
        session.flush()
        applied.outbox = sorted({*applied.outbox, *(m.id for m in applied.messages)})
    return applied


def _store_state(
    session: Session, services: Services, family: Family, state: ConversationState, now: datetime
) -> None:
    row = family.conversation
    if row is None:
        row = Conversation(family_id=family.id)
        session.add(row)
        family.conversation = row
    row.flow = state.flow
    row.flow_version = state.version
    row.step = state.step
    row.waiting = state.waiting
    row.attempts = state.attempts
    row.variables = dict(state.variables)
    row.updated_at = now
    if _sync_family(family, state.variables):
        reschedule(session, services, family, now)


def _sync_family(family: Family, variables: dict[str, object]) -> bool:
    """Answers that are also the family's settings update the family; True if day or time moved.

    ``session_day`` and ``session_time`` move the calendar; ``language`` (a complete catalogue,
    offered by an ``expect: language`` question) and ``voice_notes`` (yes/no) change how words go.
    """
    language = variables.get("language")
    if isinstance(language, str) and language:
        family.language = language
    voice = variables.get("voice_notes")
    if voice in ("yes", "no"):
        family.prefers_audio = voice == "yes"
    before = (family.session_day, family.session_time or DEFAULT_SESSION_TIME)
    day = variables.get("session_day")
    if isinstance(day, str) and day in WEEKDAYS:
        family.session_day = WEEKDAYS.index(day)
    clock = variables.get("session_time")
    if isinstance(clock, str) and len(clock) == 5 and clock[2] == ":":
        family.session_time = clock
    # Choosing the time the calendar already keeps (18:00 until a family chooses) moves nothing.
    return (family.session_day, family.session_time or DEFAULT_SESSION_TIME) != before


def _apply(
    session: Session,
    services: Services,
    family: Family,
    effect: Effect,
    now: datetime,
    inbound: Message | None,
    applied: Applied,
    week: int | None,
    *,
    store: bool = True,
) -> None:
    if isinstance(effect, Send):
        applied.messages.append(
            queue_message(session, services, family, effect, now, inbound, flush=False, add=store)
        )
    elif isinstance(effect, SaveAnswer):
        session.add(
            Answer(
                family_id=family.id,
                flow=effect.flow,
                step=effect.step,
                question=effect.question,
                value=effect.value,
                message_id=inbound.id if inbound else None,
                week=week,
                created_at=now,
            )
        )
    elif isinstance(effect, RecordMeasure):
        getting_worse(session, services, family, effect.name, effect.value, now, applied)
        session.add(
            Measure(
                family_id=family.id,
                name=effect.name,
                value=effect.value,
                flow=effect.flow,
                step=effect.step,
                week=week,
                recorded_at=now,
            )
        )
    elif isinstance(effect, RecordConsent):
        _consent(session, family, effect.given, now, inbound)
        if effect.given:
            start_programme(session, services, family, now)
    elif isinstance(effect, RaiseAlert):
        alert, notices = raise_alert(
            session, services, family, effect.kind, now, inbound, effect.urgency
        )
        applied.alerts.append(alert.id)
        applied.outbox.extend(n.id for n in notices)
    elif isinstance(effect, ScheduleWake):
        known = session.info.get(MAY_HAVE_WAKES)
        if known is not None:
            known.add(family.id)
        session.add(
            DueWork(
                family_id=family.id,
                kind="wake",
                payload={"reason": effect.reason, "flow": effect.flow, "step": effect.step},
                due_at=effect.at,
                created_at=now,
            )
        )
    elif isinstance(effect, ScheduleFlow):
        session.add(
            DueWork(
                family_id=family.id,
                kind="start_flow",
                payload={"flow": effect.flow},
                due_at=effect.at,
                created_at=now,
            )
        )
    elif isinstance(effect, CancelWakes):
        cancel_due_work(session, family.id, now, kinds=("wake",))
    elif isinstance(effect, OptOut):
        opt_out(session, family, now, "parent replied STOP", inbound)
    elif isinstance(effect, OptIn):
        family.opted_out_at = None
        family.status = "active" if family.consent_at else "invited"
        session.add(
            ConsentEvent(
                family_id=family.id,
                kind="opt_in",
                source="parent replied START",
                message_id=inbound.id if inbound else None,
                created_at=now,
            )
        )
        restart_after_stop(session, services, family, now)
    elif isinstance(effect, PauseProgramme):
        pause(session, family, effect.weeks, now)
    elif isinstance(effect, ResumeProgramme):
        resume(session, family, now)
    elif isinstance(effect, FlowEnded):
        log.info("family %s finished flow %s", family.ref, effect.flow)
    elif isinstance(effect, Note):
        log.info("family %s: %s", family.ref, effect.text)


def _consent(
    session: Session, family: Family, given: bool, now: datetime, inbound: Message | None
) -> None:
    if given:
        family.consent_at = family.consent_at or now
        family.status = "active"
    else:
        family.status = "declined"
    session.add(
        ConsentEvent(
            family_id=family.id,
            kind="consent_given" if given else "consent_declined",
            source="parent reply",
            message_id=inbound.id if inbound else None,
            created_at=now,
        )
    )


def opt_out(
    session: Session, family: Family, now: datetime, source: str, inbound: Message | None = None
) -> None:
    """Stop everything for a family at once: cancel what is waiting to go and what is due."""
    if family.opted_out_at is None:
        family.opted_out_at = now
        session.add(
            ConsentEvent(
                family_id=family.id,
                kind="opt_out",
                source=source,
                message_id=inbound.id if inbound else None,
                created_at=now,
            )
        )
    family.status = "opted_out"
    session.execute(
        update(Message)
        .where(
            Message.family_id == family.id,
            Message.direction == "out",
            Message.status == "pending",
        )
        .values(status="cancelled", updated_at=now, last_error="family opted out")
        .execution_options(synchronize_session=False)
    )
    cancel_due_work(session, family.id, now)


def cancel_due_work(
    session: Session, family_id: int, now: datetime, kinds: tuple[str, ...] | None = None
) -> None:
    """Mark a family's pending timed work as cancelled, stored or not yet flushed."""
    for work in session.new:
        mine = isinstance(work, DueWork) and work.family_id == family_id
        if mine and work.done_at is None and (not kinds or work.kind in kinds):
            work.done_at, work.outcome = now, "cancelled"
    known = session.info.get(MAY_HAVE_WAKES)
    if kinds == ("wake",) and known is not None and family_id not in known:
        return
    statement = update(DueWork).where(DueWork.family_id == family_id, DueWork.done_at.is_(None))
    if kinds:
        statement = statement.where(DueWork.kind.in_(kinds))
    with session.no_autoflush:  # the rows to cancel are already stored; skip a flush per call
        session.execute(
            statement.values(done_at=now, outcome="cancelled").execution_options(
                synchronize_session=False
            )
        )


def queue_message(
    session: Session,
    services: Services,
    family: Family,
    send: Send,
    now: datetime,
    inbound: Message | None = None,
    *,
    flush: bool = True,
    add: bool = True,
) -> Message:
    """Put one message to the parent in the outbox, with its words fixed now.

    ``flush=False`` leaves the row to the caller's next flush (one flush for many messages);
    ``add=False`` only builds the row, for the caller to store.
    """
    message = Message(**outbox_values(services, family, send, now, inbound.id if inbound else None))
    if not add:
        return message
    session.add(message)
    if flush:
        session.flush()
    return message


def outbox_values(
    services: Services, family: Any, send: Send, now: datetime, inbound_id: int | None
) -> dict[str, Any]:
    """The outbox row for ``send`` to ``family`` (a ``Family`` or the webhook's plain view of
    one), its words fixed now; voice notes go as media on WhatsApp, as a link on SMS; a risk reply
    goes out first. Its columns, in order, are those of ``alerts.staff_message_values``."""
    body = services.catalogue.render(send.key, send.variables, family.language)
    media = [{"url": send.media}] if send.media else None
    audio = audio_url(services, send.key, family.language) if family.prefers_audio else None
    if audio and family.channel == "whatsapp":
        media = [*(media or []), {"url": audio}]
    elif audio:
        body = f"{body}\nListen: {audio}"
    return {
        "direction": "out",
        "family_id": family.id,
        "staff_id": None,
        "channel": family.channel,
        "body": body,
        "media": media,
        "catalogue_key": send.key,
        "flow": send.flow or None,
        "step": send.step or None,
        "quick_replies": list(send.quick_replies) or None,
        "segments": count_segments(body),
        "status": "pending",
        "reply": send.reply,
        "in_reply_to": inbound_id,
        "dedupe_key": None,
        "due_at": now if send.reply else not_before(services, family, now),
        "priority": PRIORITY_FIRST if send.key.startswith("risk.") else PRIORITY_NORMAL,
        "created_at": now,
        "updated_at": now,
    }


def audio_url(services: Services, key: str, language: str) -> str | None:
    """Where the voice note recorded for ``key`` can be fetched, if there is one."""
    entry = services.catalogue.entry(key, language)
    if not entry.audio:
        return None
    if entry.audio.startswith(("http://", "https://")):
        return entry.audio
    return f"{services.settings.public_url or ''}/audio/{entry.language}/{entry.audio}"


def getting_worse(
    session: Session,
    services: Services,
    family: Family,
    name: str,
    value: float,
    now: datetime,
    applied: Applied,
) -> None:
    """A goal rating down 3 or more, or the worry rating up 3 or more: a kind word and an alert."""
    previous = session.scalar(
        select(Measure.value)
        .where(Measure.family_id == family.id, Measure.name == name)
        .order_by(Measure.recorded_at.desc(), Measure.id.desc())
        .limit(1)
    )
    if previous is None:
        return
    if not is_getting_worse(name, previous, value):
        return
    alert, notices = raise_alert(session, services, family, "getting_worse", now)
    applied.alerts.append(alert.id)
    applied.outbox.extend(n.id for n in notices)
    reply = rule_for("getting_worse").reply
    if reply:
        context = context_for(family, now)
        send = Send(reply, {**context.family}, "", "", reply=True)
        applied.outbox.append(queue_message(session, services, family, send, now).id)
