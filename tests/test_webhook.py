"""The inbound webhook through the app, signed as Twilio signs, on every database."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from conftest import (
    PUBLIC_URL,
    Clock,
    Enrolled,
    enrol,
    inbound_form,
    post_signed,
    sign,
)
from sqlalchemy import func, select

from scheduler.tick import run_tick
from service.models import Answer, ConsentEvent, Conversation, Family, Message
from service.wiring import Services


def count(services: Services, *where: Any) -> int:
    with services.db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(Message).where(*where)) or 0)


def family_row(services: Services, ref: str) -> Family:
    with services.db.transaction() as session:
        family = session.scalar(select(Family).where(Family.ref == ref))
        assert family is not None
        return family


def started(services: Services) -> Enrolled:
    """An enrolled family whose opening message has gone out."""
    family = enrol(services)
    run_tick(services)
    return family


def test_opening_message_then_yes_starts_the_programme(
    services: Services, client: Any, standin: Any
) -> None:
    family = started(services)
    opening = standin.sent_to(family.phone)
    assert len(opening) == 1
    assert "Reply YES or NO" in opening[0].body
    assert "Sam" in opening[0].body

    response = post_signed(client, "/twilio/messages", inbound_form(family.phone, "Yes!"))
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    bodies = [m.body for m in standin.sent_to(family.phone)]
    assert bodies[1].startswith("Thank you. We will send 3 short texts")
    assert "999" in bodies[2]
    assert family_row(services, family.ref).consent_at is not None
    with services.db.transaction() as session:
        kinds = session.scalars(select(ConsentEvent.kind)).all()
    assert kinds == ["consent_given"]


def test_nothing_from_the_programme_before_yes(
    services: Services, client: Any, standin: Any
) -> None:
    family = started(services)
    post_signed(client, "/twilio/messages", inbound_form(family.phone, "what is this"))
    post_signed(client, "/twilio/messages", inbound_form(family.phone, "NO"))
    keys = [m.catalogue_key for m in _out(services, family)]
    assert keys == ["onboarding.welcome", "onboarding.consent_help", "onboarding.declined"]
    assert family_row(services, family.ref).consent_at is None
    assert family_row(services, family.ref).status == "declined"


def _out(services: Services, family: Enrolled) -> list[Message]:
    with services.db.transaction() as session:
        fam = session.scalar(select(Family).where(Family.ref == family.ref))
        assert fam is not None
        return list(
            session.scalars(
                select(Message)
                .where(Message.family_id == fam.id, Message.direction == "out")
                .order_by(Message.id)
            )
        )


def test_forged_signature_is_refused_and_changes_nothing(
    services: Services, client: Any, standin: Any
) -> None:
    family = started(services)
    form = inbound_form(family.phone, "YES")
    before = count(services)
    forged = client.post(
        "/twilio/messages",
        data=urlencode(form),
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": sign(PUBLIC_URL + "/twilio/messages", form, "0" * 32)},
    )
    missing = client.post("/twilio/messages", data=form)
    tampered_form = dict(form, Body="NO")
    tampered = client.post(
        "/twilio/messages",
        data=urlencode(tampered_form),
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": sign(PUBLIC_URL + "/twilio/messages", form)},
    )
    wrong_url = client.post(
        "/twilio/messages",
        data=urlencode(form),
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": sign("http://bravesteps.test/twilio/messages", form)},
    )
    assert [r.status_code for r in (forged, missing, tampered, wrong_url)] == [403] * 4
    assert count(services) == before
    assert len(standin.sent_to(family.phone)) == 1
    assert family_row(services, family.ref).consent_at is None


def test_status_callback_needs_a_signature_too(services: Services, client: Any) -> None:
    response = client.post(
        "/twilio/status", data={"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered"}
    )
    assert response.status_code == 403


def test_same_message_sid_twice_gets_one_reply(
    services: Services, client: Any, standin: Any, clock: Clock
) -> None:
    family = started(services)
    form = inbound_form(family.phone, "yes")
    first = post_signed(client, "/twilio/messages", form)
    sent_after_first = len(standin.sent_to(family.phone))
    heard_at = family_row(services, family.ref).last_inbound_at
    assert heard_at is not None
    clock.advance(minutes=5)  # Twilio retries a while later
    second = post_signed(client, "/twilio/messages", form)
    assert family_row(services, family.ref).last_inbound_at == heard_at  # nothing changed
    assert first.status_code == second.status_code == 200
    assert "<Message>" not in second.get_data(as_text=True)
    assert len(standin.sent_to(family.phone)) == sent_after_first
    assert count(services, Message.direction == "in") == 1
    with services.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(ConsentEvent)) == 1


def test_stop_means_nothing_more_until_start(services: Services, client: Any, standin: Any) -> None:
    family = started(services)
    post_signed(client, "/twilio/messages", inbound_form(family.phone, "yes"))
    sent = len(standin.sent_to(family.phone))
    post_signed(client, "/twilio/messages", inbound_form(family.phone, "STOP"))
    stop_reply = standin.sent_to(family.phone)[sent:]
    assert [m.body for m in stop_reply] == [
        "You will get no more messages from bravesteps. If you change your mind, reply START."
    ]
    # Anything else, timed work included, sends nothing; a second STOP is not confirmed again.
    for text in ("Tuesday", "hello?", "stop", "HELP"):
        post_signed(client, "/twilio/messages", inbound_form(family.phone, text))
    run_tick(services)
    assert len(standin.sent_to(family.phone)) == sent + 1
    assert family_row(services, family.ref).opted_out
    # START brings them back, and the conversation carries on where it was.
    post_signed(client, "/twilio/messages", inbound_form(family.phone, "start"))
    post_signed(client, "/twilio/messages", inbound_form(family.phone, "Tuesday"))
    later = [m.body for m in standin.sent_to(family.phone)[sent + 1 :]]
    assert later[0].startswith("Welcome back")
    assert later[1].startswith("Which day is best")  # the open question, asked again
    assert later[2].startswith("What time of day is best?")
    assert not family_row(services, family.ref).opted_out


@pytest.mark.parametrize(
    "word", ["STOP", "stop.", "Unsubscribe", "cancel", "END", "quit", "stopall"]
)
def test_stop_synonyms(services: Services, client: Any, standin: Any, word: str) -> None:
    family = started(services)
    post_signed(client, "/twilio/messages", inbound_form(family.phone, word))
    assert family_row(services, family.ref).opted_out


def test_help_gives_the_crisis_numbers_and_keeps_the_place(
    services: Services, client: Any, standin: Any
) -> None:
    family = started(services)
    post_signed(client, "/twilio/messages", inbound_form(family.phone, "help"))
    reply = standin.sent_to(family.phone)[-1].body
    for number in ("999", "111", "85258"):
        assert number in reply
    post_signed(client, "/twilio/messages", inbound_form(family.phone, "yes"))
    assert family_row(services, family.ref).consent_at is not None


def test_unknown_number_gets_one_polite_line(services: Services, client: Any, standin: Any) -> None:
    family = started(services)
    response = post_signed(
        client, "/twilio/messages", inbound_form("+447700900999", "hello, is Sam ok?")
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert body.count("<Message>") == 1
    assert "do not know this number" in body
    assert "Sam" not in body and family.ref not in body
    assert standin.sent_to("+447700900999") == []
    with services.db.transaction() as session:
        stored = session.scalar(select(Message).where(Message.family_id.is_(None)))
        assert stored is not None and stored.body is None  # a stranger's words are not kept


def test_whatsapp_family(services: Services, client: Any, standin: Any) -> None:
    family = enrol(services, phone="+447700900321", channel="whatsapp")
    run_tick(services)
    # The parent has never written: WhatsApp needs a template, none is mapped, so SMS it is.
    assert standin.sent_to("whatsapp:+447700900321") == []
    assert len(standin.sent_to("+447700900321")) == 1
    post_signed(client, "/twilio/messages", inbound_form("whatsapp:+447700900321", "👍"))
    replies = standin.sent_to("whatsapp:+447700900321")
    assert replies and replies[0].from_ == "whatsapp:+447700900009"
    assert family_row(services, family.ref).consent_at is not None


BAD_FORMS = {
    "no From": lambda f: {k: v for k, v in f.items() if k != "From"},
    "no MessageSid": lambda f: {
        k: v for k, v in f.items() if k not in ("MessageSid", "SmsMessageSid", "SmsSid")
    },
    "From not a number": lambda f: dict(f, From="not-a-number"),
    "bad NumMedia": lambda f: dict(f, NumMedia="lots"),
    "bad MessageSid": lambda f: dict(f, MessageSid="x"),
}


@pytest.mark.parametrize("case", sorted(BAD_FORMS))
def test_bad_webhooks_get_a_4xx_and_change_nothing(
    services: Services, client: Any, case: str
) -> None:
    family = started(services)
    before = count(services)
    form = BAD_FORMS[case](inbound_form(family.phone, "yes"))
    response = post_signed(client, "/twilio/messages", form)
    assert response.status_code == 400
    assert "Traceback" not in response.get_data(as_text=True)
    assert count(services) == before


def test_odd_but_valid_messages_are_handled(services: Services, client: Any, standin: Any) -> None:
    family = started(services)
    responses = [
        post_signed(client, "/twilio/messages", inbound_form(family.phone, "y" * 10_000)),
        post_signed(client, "/twilio/messages", inbound_form(family.phone, "ye\x00s")),
        post_signed(
            client,
            "/twilio/messages",
            inbound_form(
                family.phone,
                "",
                NumMedia="1",
                MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
                MediaContentType0="audio/ogg",
            ),
        ),
    ]
    assert [r.status_code for r in responses] == [200, 200, 200]
    with services.db.transaction() as session:
        bodies = session.scalars(
            select(Message.body).where(Message.direction == "in").order_by(Message.id)
        ).all()
    assert len(bodies[0] or "") == 1600 and "\x00" not in (bodies[1] or "")


def test_invalid_utf8_and_oversized_requests(services: Services, client: Any) -> None:
    family = started(services)
    form = inbound_form(family.phone, "yes")
    raw = urlencode(form).encode().replace(b"Body=yes", b"Body=%FF%FEyes")
    response = client.post(
        "/twilio/messages",
        data=raw,
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": "x"},
    )
    assert response.status_code == 403  # the signature cannot match; nothing stored
    huge = client.post("/twilio/messages", data={"Body": "x" * 200_000})
    assert huge.status_code == 413
    assert count(services, Message.direction == "in") == 0


def test_answers_and_state_are_stored(services: Services, client: Any) -> None:
    family = started(services)
    for text in ("yes", "tuesdy", "6pm", "walk to school alone", "3"):
        post_signed(client, "/twilio/messages", inbound_form(family.phone, text))
    with services.db.transaction() as session:
        answers = session.scalars(select(Answer).order_by(Answer.id)).all()
        fam = session.scalar(select(Family).where(Family.ref == family.ref))
        conversation = session.get(Conversation, fam.id) if fam else None
    assert [a.value for a in answers] == ["yes", "tuesday", "18:00", "walk to school alone", 3]
    assert fam is not None and fam.session_day == 1 and fam.session_time == "18:00"
    assert conversation is not None and conversation.flow == "onboarding"
    assert conversation.step == "ask_more_after_1" and conversation.waiting
    assert conversation.variables["goal_1"] == "walk to school alone"


def test_status_callbacks_move_forward_only(services: Services, client: Any, standin: Any) -> None:
    family = started(services)
    sid = standin.sent_to(family.phone)[0].sid

    def status(state: str, code: str | None = None) -> int:
        form = {"MessageSid": sid, "MessageStatus": state, "AccountSid": "AC" + "1" * 32}
        if code:
            form["ErrorCode"] = code
        return int(post_signed(client, "/twilio/status", form).status_code)

    def current() -> str:
        return _out(services, family)[0].status

    assert status("sent") == 204 and current() == "sent"
    assert status("delivered") == 204 and current() == "delivered"
    assert status("sent") == 204 and current() == "delivered"  # late, out of order: ignored
    assert status("delivered") == 204 and current() == "delivered"  # repeated: no change
    assert status("read") == 204 and current() == "read"
    assert post_signed(client, "/twilio/status", {"MessageSid": sid}).status_code == 400


def test_status_21610_opts_the_family_out(services: Services, client: Any, standin: Any) -> None:
    family = started(services)
    sid = standin.sent_to(family.phone)[0].sid
    form = {"MessageSid": sid, "MessageStatus": "failed", "ErrorCode": "21610"}
    assert post_signed(client, "/twilio/status", form).status_code == 204
    assert family_row(services, family.ref).opted_out
    with services.db.transaction() as session:
        assert session.scalars(select(ConsentEvent.source)).all() == ["twilio 21610"]


def test_healthz(client: Any) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"


def test_no_phone_number_or_message_text_reaches_the_log(
    services: Services, client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    family = started(services)
    secret = "my daughter Zelda hides under the bed"
    for text in ("yes", secret, "STOP", "START", "talk to someone"):
        post_signed(client, "/twilio/messages", inbound_form(family.phone, text))
    post_signed(client, "/twilio/messages", inbound_form("+447700900999", secret))
    client.post("/twilio/messages", data=inbound_form(family.phone, secret))  # unsigned: refused
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert logged  # the service does log; just nothing personal
    for private in (family.phone, "7700900123", "+447700900999", "Zelda", "hides under", "Sam"):
        assert private not in logged


@pytest.mark.parametrize(
    ("signed_for", "checked_at", "valid"),
    [
        ("https://example.org/twilio/messages", "https://example.org/twilio/messages", True),
        ("https://example.org:443/twilio/messages", "https://example.org/twilio/messages", True),
        ("https://example.org/twilio/messages", "https://example.org:443/twilio/messages", True),
        ("https://example.org/twilio/other", "https://example.org/twilio/messages", False),
        ("https://example.org/x?bodySHA256=abc", "https://example.org/x?bodySHA256=abc", True),
    ],
)
def test_signatures_are_checked_as_twilio_computes_them(
    signed_for: str, checked_at: str, valid: bool
) -> None:
    """With and without the port, as Twilio's own validator; a JSON webhook's URL goes whole to
    the validator. Asked twice, to cover the remembered URL variants."""
    from twilio.request_validator import RequestValidator

    from messages.twilio_io import signature_valid

    token = "f0" * 16
    params = {"From": "+447700900123", "Body": "Yes", "MessageSid": "SM" + "1" * 32}
    if "bodySHA256" in signed_for:
        params = {}
    signature = RequestValidator(token).compute_signature(signed_for, params)
    for _ in range(2):
        assert signature_valid(token, checked_at, params, signature) is valid
        assert not signature_valid(token, checked_at, params, signature[:-2] + "AA")
        assert not signature_valid("0f" * 16, checked_at, params, signature)


def test_twilio_requests_open_no_staff_session(app: Any) -> None:
    """Twilio's webhooks are signed, not signed in: no session cookie is read or written."""
    from flask import session
    from flask.sessions import NullSession

    with app.test_request_context("/twilio/messages", method="POST"):
        assert isinstance(session, NullSession)
    with app.test_request_context("/admin/login"):
        assert not isinstance(session, NullSession)
