"""The inbound hot path in a handful of prepared SQLAlchemy Core statements.

A parent's ordinary message (an answer, a question the flow does not expect, consent, a session
day or time, a routine alert for the family's therapist, or one joining an alert of its kind
still open) is read, run through the engine and written here without the ORM's unit of work.
SQLite: one statement reads the family, its conversation and therapist, one stores the message.
PostgreSQL: one writes (and so locks) and reads the family, one stores the message and reads
the conversation.
Then one statement each writes the new state, the family's changed columns, the calendar moves,
each kind of new row and each reply; on PostgreSQL all of them go in one statement. Everything
else (a number nobody enrolled, staff, a risky message, a conversation a person has taken over,
alerts to other roles or that escalate, STOP and START, PAUSE and RESUME, getting worse) goes
through the ORM path in ``service.inbound``, in the same transaction, with the stored message.

What this writes is exactly what ``service.conversations.apply_outcome`` would: the tests of the
webhook run through this path, and ``tests/test_inbound_core.py`` compares what it writes with
what the ORM path writes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cache, lru_cache
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, exists, insert, literal, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from flows.care import is_getting_worse, rule_for
from flows.conversation import handle_message
from flows.effects import (
    CancelWakes,
    Context,
    ConversationState,
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
    Visited,
)
from flows.screening import screen
from service.alerts import (
    ALERT_KEY,
    OPEN_ALERT,
    alert_codes,
    alert_text,
    alert_to_join,
    alert_values,
    staff_message_values,
    text_due,
    therapist_only,
)
from service.conversations import (
    _sync_family,
    make_context,
    outbox_values,
    state_from,
)
from service.db import Unit
from service.fastsql import Prepared, insert_of, prepared, row_values, table_of
from service.models import (
    Alert,
    AlertEvent,
    Answer,
    ConsentEvent,
    Conversation,
    DueWork,
    Family,
    Measure,
    Message,
    Staff,
)
from service.programme import calendar_moves, move_by_id, programme_rows, run_moves
from service.wiring import Services

log = logging.getLogger("bravesteps.conversations")  # the same lines as apply_outcome's


FAMILIES = table_of(Family)
CONVERSATIONS = table_of(Conversation)
MESSAGES = table_of(Message)
STAFF = table_of(Staff)
DUE_WORK = table_of(DueWork)
ANSWERS = table_of(Answer)
MEASURES = table_of(Measure)
CONSENT_EVENTS = table_of(ConsentEvent)
ALERTS = table_of(Alert)
ALERT_EVENTS = table_of(AlertEvent)

# The family columns the engine, the outbox and the programme read or change here.
FAMILY_FIELDS = (
    "id",
    "ref",
    "phone",
    "channel",
    "sms_allowed",
    "child_name",
    "child_age",
    "language",
    "timezone",
    "session_day",
    "session_time",
    "quiet_hours",
    "therapist_id",
    "status",
    "consent_at",
    "opted_out_at",
    "number_invalid_at",
    "last_inbound_at",
    "programme_start",
    "paused_until",
    "calendar_generation",
    "prefers_audio",
    "missed_check_ins",
    "nudged_at",
    "created_at",
)
CONVERSATION_FIELDS = ("flow", "flow_version", "step", "waiting", "attempts", "variables")
_FAMILY_COLUMNS = [FAMILIES.c[name] for name in FAMILY_FIELDS]
# "Not done yet", written so that PostgreSQL cannot answer it from ix_due_work_pending: with
# statistics that say pending rows are rare (a fresh database; one whose statistics predate the
# calendars), it would read every pending row of every family there instead of the family's few.
_NOT_DONE = DUE_WORK.c.done_at.is_(None).is_(true())
_CONVERSATION_COLUMNS = [
    CONVERSATIONS.c.family_id.label("conversation_of"),
    *(CONVERSATIONS.c[name] for name in CONVERSATION_FIELDS),
    CONVERSATIONS.c.handoff_staff_id,
    STAFF.c.id.label("therapist_found"),
    STAFF.c.name.label("therapist_name"),
    # Who hears the family's routine alerts (``_alert``): the therapist, if still active.
    STAFF.c.active.label("therapist_active"),
    STAFF.c.channel.label("therapist_channel"),
    STAFF.c.role.label("therapist_role"),
    # Whether a wake-up is stored and pending: when none is, cancelling wake-ups writes nothing.
    exists()
    .where(DUE_WORK.c.family_id == FAMILIES.c.id, _NOT_DONE, DUE_WORK.c.kind == "wake")
    .label("wakes_pending"),
]
_AROUND = FAMILIES.outerjoin(CONVERSATIONS, CONVERSATIONS.c.family_id == FAMILIES.c.id).outerjoin(
    STAFF, STAFF.c.id == FAMILIES.c.therapist_id
)

# SQLite: writers are already one at a time (BEGIN IMMEDIATE), so one joined read is enough.
FAMILY_AND_CONVERSATION = (
    select(*_FAMILY_COLUMNS, *_CONVERSATION_COLUMNS)
    .select_from(_AROUND)
    .where(FAMILIES.c.phone == bindparam("phone"))
)
# PostgreSQL: lock the family row first, by the write every message makes to it (the time the
# parent last wrote), and read it as written; a row joined into the locking statement would be
# read as it was before the wait, so the conversation and therapist are read by a second
# statement (STORE_AND_READ). A retried message rolls the write back (``Repeat``).
TOUCH_FAMILY = (
    update(FAMILIES)
    .where(FAMILIES.c.phone == bindparam("phone"))
    .values(last_inbound_at=bindparam("touched", type_=FAMILIES.c.last_inbound_at.type))
    .returning(*_FAMILY_COLUMNS)
)
# The message, stored once: a MessageSid already stored inserts nothing and returns no id.
_INBOUND_FIELDS = (
    "direction",
    "family_id",
    "staff_id",
    "channel",
    "twilio_sid",
    "body",
    "media",
    "status",
    "reply",
    "attempts",
    "created_at",
    "updated_at",
)
_INBOUND_VALUES = {n: bindparam(f"in_{n}", type_=MESSAGES.c[n].type) for n in _INBOUND_FIELDS}
# The conflict target names the partial unique index on MessageSid (its condition included).
_HAS_SID = MESSAGES.c.twilio_sid.is_not(None)
STORE_INBOUND = (
    sqlite.insert(MESSAGES)
    .values(_INBOUND_VALUES)
    .on_conflict_do_nothing(index_elements=["twilio_sid"], index_where=_HAS_SID)
    .returning(MESSAGES.c.id)
)
# PostgreSQL, after TOUCH_FAMILY in the same round trip: the message stored (for the family that
# writes from the number: none, so nothing stored, for a number nobody enrolled) and the
# conversation read, in one statement that starts after the lock is held, so it reads what is
# current.
_STORED = (
    postgresql.insert(MESSAGES)
    .from_select(
        list(_INBOUND_FIELDS),
        select(
            *(FAMILIES.c.id if n == "family_id" else _INBOUND_VALUES[n] for n in _INBOUND_FIELDS)
        ).where(FAMILIES.c.phone == bindparam("phone")),
    )
    .on_conflict_do_nothing(index_elements=["twilio_sid"], index_where=_HAS_SID)
    .returning(MESSAGES.c.id)
    .cte("stored")
)
STORE_AND_READ = (
    select(select(_STORED.c.id).scalar_subquery().label("stored_id"), *_CONVERSATION_COLUMNS)
    .select_from(_AROUND)
    .where(FAMILIES.c.phone == bindparam("phone"))
)
PREVIOUS_MEASURE = (
    select(MEASURES.c.value)
    .where(MEASURES.c.family_id == bindparam("family_id"), MEASURES.c.name == bindparam("name"))
    .order_by(MEASURES.c.recorded_at.desc(), MEASURES.c.id.desc())
    .limit(1)
)
STORE_STATE = (
    update(CONVERSATIONS)
    .where(CONVERSATIONS.c.family_id == bindparam("of_family"))
    .values(
        {
            name: bindparam(f"new_{name}", type_=CONVERSATIONS.c[name].type)
            for name in (*CONVERSATION_FIELDS, "updated_at")
        }
    )
)
CANCEL_WAKES = (
    update(DUE_WORK)
    .where(
        DUE_WORK.c.family_id == bindparam("of_family"),
        _NOT_DONE,
        DUE_WORK.c.kind == "wake",
    )
    .values(done_at=bindparam("now", type_=DUE_WORK.c.done_at.type), outcome="cancelled")
)
INSERTED = {"answers": ANSWERS, "measures": MEASURES, "due_work": DUE_WORK}
INSERTED["consent_events"] = CONSENT_EVENTS
INSERTED["alert_events"] = ALERT_EVENTS
# A new programme's first rows (``programme.programme_rows``): due work with every column given.
INSERTED["programme"] = DUE_WORK
# A new alert, under a code no other alert has: a code taken already inserts nothing and
# returns no id (``_alert`` then tries the next).
_ALERT_FIELDS = (
    "family_id",
    "staff_id",
    "kind",
    "urgency",
    "code",
    "source_message_id",
    "due_by",
    "level",
    "created_at",
)
NEW_ALERT = {
    name: dialect.insert(ALERTS)
    .values(row_values(ALERTS, _ALERT_FIELDS))
    .on_conflict_do_nothing(index_elements=["code"])
    .returning(ALERTS.c.id)
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))
}


@cache
def _insert(table: Table, names: tuple[str, ...]) -> Any:
    """``INSERT INTO table (names)``, built once per table and set of columns."""
    return insert_of(table, names)


@cache
def _queue(names: tuple[str, ...]) -> Any:
    """An outgoing message's ``INSERT``, returning its id."""
    return insert_of(MESSAGES, names).returning(MESSAGES.c.id)


@cache
def _family_update(names: tuple[str, ...]) -> Any:
    """``UPDATE families SET <names>`` for one family, built once per set of changed columns."""
    return (
        update(FAMILIES)
        .where(FAMILIES.c.id == bindparam("of_family"))
        .values({name: bindparam(f"new_{name}", type_=FAMILIES.c[name].type) for name in names})
    )


HANDLED = (Send, SaveAnswer, RecordMeasure, RecordConsent, ScheduleWake, ScheduleFlow, CancelWakes)
# RaiseAlert too, when only the family's therapist is told and it never escalates (``_alert``).
LOGGED = (FlowEnded, Note, Visited)  # Visited: for simulator scripts, nothing to write


class Repeat(Exception):
    """The message's MessageSid is stored already: roll back, change nothing, answer as before."""


class Found:
    """The family's row and its conversation's (with the therapist's name), as read."""

    __slots__ = ("conversation", "family")

    def __init__(self, family: Any, conversation: Any) -> None:
        self.family = family
        self.conversation = conversation


def arrive(
    connection: Connection,
    phone: str,
    sid: str,
    channel: str,
    body: str,
    media: list[dict[str, str]],
    now: datetime,
) -> tuple[Found | None, int | None]:
    """Read the family writing from ``phone`` and store its message.

    Returns the family (None: no family writes from ``phone``, and nothing was stored) and the
    stored message's id (None: its MessageSid is stored already, a retry: raise ``Repeat``, so
    that the transaction changes nothing). On PostgreSQL the family's row is locked until
    commit by writing its ``last_inbound_at``, and the lock, the store and the read of the
    conversation go in one round trip.
    """
    params = {
        "phone": phone,
        "in_direction": "in",
        "in_family_id": None,
        "in_staff_id": None,
        "in_channel": channel,
        "in_twilio_sid": sid,
        "in_body": body,
        "in_media": media or None,
        "in_status": "received",
        "in_reply": False,
        "in_attempts": 0,
        "in_created_at": now,
        "in_updated_at": now,
    }
    if connection.dialect.name == "postgresql":
        lock, store = prepared(connection, TOUCH_FAMILY), prepared(connection, STORE_AND_READ)
        with _pipelined(connection):
            locked = lock.execute(connection, {"phone": phone, "touched": now})
            stored = store.execute(connection, params)
        family, read = lock.first_of(locked), store.first_of(stored)
        if family is None:
            return None, None
        return Found(family, read), read.stored_id
    row = prepared(connection, FAMILY_AND_CONVERSATION).first(connection, {"phone": phone})
    if row is None:
        return None, None
    params["in_family_id"] = row.id
    stored_id: int | None = prepared(connection, STORE_INBOUND).scalar(connection, params)
    return Found(row, row), stored_id


class Plan:
    """SQLite: what the engine made of a message from the family as read before the writers'
    lock. ``read`` is the joined family/conversation row it was decided from; ``outcome`` is None
    when the message is for the ORM path. Used under the lock only if that row reads the same
    again (see ``handle``); otherwise the message is decided afresh there.
    """

    __slots__ = ("outcome", "read")

    def __init__(self, read: Any, outcome: Outcome | None) -> None:
        self.read = read
        self.outcome = outcome


def plan(
    connection: Connection,
    services: Services,
    phone: str,
    body: str,
    media_count: int,
    now: datetime,
) -> Plan | None:
    """SQLite, before the writers' lock (``Database.reading``): read the family and run the
    engine, so that only the writes wait for the lock. None: no family writes from ``phone``."""
    row = prepared(connection, FAMILY_AND_CONVERSATION).first(connection, {"phone": phone})
    if row is None:
        return None
    return Plan(row, decide(services, row, row, body, media_count, now))


def handle(
    unit: Unit,
    services: Services,
    found: Found,
    message_id: int,
    body: str,
    media_count: int,
    now: datetime,
    planned: Plan | None = None,
) -> list[int] | None:
    """Run the engine on the message and write what follows; None leaves it to the ORM path.

    ``planned``: the engine's outcome from an earlier, unlocked read (SQLite). It is used only
    when the family and conversation read now, under the lock, equal the row it was decided from
    (every column the engine, the screening and the writes read, state and variables included);
    otherwise the message is decided again here, from the current state, so a message handled in
    between is never overwritten or applied twice.

    Returns the ids of the messages queued. Nothing is written before the decision is made.
    """
    row, conversation = found.family, found.conversation
    if planned is not None and conversation is not None and planned.read == conversation:
        outcome = planned.outcome
    else:
        outcome = decide(services, row, conversation, body, media_count, now)
    if outcome is None or conversation is None:
        return None
    if not _handled_here(unit.connection, services, row.id, conversation, outcome, now):
        return None
    return _apply(unit, services, row, conversation, outcome, message_id, now)


def decide(
    services: Services,
    row: Any,
    conversation: Any,
    body: str,
    media_count: int,
    now: datetime,
) -> Outcome | None:
    """The engine's outcome for the message, or None when the ORM path must handle it."""
    if conversation is None or conversation.conversation_of is None:
        return None  # no conversation row yet: the ORM path makes one
    opted_out = row.opted_out_at is not None
    if conversation.handoff_staff_id is not None and not opted_out:
        return None  # a person has taken the conversation over
    if media_count:
        return None  # a voice note, picture or video: the therapist is asked to listen or look
    found = screen(body, services.risk, row.language) if body.strip() else None
    if found is not None and found.tier != "none":
        return None  # risky or borderline: screened and answered by the ORM path
    state = state_from(conversation)
    return handle_message(
        services.flows,
        state,
        MessageIn(body, media_count, asks_for_person=found is not None and found.person),
        _context(services, row, conversation, now),
        opted_out,
    )


def _context(services: Services, row: Any, conversation: Any, now: datetime) -> Context:
    therapist = conversation.therapist_name if conversation.therapist_found is not None else None
    return make_context(
        row, therapist, now, services.languages(), services.voice_notes(row.language)
    )


def _handled_here(
    connection: Connection,
    services: Services,
    family_id: int,
    conversation: Any,
    outcome: Outcome,
    now: datetime,
) -> bool:
    """Every effect is one this path writes, and no rating got worse (that raises an alert).

    An alert is written here only when it goes to the family's therapist alone, who is still
    active, and never escalates; any other goes the ORM way (``alerts.raise_alert``).
    """
    earlier: dict[str, float] = {}
    for effect in outcome.effects:
        if isinstance(effect, RecordMeasure):
            previous = earlier.get(effect.name)
            if previous is None:
                previous = prepared(connection, PREVIOUS_MEASURE).scalar(
                    connection, {"family_id": family_id, "name": effect.name}
                )
            if previous is not None and is_getting_worse(effect.name, previous, effect.value):
                return False
            earlier[effect.name] = effect.value
        elif isinstance(effect, RaiseAlert):
            if not (
                conversation.therapist_found is not None
                and conversation.therapist_active
                and therapist_only(services, effect.kind, effect.urgency, now)
            ):
                return False
        elif not isinstance(effect, HANDLED + LOGGED):
            return False
    return True


class FamilyView:
    """A family's columns (``FAMILY_FIELDS``) as plain attributes, without ORM bookkeeping."""

    __slots__ = FAMILY_FIELDS

    def __init__(self, values: Any) -> None:
        for name in FAMILY_FIELDS:
            setattr(self, name, values[name])

    @property
    def opted_out(self) -> bool:
        """As ``Family.opted_out``."""
        return getattr(self, "opted_out_at", None) is not None


class _Rows:
    """New rows by table, a pending cancel of wake-ups and moves of calendar rows (a new session
    day or time), written at the next write."""

    def __init__(self, family_id: int, now: datetime) -> None:
        self.messages: list[dict[str, Any]] = []
        self.moves: list[dict[str, Any]] = []  # programme.calendar_moves
        self.other: dict[str, list[dict[str, Any]]] = {name: [] for name in INSERTED}
        self.queued: list[int] = []
        self.wakes_stored = False  # a pending wake-up written by this transaction
        # CancelWakes: stored wake-ups are cancelled before the next rows are inserted (so a
        # wake-up the same outcome schedules afterwards stays pending).
        self.cancel = False
        self.now = now
        self.cancel_params: dict[str, Any] = {"of_family": family_id, "now": now}

    def cancel_wakes(self, wakes_pending: bool) -> None:
        """As CancelWakes: the wake-ups not yet written are cancelled here, the stored ones at
        the next write (only if there may be one: ``wakes_pending`` or one written since)."""
        for work in self.other["due_work"]:
            if work["kind"] == "wake" and work["done_at"] is None:
                work["done_at"], work["outcome"] = self.now, "cancelled"
        if wakes_pending or self.wakes_stored:
            self.cancel = True

    def write(self, connection: Connection) -> None:
        """One statement per table, the outgoing messages' ids read back."""
        for message in self.messages:
            statement = prepared(connection, _queue(tuple(message)))
            self.queued.append(statement.scalar(connection, message))
        self.messages = []
        self.write_others(connection)

    def write_others(self, connection: Connection) -> None:
        """A pending cancel, then every other new row (nothing is read back)."""
        if self.cancel:
            prepared(connection, CANCEL_WAKES).run(connection, self.cancel_params)
            self.cancel = False
        run_moves(connection, self.moves)
        self.moves = []
        if any(w["kind"] == "wake" and w["done_at"] is None for w in self.other["due_work"]):
            self.wakes_stored = True
        for name, rows in self.other.items():
            if rows:
                statement = prepared(connection, _insert(INSERTED[name], tuple(rows[0])))
                statement.run_many(connection, rows)
                rows.clear()

    def shape(self) -> tuple[Any, ...] | None:
        """What ``_at_once`` needs to know to build the one statement that writes these rows
        (None: the outgoing messages do not all have the same columns)."""
        columns = {tuple(message) for message in self.messages}
        if len(columns) > 1:
            return None
        tables = tuple(
            (name, tuple(rows[0]), len(rows)) for name, rows in self.other.items() if rows
        )
        message_columns = columns.pop() if columns else ()
        return self.cancel, len(self.moves), tables, message_columns, len(self.messages)

    def parameters(self) -> dict[str, Any]:
        """The values for ``_at_once``'s statement, each row's under its own prefix."""
        params: dict[str, Any] = dict(self.cancel_params) if self.cancel else {}
        for i, move in enumerate(self.moves):
            params.update({f"move{i}_{key}": value for key, value in move.items()})
        for name, rows in self.other.items():
            for i, row in enumerate(rows):
                params.update({f"{name}{i}_{key}": value for key, value in row.items()})
        for i, message in enumerate(self.messages):
            params.update({f"m{i}_{key}": value for key, value in message.items()})
        return params


def _apply(
    unit: Unit,
    services: Services,
    row: Any,
    conversation: Any,
    outcome: Outcome,
    message_id: int,
    now: datetime,
) -> list[int]:
    """Write the new state and every effect, as ``apply_outcome`` does."""
    connection = unit.connection
    before = row._asdict()
    # The family's columns as plain attributes, for the programme and the outbox to read and
    # change like a Family's; what changed is written back with one UPDATE.
    family = cast(Family, FamilyView(before))
    family.last_inbound_at = now
    state = outcome.state
    rows = _Rows(family.id, now)
    if _sync_family(family, state.variables) and family.programme_start is not None:
        rows.moves = calendar_moves(connection, family, now)  # as reschedule
    week = state.variables.get("week")
    week = week if isinstance(week, int) else None
    for effect in outcome.effects:
        if isinstance(effect, Send):
            rows.messages.append(outbox_values(services, family, effect, now, message_id))
        elif isinstance(effect, SaveAnswer):
            rows.other["answers"].append(
                {
                    "family_id": family.id,
                    "flow": effect.flow,
                    "step": effect.step,
                    "question": effect.question,
                    "value": effect.value,
                    "message_id": message_id,
                    "week": week,
                    "created_at": now,
                }
            )
        elif isinstance(effect, RecordMeasure):
            rows.other["measures"].append(
                {
                    "family_id": family.id,
                    "name": effect.name,
                    "value": effect.value,
                    "flow": effect.flow,
                    "step": effect.step,
                    "week": week,
                    "recorded_at": now,
                }
            )
        elif isinstance(effect, RecordConsent):
            if effect.given:
                family.consent_at = family.consent_at or now
                family.status = "active"
            else:
                family.status = "declined"
            rows.other["consent_events"].append(
                {
                    "family_id": family.id,
                    "kind": "consent_given" if effect.given else "consent_declined",
                    "source": "parent reply",
                    "message_id": message_id,
                    "created_at": now,
                }
            )
            if effect.given:
                rows.other["programme"].extend(programme_rows(services, family, now))
        elif isinstance(effect, ScheduleWake | ScheduleFlow):
            wake = isinstance(effect, ScheduleWake)
            rows.other["due_work"].append(
                {
                    "family_id": family.id,
                    "kind": "wake" if wake else "start_flow",
                    "payload": (
                        {"reason": effect.reason, "flow": effect.flow, "step": effect.step}
                        if isinstance(effect, ScheduleWake)
                        else {"flow": effect.flow}
                    ),
                    "due_at": effect.at,
                    "done_at": None,
                    "outcome": None,
                    "created_at": now,
                }
            )
        elif isinstance(effect, CancelWakes):
            rows.cancel_wakes(bool(conversation.wakes_pending))
        elif isinstance(effect, RaiseAlert):
            text = _alert(connection, services, family, conversation, effect, message_id, now, rows)
            if text is not None:
                rows.messages.append(text)
        elif isinstance(effect, FlowEnded):
            log.info("family %s finished flow %s", family.ref, effect.flow)
        elif isinstance(effect, Note):
            log.info("family %s: %s", family.ref, effect.text)
    if family.opted_out_at is None:  # checkins.heard_from
        family.missed_check_ins = 0
        family.nudged_at = None
    shape = rows.shape() if connection.dialect.name == "postgresql" else None
    if shape is not None:
        _store_at_once(connection, family, before, state, rows, shape)
    else:
        _store(connection, family, before, state, rows, now)
        rows.write(connection)
    return sorted(rows.queued)


def _alert(
    connection: Connection,
    services: Services,
    family: Family,
    therapist: Any,
    effect: RaiseAlert,
    message_id: int,
    now: datetime,
    rows: _Rows,
) -> dict[str, Any] | None:
    """A therapist-only alert (see ``_handled_here``), as ``alerts.raise_alert`` records it: the
    alert (stored now, for its id), its "raised" and "sent" events, and the text to the
    therapist, returned for the outbox. While one of its kind is open for the family, only a
    "joined" event on that one (None: no text)."""
    found = prepared(connection, OPEN_ALERT).first(
        connection, {"family_id": family.id, "kind": effect.kind}
    )
    joined = alert_to_join(found, effect.urgency or rule_for(effect.kind).urgency)
    if joined is not None:
        rows.other["alert_events"].append(
            {
                "alert_id": joined,
                "kind": "joined",
                "staff_id": None,
                "role": None,
                "created_at": now,
            }
        )
        return None
    values = alert_values(
        services, family, effect.kind, effect.urgency, message_id, ("therapist",), now
    )
    statement = prepared(connection, NEW_ALERT[connection.dialect.name])
    alert_id = None
    for code in alert_codes():
        values["code"] = code
        alert_id = statement.scalar(connection, values)
        if alert_id is not None:
            break
    assert alert_id is not None, "twenty-one alert codes in a row were taken"
    events = rows.other["alert_events"]
    events.append(
        {"alert_id": alert_id, "kind": "raised", "staff_id": None, "role": None, "created_at": now}
    )
    events.append(
        {
            "alert_id": alert_id,
            "kind": "sent",
            "staff_id": therapist.therapist_found,
            "role": therapist.therapist_role,
            "created_at": now,
        }
    )
    body = alert_text(services, family.ref, effect.kind, values["urgency"], values["code"])
    due = text_due(services, values["urgency"], now)
    return staff_message_values(
        therapist.therapist_found, therapist.therapist_channel, body, ALERT_KEY, now, due=due
    )


@contextmanager
def _pipelined(connection: Connection) -> Iterator[None]:
    """On PostgreSQL, statements whose results are not read go in one round trip (psycopg's
    pipeline mode: sent together, executed in order, any error raised at the end of the block)."""
    dbapi_connection = connection.connection.dbapi_connection
    pipeline = getattr(dbapi_connection, "pipeline", None)
    if connection.dialect.name != "postgresql" or pipeline is None:
        yield
        return
    with pipeline():
        yield


def _state_values(family: Family, before: Any, state: ConversationState, now: datetime) -> Any:
    """STORE_STATE's values, and the family's changed columns with their values."""
    changed = tuple(name for name in FAMILY_FIELDS if getattr(family, name) != before[name])
    values = {
        "of_family": family.id,
        "new_flow": state.flow,
        "new_flow_version": state.version,
        "new_step": state.step,
        "new_waiting": state.waiting,
        "new_attempts": state.attempts,
        "new_variables": dict(state.variables),
        "new_updated_at": now,
    }
    values.update({f"new_{name}": getattr(family, name) for name in changed})
    return changed, values


def _store(
    connection: Connection,
    family: Family,
    before: Any,
    state: ConversationState,
    rows: _Rows,
    now: datetime,
) -> None:
    """The new state, the family's changed columns and the new rows other than messages."""
    changed, values = _state_values(family, before, state, now)
    prepared(connection, STORE_STATE).run(connection, values)
    if changed:
        prepared(connection, _family_update(changed)).run(connection, values)
    rows.write_others(connection)


def _store_at_once(
    connection: Connection,
    family: Family,
    before: Any,
    state: ConversationState,
    rows: _Rows,
    shape: tuple[Any, ...],
) -> None:
    """PostgreSQL: what ``_store`` and ``_Rows.write`` write, in one statement and one round trip.

    The state, the family's changed columns, a pending cancel of wake-ups, the calendar rows
    moved by a new session day or time, and each table's new rows are data-modifying ``WITH``
    clauses of the statement that inserts the replies. They all
    run on the same snapshot, so the cancel never touches a wake-up inserted beside it. It is
    the message's last write: ``rows`` is not read again, except for ``queued``.
    """
    changed, values = _state_values(family, before, state, rows.now)
    values.update(rows.parameters())
    statement = _at_once(connection.dialect, changed, *shape)
    if shape[-1]:
        rows.queued.extend(row[0] for row in statement.all(connection, values))
    else:
        statement.run(connection, values)


@lru_cache(maxsize=256)
def _at_once(
    dialect: Dialect,
    changed: tuple[str, ...],
    cancel: bool,
    moves: int,
    tables: tuple[tuple[str, tuple[str, ...], int], ...],
    message_columns: tuple[str, ...],
    message_count: int,
) -> Prepared:
    """``_store_at_once``'s statement, compiled once per shape: the columns the family changed,
    a cancel or not, the calendar rows moved, each table's columns and number of rows, the
    replies' columns and number."""
    ctes = [STORE_STATE.cte("new_state")]
    if changed:
        ctes.append(_family_update(changed).cte("family_changes"))
    if cancel:
        ctes.append(CANCEL_WAKES.cte("cancelled"))
    ctes.extend(move_by_id(f"move{i}_").cte(f"moved{i}") for i in range(moves))
    for name, columns, count in tables:
        table = INSERTED[name]
        values = [row_values(table, columns, f"{name}{i}_") for i in range(count)]
        ctes.append(insert(table).values(values).cte(f"new_{name}"))
    main: Any
    if message_count:
        values = [row_values(MESSAGES, message_columns, f"m{i}_") for i in range(message_count)]
        # Rows of one VALUES list are inserted, and given ids, in order.
        main = insert(MESSAGES).values(values).returning(MESSAGES.c.id)
    else:
        main = select(literal(True))
    return Prepared(main.add_cte(*ctes), dialect)
