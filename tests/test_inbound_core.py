"""The webhook's Core path writes exactly what the ORM path (``apply_outcome``) writes.

Two families answer the same messages at the same moments: one through ``service.inbound_core``,
the other forced through the ORM path. Their conversations, settings, answers, measures, timed
work, consent records and outgoing messages must come out the same.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Clock, enrol, inbound_form, post_signed
from sqlalchemy import select

from flows.effects import Send
from scheduler.tick import run_tick
from service import create_app, inbound_core
from service.alerts import ALERT_KEY, staff_message_values
from service.conversations import outbox_values, queue_message
from service.inbound import handle_inbound
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
)
from service.wiring import Services, build_services

CATALOG = Path(__file__).resolve().parent.parent / "messages" / "catalog"
CORE, ORM = "+447700900201", "+447700900202"
# Consent, onboarding's day, time, goal and rating (three answers that are not a number first:
# the third raises a "not understood" alert), then words the flow does not expect, keywords (one
# asks for a person: another alert; asking again joins it), a worse rating later on, a voice note
# and STOP/START (the last ones go the ORM way).
BODIES = [
    "Yes",
    "Monday",
    "18:00",
    "Getting to school without tears",
    "lots",
    "lots",
    "lots",
    "3",
    "ok thanks",
    "What do we do this week?",
    "HELP",
    "talk to someone",
    "call me",
    "Thank you",
]
# A week on: the first session's questions (answers and ratings with a week), then STOP and START.
LATER = ["3", "Yes", "It went well", "ok"]
# Day by day to the week's check-in (questions with reminders), its answers, then STOP and START.
CHECK_IN = ["4", "Yes", "It went well", "3", "2", "ok", "STOP", "START", "9"]


def _rows(services: Services, phone: str) -> dict[str, Any]:
    with services.db.transaction() as session:
        family = session.scalar(select(Family).where(Family.phone == phone))
        assert family is not None
        fid = family.id

        def key(value: str | None) -> str | None:
            """A dedupe key (``kind:family_id:...``) without the family's id."""
            if not value:
                return value
            parts = value.split(":")
            parts[1] = "F" if parts[1] == str(fid) else parts[1]
            return ":".join(parts)

        settings = {
            name: getattr(family, name)
            for name in inbound_core.FAMILY_FIELDS
            if name not in ("id", "ref", "phone", "created_at", "therapist_id")
        }
        conversation = session.get(Conversation, fid)
        assert conversation is not None
        messages = session.scalars(
            select(Message).where(Message.family_id == fid).order_by(Message.id)
        ).all()
        alerts = session.scalars(
            select(Alert).where(Alert.family_id == fid).order_by(Alert.id)
        ).all()
        codes = {a.code: f"<alert {i}>" for i, a in enumerate(alerts)}

        def anonymous(text: str) -> str:
            """An alert's words without the family's reference and the alert's code."""
            text = text.replace(family.ref, "<family>")
            for code, name in codes.items():
                text = text.replace(code, name)
            return text

        alert_texts = session.scalars(
            select(Message)
            .where(Message.catalogue_key == ALERT_KEY, Message.body.contains(family.ref))
            .order_by(Message.id)
        ).all()
        return {
            "family": settings,
            "conversation": (
                conversation.flow,
                conversation.flow_version,
                conversation.step,
                conversation.waiting,
                conversation.attempts,
                conversation.variables,
                conversation.updated_at,
            ),
            "answers": [
                (a.flow, a.step, a.question, a.value, a.week, a.created_at, a.message_id is None)
                for a in session.scalars(
                    select(Answer).where(Answer.family_id == fid).order_by(Answer.id)
                )
            ],
            "measures": [
                (m.name, m.value, m.flow, m.step, m.week, m.recorded_at)
                for m in session.scalars(
                    select(Measure).where(Measure.family_id == fid).order_by(Measure.id)
                )
            ],
            "due_work": sorted(
                (
                    w.kind,
                    repr(w.payload),
                    w.due_at,
                    key(w.dedupe_key) or "",
                    repr(w.done_at),
                    w.outcome or "",
                    w.created_at,
                )
                for w in session.scalars(select(DueWork).where(DueWork.family_id == fid))
            ),
            "consent": [
                (c.kind, c.source, c.created_at, c.message_id is None)
                for c in session.scalars(
                    select(ConsentEvent)
                    .where(ConsentEvent.family_id == fid)
                    .order_by(ConsentEvent.id)
                )
            ],
            "messages": [
                (
                    m.direction,
                    m.channel,
                    m.body,
                    m.media,
                    m.catalogue_key,
                    m.flow,
                    m.step,
                    m.quick_replies,
                    m.segments,
                    m.status,
                    m.reply,
                    m.in_reply_to is None,
                    m.due_at,
                    m.created_at,
                )
                for m in messages
            ],
            "alerts": [
                (
                    a.staff_id == family.therapist_id,
                    a.kind,
                    a.urgency,
                    a.status,
                    # The parent's message that raised it.
                    getattr(session.get(Message, a.source_message_id or 0), "body", None),
                    a.due_by,
                    a.level,
                    a.created_at,
                    [
                        (e.kind, e.staff_id, e.role, e.created_at)
                        for e in session.scalars(
                            select(AlertEvent)
                            .where(AlertEvent.alert_id == a.id)
                            .order_by(AlertEvent.id)
                        )
                    ],
                )
                for a in alerts
            ],
            "alert texts": [
                (
                    m.staff_id,
                    m.channel,
                    anonymous(m.body or ""),
                    m.catalogue_key,
                    m.segments,
                    m.status,
                    m.reply,
                    m.dedupe_key,
                    m.due_at,
                    m.created_at,
                    # Sent after the alert was raised, before the reply to the parent.
                    sum(1 for r in messages if r.id < m.id),
                )
                for m in alert_texts
            ],
        }


def test_core_path_writes_what_the_orm_path_writes(
    services: Services, client: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    enrol(services, phone=CORE)
    enrol(services, phone=ORM)
    run_tick(services)
    handled = {"core": 0, "orm": 0}
    by_core: list[str] = []
    real = inbound_core.handle

    def handle(session: Any, svc: Services, found: inbound_core.Found, *args: Any) -> Any:
        if found.family.phone == ORM:
            return None  # this family goes the ORM way
        queued = real(session, svc, found, *args)
        handled["core" if queued is not None else "orm"] += 1
        if queued is not None:
            by_core.append(args[1])  # the message's words
        return queued

    monkeypatch.setattr(inbound_core, "handle", handle)
    for body in [*BODIES, "", *LATER, *[None] * 4, *CHECK_IN]:
        if not body:
            clock.advance(days=1 if body is None else 7)
            run_tick(services)
            continue
        for phone in (CORE, ORM):
            assert (
                post_signed(client, "/twilio/messages", inbound_form(phone, body)).status_code
                == 200
            )
        clock.advance(minutes=7)
    assert handled["core"] >= 8  # the ordinary answers took the Core path
    core, orm = _rows(services, CORE), _rows(services, ORM)
    # Both alerts (the third "lots", and "talk to someone") went the Core way, each with a text.
    assert [a[1] for a in core["alerts"]] == ["not_understood", "asked_for_person"]
    assert [a[4] for a in core["alerts"]] == ["lots", "talk to someone"]
    assert by_core.count("lots") == 3 and "talk to someone" in by_core and "call me" in by_core
    assert len(core["alert texts"]) == 2
    assert [e[0] for e in core["alerts"][1][-1]] == ["raised", "sent", "joined"]
    for part in core:
        assert core[part] == orm[part], part


@pytest.fixture
def with_audio(settings: Any, clock: Clock, tmp_path: Path) -> Services:
    catalog = tmp_path / "catalog"
    shutil.copytree(CATALOG, catalog)
    (catalog / "audio" / "en").mkdir(parents=True, exist_ok=True)
    (catalog / "audio" / "en" / "welcome.mp3").write_bytes(b"ID3 not really audio")
    path = catalog / "en.yaml"
    data = yaml.safe_load(path.read_text())
    welcome = data["onboarding"]["welcome"]
    text = welcome["text"] if isinstance(welcome, dict) else welcome
    data["onboarding"]["welcome"] = {"text": text, "audio": "welcome.mp3"}
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return build_services(replace(settings, messages_dir=catalog), clock=clock)


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
@pytest.mark.parametrize("audio", [False, True])
def test_outgoing_rows_are_queue_messages_rows(
    with_audio: Services, channel: str, audio: bool
) -> None:
    services = with_audio
    create_app(services)
    enrol(services, channel=channel)
    sends = [
        Send("onboarding.welcome", {"child_name": "Sam"}, "onboarding", "welcome"),
        Send("onboarding.welcome", {"child_name": "Sam"}, "onboarding", "welcome", reply=True),
        Send(
            "onboarding.welcome",
            {"child_name": "Sam"},
            "onboarding",
            "welcome",
            media="https://example.invalid/a.png",
            quick_replies=("Yes", "No"),
        ),
        Send("system.help", {}, "", ""),
    ]
    now = services.now()
    with services.db.transaction() as session:
        family = session.scalar(select(Family))
        assert family is not None
        family.prefers_audio = audio
        family.quiet_hours = "00:00-23:59"  # so non-replies wait: due_at differs from now
        for send in sends:
            expected = queue_message(session, services, family, send, now, None)
            row = outbox_values(services, family, send, now, None)
            for name, value in row.items():
                assert getattr(expected, name) == value, name
            # An alert's text to staff has the same columns in the same order, so the webhook
            # inserts it in the same statement as the replies (one statement shape).
            staff_row = staff_message_values(1, channel, "alert", ALERT_KEY, now)
            assert tuple(staff_row) == tuple(row)
        session.rollback()


STALE, IN_ORDER = "+447700900203", "+447700900204"


def test_a_plan_made_from_a_stale_read_is_redone_under_the_lock(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite decides a message before taking the writers' lock. If another message of the family
    is handled in between, the first is decided again from the new state: the family ends up as
    if the two had come one after the other, with nothing applied twice or overwritten."""
    if not services.db.is_sqlite:
        pytest.skip("PostgreSQL locks the family before reading; there is no plan")
    enrol(services, phone=STALE)
    enrol(services, phone=IN_ORDER)
    run_tick(services)
    decided: list[str] = []
    real_decide, real_plan = inbound_core.decide, inbound_core.plan

    def decide(svc: Services, row: Any, conversation: Any, body: str, *args: Any) -> Any:
        decided.append(body)
        return real_decide(svc, row, conversation, body, *args)

    overtaken: list[str] = []

    def plan(connection: Any, svc: Services, phone: str, body: str, *args: Any) -> Any:
        planned = real_plan(connection, svc, phone, body, *args)
        if phone == STALE and body == "Monday" and not overtaken:
            # Another message of the family is handled after the read, before the lock.
            overtaken.append(body)
            assert not handle_inbound(svc, inbound_form(STALE, "Yes")).duplicate
        return planned

    monkeypatch.setattr(inbound_core, "decide", decide)
    monkeypatch.setattr(inbound_core, "plan", plan)
    # The same two messages, one after the other: consent first, then the session day.
    for body in ("Yes", "Monday"):
        assert not handle_inbound(services, inbound_form(IN_ORDER, body)).duplicate
    assert decided == ["Yes", "Monday"]  # each decided once: the unlocked plan was used
    decided.clear()
    result = handle_inbound(services, inbound_form(STALE, "Monday"))
    assert overtaken == ["Monday"] and not result.duplicate
    # "Monday" was decided from the state before consent, then again after "Yes" was handled.
    assert decided == ["Monday", "Yes", "Monday"]
    stale, in_order = _rows(services, STALE), _rows(services, IN_ORDER)
    for part in stale:
        assert stale[part] == in_order[part], part
    with services.db.transaction() as session:
        family = session.scalar(select(Family).where(Family.phone == STALE))
        assert family is not None and family.session_day is not None


def test_a_repeated_message_is_not_redone_after_its_plan(services: Services) -> None:
    """A plan made for a MessageSid already stored is dropped: the repeat changes nothing."""
    enrol(services, phone=STALE)
    run_tick(services)
    form = inbound_form(STALE, "Yes")
    assert not handle_inbound(services, form).duplicate
    before = _rows(services, STALE)
    assert handle_inbound(services, form).duplicate
    assert _rows(services, STALE) == before


def _ask_for_a_person(services: Services, client: Any, phone: str) -> list[Alert]:
    """Consent, then "talk to someone"; the family's alerts."""
    for body in ("Yes", "talk to someone"):
        assert post_signed(client, "/twilio/messages", inbound_form(phone, body)).status_code == 200
    with services.db.transaction() as session:
        return list(session.scalars(select(Alert).order_by(Alert.id)))


def test_an_alert_code_already_taken_is_not_used_again(
    services: Services, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    enrol(services, phone=CORE)
    enrol(services, phone=ORM)
    run_tick(services)
    [first] = _ask_for_a_person(services, client, CORE)
    # The next alert's first code is the one just given out: the insert skips it for the next.
    monkeypatch.setattr(inbound_core, "alert_codes", lambda: iter([first.code, "ZZ9Q"]))
    alerts = _ask_for_a_person(services, client, ORM)
    assert [a.code for a in alerts] == [first.code, "ZZ9Q"]
    assert alerts[1].source_message_id is not None


def test_an_alert_for_a_therapist_no_longer_active_goes_the_orm_way(
    services: Services, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    enrol(services, phone=CORE)
    run_tick(services)
    with services.db.transaction() as session:
        family = session.scalar(select(Family))
        assert family is not None and family.therapist is not None
        family.therapist.active = False
    taken: list[bool] = []
    real = inbound_core.handle

    def handle(*args: Any) -> Any:
        queued = real(*args)
        taken.append(queued is not None)
        return queued

    monkeypatch.setattr(inbound_core, "handle", handle)
    [alert] = _ask_for_a_person(services, client, CORE)
    assert taken == [True, False]  # consent the Core way; the alert the ORM way
    with services.db.transaction() as session:
        events = session.scalars(select(AlertEvent.kind).where(AlertEvent.alert_id == alert.id))
        assert list(events) == ["raised"]  # recorded, and nobody was texted
