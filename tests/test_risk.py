"""Risk through the public surface: signed webhooks in, replies and alerts out, counted at the
Twilio stand-in; the programme held until a person resumes it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import Clock, enrol, inbound_form, post_signed
from sqlalchemy import select
from test_alerts import DUTY, LEAD, SAFEGUARDING, code_in, rota
from test_schedule import DATA, PROGRAMME_KEYS, consent, run_until, sent

from scheduler.tick import run_tick
from service import create_app
from service.models import Alert, Family, Message
from service.wiring import Services, build_services

EVERYDAY = [
    "7",
    "yes",
    "tuesday at 6",
    "she is scared of dying since grandad passed",
    "he's terrified of dogs",
    "this homework is killing me lol",
    "I'm dead tired tonight",
    "she worries I will get ill",
    "we tried the step today and it went ok",
    "he cried at the school gate again",
]


def test_self_harm_gets_the_numbers_and_the_therapist_at_once(
    services: Services, client: Any, standin: Any, clock: Clock
) -> None:
    clock.now = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)  # staffed
    family = enrol(services, child_name="Rosalind")
    run_tick(services)
    text = "rosalind said she wants to kill herself"
    assert (
        post_signed(client, "/twilio/messages", inbound_form(family.phone, text)).status_code == 200
    )
    reply = standin.sent_to(family.phone)[-1].body
    # About the child: keep her close, NHS 111 option 2, Childline.
    assert "Stay close to Rosalind" in reply and "111, option 2" in reply and "0800 1111" in reply
    [alert] = standin.sent_to(family.therapist_phone)
    assert family.ref in alert.body and "self harm" in alert.body and "urgent" in alert.body
    assert "Rosalind" not in alert.body and "kill" not in alert.body
    with services.db.transaction() as session:
        fam = session.scalar(select(Family))
        stored = session.scalar(select(Alert))
    assert fam is not None and fam.status == "held"
    assert stored is not None and stored.created_at == clock.now

    # ACK stops the escalation.
    post_signed(
        client,
        "/twilio/messages",
        inbound_form(family.therapist_phone, f"ACK {code_in(alert.body)}"),
    )
    clock.advance(days=2)
    run_tick(services)
    assert len(standin.sent_to(family.therapist_phone)) == 1


def test_immediate_danger_at_2am(
    services: Services, client: Any, standin: Any, clock: Clock
) -> None:
    rota(services)
    clock.now = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)
    family = enrol(services)
    run_tick(services)
    post_signed(client, "/twilio/messages", inbound_form(family.phone, "hes outside with a knife"))
    replies = [m.body for m in standin.sent_to(family.phone)]
    assert any("999" in body and "55" in body for body in replies)
    assert any("not reading messages right now" in body for body in replies)  # unstaffed hours
    assert len(standin.sent_to(DUTY)) == 1 and len(standin.sent_to(SAFEGUARDING)) == 1
    assert standin.sent_to(LEAD) == []
    clock.advance(minutes=15)
    run_tick(services)
    assert len(standin.sent_to(LEAD)) == 1


def test_everyday_worries_raise_nothing(services: Services, client: Any, standin: Any) -> None:
    family = enrol(services)
    run_tick(services)
    for text in EVERYDAY:
        post_signed(client, "/twilio/messages", inbound_form(family.phone, text))
    with services.db.transaction() as session:
        kinds = set(session.scalars(select(Alert.kind)).all())
    # Answers the consent question cannot read lead, as they should, to "not understood"; the
    # model may ask the therapist to read a borderline one (the review tier), never alert.
    assert kinds <= {"not_understood", "please_read"}
    with services.db.transaction() as session:
        keys = session.scalars(
            select(Message.catalogue_key).where(Message.direction == "out")
        ).all()
    assert not any((key or "").startswith("risk.") for key in keys)


def test_a_risky_answer_is_screened_before_the_question(
    services: Services, client: Any, standin: Any
) -> None:
    family = enrol(services)
    run_tick(services)
    post_signed(
        client, "/twilio/messages", inbound_form(family.phone, "yes but I can't cope anymore")
    )
    with services.db.transaction() as session:
        fam = session.scalar(select(Family))
        kinds = session.scalars(select(Alert.kind)).all()
    assert kinds == ["parent_distress"]
    assert fam is not None and fam.consent_at is None  # the question still stands


@pytest.fixture
def programme(settings: Any, clock: Clock) -> Services:
    return build_services(
        replace(settings, flows_dir=DATA / "flows", messages_dir=DATA / "catalog"), clock=clock
    )


def test_the_programme_waits_until_a_person_resumes_it(
    programme: Services, clock: Clock, standin: Any
) -> None:
    clock.now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    phone = "+447700900123"
    consent(programme, clock, phone, session_day="monday", session_time="18:00")
    run_until(programme, clock, datetime(2026, 3, 10, 10, 0, tzinfo=UTC))  # week 1, Tuesday
    client = create_app(programme).test_client()
    post_signed(
        client,
        "/twilio/messages",
        inbound_form(phone, "I have cuts on my arms again, I did it last night"),
    )
    before = len([m for m in sent(programme) if m.catalogue_key in PROGRAMME_KEYS])
    run_until(programme, clock, datetime(2026, 3, 24, 10, 0, tzinfo=UTC))  # two weeks pass
    held = len([m for m in sent(programme) if m.catalogue_key in PROGRAMME_KEYS])
    assert held == before
    code = code_in(standin.sent_to("+447700900555")[-1].body)
    post_signed(client, "/twilio/messages", inbound_form("+447700900555", f"RESUME {code}"))
    run_until(programme, clock, clock.now + timedelta(weeks=9))
    weekly = [m for m in sent(programme) if m.catalogue_key in PROGRAMME_KEYS]
    assert len(weekly) == 24  # nothing lost, nothing twice
    assert weekly[before].sent_at.date().isoformat() == "2026-03-25"  # week 1's Wednesday step


ROWS = [
    # category, a message, words the reply must carry, roles alerted first
    (
        "immediate_danger",
        "I've taken all my tablets",
        ["999", "111", "85258"],
        {"duty", "safeguarding"},
    ),
    (
        "child_protection",
        "her uncle touched her and told her to keep it secret",
        ["0808 800 5000", "0800 1111"],
        {"safeguarding", "therapist"},
    ),
    ("self_harm", "he says he wants to die", ["111, option 2", "0800 1111"], {"therapist"}),
    ("self_harm", "i just want to die", ["111", "116 123", "85258"], {"therapist"}),
    ("domestic_abuse", "my partner hits me when he's drunk", ["0808 2000 247"], {"therapist"}),
    (
        "parent_distress",
        "I can't cope anymore, I'm falling apart",
        ["Talking Therapies"],
        {"therapist"},
    ),
]


@pytest.mark.parametrize(
    ("category", "text", "numbers", "roles"), ROWS, ids=[f"{r[0]}-{i}" for i, r in enumerate(ROWS)]
)
def test_every_row_of_the_risk_table(
    services: Services,
    client: Any,
    standin: Any,
    clock: Clock,
    category: str,
    text: str,
    numbers: list[str],
    roles: set[str],
) -> None:
    rota(services)
    clock.now = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)  # staffed hours
    family = enrol(services)
    run_tick(services)
    post_signed(client, "/twilio/messages", inbound_form(family.phone, text))
    reply = standin.sent_to(family.phone)[-1].body
    for number in numbers:
        assert number in reply, (category, reply)
    phones = {"therapist": family.therapist_phone, "duty": DUTY, "safeguarding": SAFEGUARDING}
    told = {role for role, phone in phones.items() if standin.sent_to(phone)}
    assert told == roles
    with services.db.transaction() as session:
        alert = session.scalar(select(Alert))
        fam = session.scalar(select(Family))
    assert alert is not None and alert.kind == category
    urgent = category in ("immediate_danger", "child_protection", "self_harm")
    assert (alert.urgency == "urgent") == urgent
    assert fam is not None and (fam.status == "held") == urgent
