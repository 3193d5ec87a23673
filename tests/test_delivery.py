"""Delivery rules: pacing, WhatsApp's 24-hour window and templates, 63016 and 30003."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import STAFFED, Clock, enrol, inbound_form, post_signed
from sqlalchemy import select

from messages.pacing import Pacer
from scheduler.tick import run_tick
from service.inbound import handle_inbound
from service.models import Alert, Family, Message
from service.outbox import drain
from service.wiring import Services, build_services

TEMPLATE_SID = "HX" + "a" * 32


class FakeTime:
    """A monotonic clock whose sleep only moves it forward."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_pacer_spaces_each_sender() -> None:
    fake = FakeTime()
    pacer = Pacer(10, clock=fake.clock, sleep=fake.sleep)
    for _ in range(5):
        pacer.wait("sms")
    pacer.wait("whatsapp")  # another sender has its own pace
    assert fake.sleeps == pytest.approx([0.1, 0.1, 0.1, 0.1])
    assert fake.now == pytest.approx(100.4)


def test_pacer_makes_up_a_late_send_and_bounds_the_catch_up() -> None:
    fake = FakeTime()
    pacer = Pacer(10, clock=fake.clock, sleep=fake.sleep)
    pacer.wait("sms")
    fake.now += 0.25  # that send ran 0.15 s past the next slot
    for _ in range(3):
        pacer.wait("sms")
    # The next two slots (100.1, 100.2) are already past; the third (100.3) is waited for: four
    # sends in 0.3 s, on schedule.
    assert fake.sleeps == pytest.approx([0.05]) and fake.now == pytest.approx(100.3)
    fake.now += 10  # a long stall: only CATCH_UP slots are made up, then the pace holds
    for _ in range(Pacer.CATCH_UP + 2):
        pacer.wait("sms")
    assert fake.sleeps == pytest.approx([0.05, 0.1])


def test_unpaced_never_sleeps() -> None:
    fake = FakeTime()
    pacer = Pacer(0, clock=fake.clock, sleep=fake.sleep)
    for _ in range(100):
        pacer.wait("sms")
    assert fake.sleeps == []


def test_drain_paces_sends(services: Services, standin: Any) -> None:
    for i in range(4):
        enrol(services, phone=f"+4477009001{i:02d}")
    run_tick(services)  # sends the four openings, really paced at 10/s by default
    fake = FakeTime()
    for i in range(4):
        enrol(services, phone=f"+4477009002{i:02d}")
    from scheduler.tick import claim_due, do_work

    token, ids = claim_due(services, services.now())
    for work_id in ids:
        do_work(services, work_id, token, services.now())
    report = drain(services, pacer=Pacer(2, clock=fake.clock, sleep=fake.sleep))
    assert report.accepted == 4
    assert fake.sleeps == pytest.approx([0.5, 0.5, 0.5])


@pytest.fixture
def with_templates(settings: Any, clock: Clock, tmp_path: Path) -> Services:
    path = tmp_path / "templates.yaml"
    path.write_text(
        f"onboarding.welcome:\n  content_sid: {TEMPLATE_SID}\n"
        '  variables:\n    "1": therapist_name\n    "2": child_name\n'
    )
    return build_services(replace(settings, whatsapp_templates=path), clock=clock)


def family(services: Services) -> Family:
    with services.db.transaction() as session:
        found = session.scalar(select(Family))
        assert found is not None
        return found


def test_outside_the_window_a_template_is_sent(with_templates: Services, standin: Any) -> None:
    enrol(with_templates, phone="+447700900123", channel="whatsapp")
    run_tick(with_templates)
    [sent] = standin.sent_to("whatsapp:+447700900123")
    assert sent.content_sid == TEMPLATE_SID
    assert sent.content_variables_dict == {"1": "Jo", "2": "Sam"}
    assert not sent.body


def test_inside_the_window_free_text_goes_on_whatsapp(
    services: Services, standin: Any, clock: Clock, client: Any
) -> None:
    enrol(services, phone="+447700900123", channel="whatsapp")
    run_tick(services)  # opening by SMS (no template)
    post_signed(client, "/twilio/messages", inbound_form("whatsapp:+447700900123", "yes"))
    replies = standin.sent_to("whatsapp:+447700900123")
    assert replies and all(m.content_sid is None for m in replies)
    # A day later the service starts a message itself: the window has closed, so SMS.
    clock.advance(hours=25)
    with services.db.transaction() as session:
        fam = session.scalar(select(Family))
        assert fam is not None
        session.add(
            Message(
                direction="out",
                family_id=fam.id,
                channel="whatsapp",
                body="A new tip.",
                catalogue_key="onboarding.ask_day",
                status="pending",
                due_at=clock.now,
                created_at=clock.now,
                updated_at=clock.now,
            )
        )
    run_tick(services)
    assert "A new tip." in [m.body for m in standin.sent_to("+447700900123")]


def test_no_template_and_no_sms_is_held_and_the_therapist_told(
    services: Services, standin: Any, clock: Clock
) -> None:
    clock.now = STAFFED
    enrolled = enrol(services, phone="+447700900123", channel="whatsapp")
    with services.db.transaction() as session:
        fam = session.scalar(select(Family))
        assert fam is not None
        fam.sms_allowed = False
    run_tick(services)
    assert standin.sent_to("whatsapp:+447700900123") == []
    assert standin.sent_to("+447700900123") == []
    with services.db.transaction() as session:
        statuses = session.scalars(
            select(Message.status).where(Message.family_id.is_not(None))
        ).all()
        kinds = session.scalars(select(Alert.kind)).all()
    assert statuses == ["held"] and kinds == ["message_held"]
    assert len(standin.sent_to(enrolled.therapist_phone)) == 1


def test_63016_resends_as_the_template(
    with_templates: Services, standin: Any, clock: Clock
) -> None:
    enrol(with_templates, phone="+447700900123", channel="whatsapp")
    handle_inbound(with_templates, inbound_form("whatsapp:+447700900123", "hello"))  # opens window
    drain(with_templates)
    standin.fail_next(http_status=400, code=63016)
    run_tick(with_templates)
    sent = standin.sent_to("whatsapp:+447700900123")
    assert [m.content_sid for m in sent if "Reply YES" in (m.body or "") or m.content_sid] == [
        TEMPLATE_SID
    ]


def test_63016_without_a_template_falls_back_to_sms(
    services: Services, standin: Any, client: Any
) -> None:
    enrol(services, phone="+447700900123", channel="whatsapp")
    run_tick(services)
    standin.fail_next(http_status=400, code=63016)
    post_signed(client, "/twilio/messages", inbound_form("whatsapp:+447700900123", "yes"))
    run_tick(services)
    sms = standin.sent_to("+447700900123")
    assert any(m.body.startswith("Thank you. We will send") for m in sms)


def report(client: Any, sid: str, status: str, code: int | None = None) -> None:
    """A status callback from Twilio, signed, to the app."""
    form = {"MessageSid": sid, "MessageStatus": status}
    if code is not None:
        form["ErrorCode"] = str(code)
    assert post_signed(client, "/twilio/status", form).status_code == 204


def test_30003_is_tried_once_more_the_next_day(
    services: Services, standin: Any, clock: Clock, client: Any
) -> None:
    enrolled = enrol(services)
    run_tick(services)
    [first] = standin.sent_to(enrolled.phone)
    report(client, first.sid, "undelivered", 30003)
    report(client, first.sid, "undelivered", 30003)  # a repeated callback: still one retry
    run_tick(services)
    assert len(standin.sent_to(enrolled.phone)) == 1
    clock.advance(days=1)
    run_tick(services)
    second = standin.sent_to(enrolled.phone)
    assert len(second) == 2 and second[1].body == first.body
    report(client, second[1].sid, "undelivered", 30003)
    clock.advance(days=1)
    run_tick(services)
    assert len(standin.sent_to(enrolled.phone)) == 2  # only one retry per message


def test_30005_by_callback_marks_the_number(
    services: Services, standin: Any, clock: Clock, client: Any
) -> None:
    enrolled = enrol(services)
    run_tick(services)
    [first] = standin.sent_to(enrolled.phone)
    report(client, first.sid, "failed", 30005)
    assert family(services).number_invalid_at is not None
    clock.advance(days=3)
    run_tick(services)
    assert len(standin.sent_to(enrolled.phone)) == 1
    assert len(standin.sent_to(enrolled.therapist_phone)) == 1


def test_backoff_then_failure_is_visible(services: Services, standin: Any, clock: Clock) -> None:
    enrol(services)
    standin.fail_next(http_status=500, times=10)
    for _ in range(10):
        run_tick(services)
        clock.advance(minutes=30)
    with services.db.transaction() as session:
        row = session.scalar(select(Message).where(Message.family_id.is_not(None)))
    assert row is not None and row.status == "failed" and row.last_error
    assert clock.now - row.created_at < timedelta(hours=6)


class ReportsFirst:
    """A gateway whose delivery report reaches the app before the sender has stored the SID:
    Twilio answers the send, then its callback wins the race against our own commit."""

    def __init__(self, gateway: Any, client: Any, status: str, code: int | None) -> None:
        self.gateway, self.client, self.status, self.code = gateway, client, status, code

    def __getattr__(self, name: str) -> Any:
        return getattr(self.gateway, name)

    def send(self, request: Any) -> Any:
        result = self.gateway.send(request)
        if result.sid:
            report(self.client, result.sid, self.status, self.code)
        return result


def test_a_report_that_beats_its_sid_is_kept_and_applied(
    services: Services, standin: Any, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    import scheduler.tick
    from service.models import EarlyStatus, Family, Message

    enrolled = enrol(services)
    racing = replace(services, gateway=ReportsFirst(services.gateway, client, "failed", 21610))
    with monkeypatch.context() as patched:  # this tick stops short of applying kept reports
        patched.setattr(scheduler.tick, "settle_early", lambda _services: 0)
        run_tick(racing)
    [sent] = standin.sent_to(enrolled.phone)
    with services.db.transaction() as session:
        assert session.scalars(select(EarlyStatus.sid)).all() == [sent.sid]  # kept, not dropped
        family = session.scalar(select(Family))
        assert family is not None and not family.opted_out
    run_tick(services)  # the next tick applies it
    with services.db.transaction() as session:
        family = session.scalar(select(Family))
        message = session.scalar(select(Message).where(Message.twilio_sid == sent.sid))
        assert family is not None and family.opted_out
        assert message is not None and message.status == "failed" and message.error_code == 21610
        assert session.scalars(select(EarlyStatus)).all() == []


def test_reports_for_sids_that_never_come_are_forgotten(
    services: Services, client: Any, clock: Clock
) -> None:
    from service.models import EarlyStatus

    report(client, "SM" + "a" * 32, "delivered")
    report(client, "not-a-sid", "delivered")  # not Twilio's shape: not kept
    with services.db.transaction() as session:
        assert len(session.scalars(select(EarlyStatus)).all()) == 1
    clock.advance(days=4)
    run_tick(services)
    with services.db.transaction() as session:
        assert session.scalars(select(EarlyStatus)).all() == []
