"""Screening through the public surface: signed webhooks in, replies and alerts out at the Twilio
stand-in. The kinds of disclosure a fresh audit found missed, the review tier, child or parent,
media a screener cannot read, and requests for a person in any words."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import Clock, enrol, inbound_form, post_signed
from sqlalchemy import select
from test_alerts import DUTY, SAFEGUARDING, rota

from flows.risk_model import RiskModel
from flows.screening import load_patterns
from scheduler.tick import run_tick
from service.models import Alert, Message
from service.wiring import RISK_DIR, Services

STAFFED = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)  # a Tuesday morning

# (message, the category it must alert as at least, a number the reply must carry)
MISSED_BEFORE = [
    ("call 999 plz hes back n hes kickin the door in", "immediate_danger", "999"),
    ("ring 999 pls", "immediate_danger", "999"),
    ("got all the tablets out in front of me", "immediate_danger", "999"),
    ("some man on a game asking my 9yo for photos", "child_protection", "0808 800 5000"),
    ("he s*xually touched her", "child_protection", "0808 800 5000"),
    ("found cuts all over her arms when she was in the bath", "self_harm", "111"),
    ("she wants to 💀 herself", "self_harm", "111"),
    ("cant cope no more wiv any of it", "parent_distress", "116 123"),
]
URGENCY = ["immediate_danger", "child_protection", "self_harm", "domestic_abuse", "parent_distress"]


def _alerts(services: Services) -> list[Alert]:
    with services.db.transaction() as session:
        return list(session.scalars(select(Alert).order_by(Alert.id)))


@pytest.mark.parametrize(("text", "category", "number"), MISSED_BEFORE)
def test_disclosures_an_audit_found_missed_now_alert(
    services: Services,
    client: Any,
    standin: Any,
    clock: Clock,
    text: str,
    category: str,
    number: str,
) -> None:
    rota(services)
    clock.now = STAFFED
    family = enrol(services, child_name="Rosalind")
    run_tick(services)
    assert (
        post_signed(client, "/twilio/messages", inbound_form(family.phone, text)).status_code == 200
    )
    [alert] = _alerts(services)
    assert URGENCY.index(alert.kind) <= URGENCY.index(category), (text, alert.kind)
    assert alert.rule  # what raised it, for the clinical safety officer
    assert any(number in m.body for m in standin.sent_to(family.phone))
    words = {w for w in text.lower().split() if len(w) >= 6}
    for phone in (family.therapist_phone, DUTY, SAFEGUARDING):
        for sent in standin.sent_to(phone):  # phones are shared: no name, no words
            assert "rosalind" not in sent.body.lower()
            assert not words & set(sent.body.lower().split()), sent.body


def test_alert_texts_carry_neither_name_nor_words(
    services: Services, client: Any, standin: Any, clock: Clock
) -> None:
    rota(services)
    clock.now = STAFFED
    family = enrol(services, child_name="Rosalind")
    run_tick(services)
    text = "rosalind told me grandad makes her keep secrets about bath time"
    post_signed(client, "/twilio/messages", inbound_form(family.phone, text))
    staff_texts = [
        m.body for p in (family.therapist_phone, SAFEGUARDING) for m in standin.sent_to(p)
    ]
    assert staff_texts
    for body in staff_texts:
        assert family.ref in body
        assert "Rosalind" not in body and "rosalind" not in body
        for word in ("grandad", "secrets", "bath"):
            assert word not in body.lower()


def test_self_harm_about_the_child_and_the_parent_get_different_replies(
    services: Services, client: Any, standin: Any, clock: Clock
) -> None:
    clock.now = STAFFED
    child = enrol(services, phone="+447700900123", child_name="Ava")
    parent = enrol(services, phone="+447700900124", child_name="Ben")
    run_tick(services)
    post_signed(client, "/twilio/messages", inbound_form(child.phone, "ava said she wants to die"))
    post_signed(client, "/twilio/messages", inbound_form(parent.phone, "i want to kill myself"))
    about_child = standin.sent_to(child.phone)[-1].body
    about_parent = standin.sent_to(parent.phone)[-1].body
    assert "Stay close to Ava" in about_child and "0800 1111" in about_child
    assert "111, option 2" in about_child and "Put away" in about_child
    assert "116 123" in about_parent and "85258" in about_parent and "111" in about_parent
    assert about_child != about_parent


def test_domestic_abuse_reply_is_discreet(
    services: Services, client: Any, standin: Any, clock: Clock
) -> None:
    clock.now = STAFFED
    family = enrol(services)
    run_tick(services)
    post_signed(client, "/twilio/messages", inbound_form(family.phone, "my partner hits me"))
    reply = standin.sent_to(family.phone)[-1].body
    assert "abuse" not in reply.lower()[:60]  # what a notification preview shows
    assert "0808 2000 247" in reply and "delete" in reply.lower() and "999" in reply


def test_parent_distress_gives_samaritans(
    services: Services, client: Any, standin: Any, clock: Clock
) -> None:
    clock.now = STAFFED
    family = enrol(services)
    run_tick(services)
    post_signed(client, "/twilio/messages", inbound_form(family.phone, "im falling apart"))
    assert "116 123" in standin.sent_to(family.phone)[-1].body


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [("audio/ogg", "please_listen"), ("image/jpeg", "please_look"), ("video/mp4", "please_look")],
)
def test_media_from_a_parent_asks_the_therapist_to_listen_or_look(
    services: Services, client: Any, standin: Any, clock: Clock, content_type: str, kind: str
) -> None:
    clock.now = STAFFED
    family = enrol(services, child_name="Rosalind")
    run_tick(services)
    form = inbound_form(
        family.phone,
        "",
        NumMedia="1",
        MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
        MediaContentType0=content_type,
    )
    assert post_signed(client, "/twilio/messages", form).status_code == 200
    [alert] = _alerts(services)
    assert alert.kind == kind and alert.urgency == "routine"
    [text] = standin.sent_to(family.therapist_phone)
    assert family.ref in text.body and "Rosalind" not in text.body


@pytest.mark.parametrize(
    "text",
    [
        "can someone call me please",
        "call me pls",
        "I need to speak to Jo",
        "can I talk to a real person",
        "could my therapist give me a ring tomorrow",
    ],
)
def test_asking_for_a_person_in_any_words_reaches_the_therapist(
    services: Services, client: Any, standin: Any, clock: Clock, text: str
) -> None:
    clock.now = STAFFED
    family = enrol(services)
    run_tick(services)
    post_signed(client, "/twilio/messages", inbound_form(family.phone, text))
    assert [a.kind for a in _alerts(services)] == ["asked_for_person"]
    assert len(standin.sent_to(family.therapist_phone)) == 1


def test_three_person_requests_in_a_minute_make_one_alert_and_one_text(
    services: Services, client: Any, standin: Any, clock: Clock
) -> None:
    clock.now = STAFFED
    family = enrol(services)
    run_tick(services)
    for text in ("can someone call me", "call me pls", "please ring me asap"):
        post_signed(client, "/twilio/messages", inbound_form(family.phone, text))
        clock.advance(seconds=20)
    assert [a.kind for a in _alerts(services)] == ["asked_for_person"]
    assert len(standin.sent_to(family.therapist_phone)) == 1


@pytest.fixture
def borderline(services: Services) -> Services:
    """The service with a model that finds "wobbly" borderline and nothing else risky."""
    patterns = load_patterns(RISK_DIR, models=False)
    classes = ["none", "person", *URGENCY]
    model = RiskModel(
        {
            "format": 1,
            "version": "en-test",
            "trained_on": "-",
            "classes": classes,
            "intercept": [3.0, 0, 0, 0, 0, 0, 0],
            "weights": {"w:wobbly": [0, 0, 0, 0, 0, 0, 40.0]},
            "thresholds": {"alert": {c: 0.99 for c in classes[1:]}, "review": 0.4},
        }
    )
    return replace(services, risk=patterns.with_models({"en": model}))


def test_a_borderline_message_gets_the_normal_reply_a_help_line_and_a_please_read(
    borderline: Services, standin: Any, clock: Clock
) -> None:
    from service import create_app

    clock.now = STAFFED
    family = enrol(borderline)
    run_tick(borderline)
    client = create_app(borderline).test_client()
    post_signed(client, "/twilio/messages", inbound_form(family.phone, "feeling a bit wobbly"))
    [alert] = _alerts(borderline)
    assert alert.kind == "please_read" and alert.urgency == "routine"
    assert alert.rule == "model:en-test" and alert.score is not None and alert.score > 0.4
    with borderline.db.transaction() as session:
        keys = session.scalars(
            select(Message.catalogue_key)
            .where(Message.direction == "out", Message.family_id.is_not(None))
            .order_by(Message.id)
        ).all()
    assert keys[-1] == "review.parent_distress"
    assert keys[-2] is not None and not keys[-2].startswith(("risk.", "review."))  # the flow's
    assert "116 123" in standin.sent_to(family.phone)[-1].body
