"""The sender against the Twilio stand-in: each failure Twilio can give, counted at the stand-in."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from conftest import STAFFED, Clock, enrol, inbound_form, post_signed
from sqlalchemy import select
from test_delivery import FakeTime

from flows.effects import Send
from messages.pacing import Pacer
from scheduler.tick import run_tick
from service import create_app
from service.conversations import queue_message
from service.models import Alert, Family, Message
from service.outbox import LEASE, MAX_ATTEMPTS, backoff, drain, reconcile
from service.wiring import Services, build_services


def rows(services: Services) -> list[Message]:
    with services.db.transaction() as session:
        return list(
            session.scalars(select(Message).where(Message.direction == "out").order_by(Message.id))
        )


def family(services: Services) -> Family:
    with services.db.transaction() as session:
        found = session.scalar(select(Family))
        assert found is not None
        return found


def test_accepted_message_is_never_sent_again(services: Services, standin: Any) -> None:
    enrolled = enrol(services)
    run_tick(services)
    run_tick(services)
    drain(services)
    sent = standin.sent_to(enrolled.phone)
    assert len(sent) == 1
    [row] = rows(services)
    assert row.status == "queued" and row.twilio_sid == sent[0].sid
    assert sent[0].status_callback == "https://bravesteps.test/twilio/status"


def test_429_and_500_are_retried_with_backoff(
    services: Services, standin: Any, clock: Clock
) -> None:
    enrolled = enrol(services)
    standin.fail_next(http_status=429, code=20429)
    standin.fail_next(http_status=500)
    run_tick(services)
    [row] = rows(services)
    assert row.status == "pending" and row.error_code == 20429
    assert standin.sent_to(enrolled.phone) == []
    run_tick(services)  # not yet due: backoff holds it
    assert standin.sent_to(enrolled.phone) == []
    clock.advance(minutes=2)
    run_tick(services)  # the 500
    assert rows(services)[0].status == "pending"
    clock.advance(minutes=5)
    run_tick(services)
    assert len(standin.sent_to(enrolled.phone)) == 1
    assert rows(services)[0].status == "queued"
    assert rows(services)[0].attempts == 3


def test_retries_are_bounded_then_failed(services: Services, standin: Any, clock: Clock) -> None:
    enrol(services)
    standin.fail_next(http_status=503, times=MAX_ATTEMPTS)
    for _ in range(MAX_ATTEMPTS + 2):
        run_tick(services)
        clock.advance(minutes=10)
    [row] = rows(services)
    assert row.status == "failed" and row.attempts == MAX_ATTEMPTS
    assert len(standin.messages) == 0
    assert sum(1 for r in standin.requests if r.method == "POST") == MAX_ATTEMPTS


def test_backoff_is_capped_and_jittered() -> None:
    import random

    rng = random.Random(7)
    waits = [backoff(n, rng) for n in range(1, 20)]
    assert all(w <= timedelta(hours=1) for w in waits)
    assert waits[0] < timedelta(seconds=16)
    assert len({w for w in waits}) == len(waits)


def test_21610_opts_out_and_nothing_more_is_tried(
    services: Services, standin: Any, clock: Clock
) -> None:
    enrolled = enrol(services)
    standin.opt_out(enrolled.phone)
    run_tick(services)
    [row] = rows(services)
    assert row.status == "failed" and row.error_code == 21610
    assert family(services).opted_out
    clock.advance(days=1)
    run_tick(services)
    assert sum(1 for r in standin.requests if r.method == "POST") == 1


def test_bad_number_is_marked_and_the_therapist_told(
    services: Services, standin: Any, clock: Clock
) -> None:
    clock.now = STAFFED
    enrolled = enrol(services)
    standin.fail_next(http_status=400, code=21211, to=enrolled.phone)
    run_tick(services)
    assert family(services).number_invalid_at is not None
    to_therapist = standin.sent_to(enrolled.therapist_phone)
    assert len(to_therapist) == 1
    assert enrolled.ref in to_therapist[0].body and "Sam" not in to_therapist[0].body
    with services.db.transaction() as session:
        assert session.scalars(select(Alert.kind)).all() == ["number_invalid"]
    clock.advance(days=1)
    run_tick(services)
    assert standin.sent_to(enrolled.phone) == []


def test_accepted_then_connection_lost_is_reconciled_not_resent(
    services: Services, standin: Any, clock: Clock
) -> None:
    enrolled = enrol(services)
    standin.fail_next(mode="accept_then_drop")
    run_tick(services)
    assert len(standin.sent_to(enrolled.phone)) == 1  # Twilio has it ...
    [row] = rows(services)
    assert row.status == "sending" and row.twilio_sid is None  # ... but we never heard back
    run_tick(services)  # inside the lease: left alone
    clock.advance(seconds=LEASE.total_seconds() + 1)
    run_tick(services)
    [row] = rows(services)
    assert row.status == "queued" and row.twilio_sid == standin.sent_to(enrolled.phone)[0].sid
    assert len(standin.sent_to(enrolled.phone)) == 1


def test_timeout_before_twilio_stored_it_is_resent_once(
    settings: Any, standin: Any, clock: Clock
) -> None:
    services = build_services(replace(settings, send_timeout=0.3), clock=clock)
    enrolled = enrol(services)
    standin.fail_next(mode="hang", hang_seconds=1.0)
    run_tick(services)
    assert standin.sent_to(enrolled.phone) == []
    assert rows(services)[0].status == "sending"
    clock.advance(seconds=LEASE.total_seconds() + 1)
    run_tick(services)  # reconcile: Twilio never had it, so it goes again, once
    run_tick(services)
    assert len(standin.sent_to(enrolled.phone)) == 1
    assert rows(services)[0].status == "queued"


def test_refused_connection_is_retried(settings: Any, clock: Clock) -> None:
    services = build_services(
        replace(settings, twilio_api_base_url="http://127.0.0.1:9"), clock=clock
    )
    enrol(services)
    run_tick(services)
    [row] = rows(services)
    assert row.status == "pending" and row.attempts == 1


def test_reconcile_when_twilio_cannot_be_asked_leaves_it_for_later(
    settings: Any, standin: Any, clock: Clock
) -> None:
    services = build_services(replace(settings, send_timeout=0.3), clock=clock)
    enrolled = enrol(services)
    standin.fail_next(mode="accept_then_drop")
    run_tick(services)
    clock.advance(seconds=LEASE.total_seconds() + 1)
    broken = build_services(
        replace(settings, twilio_api_base_url="http://127.0.0.1:9", send_timeout=0.3), clock=clock
    )
    assert reconcile(broken) == 1
    assert rows(services)[0].status == "sending"
    clock.advance(seconds=LEASE.total_seconds() + 1)
    reconcile(services)
    assert rows(services)[0].status == "queued"
    assert len(standin.sent_to(enrolled.phone)) == 1


def test_a_risk_reply_goes_ahead_of_500_routine_messages(
    settings: Any, clock: Clock, standin: Any
) -> None:
    services = build_services(replace(settings, dispatch="off"), clock=clock)  # left to drain
    client = create_app(services).test_client()
    enrolled = enrol(services)
    run_tick(services)  # the opening message
    with services.db.transaction() as session:
        found = session.scalar(select(Family))
        assert found is not None
        for i in range(500):
            routine = Send("system.help", {}, "", "")
            due = clock.now - timedelta(minutes=10, seconds=i)
            queue_message(session, services, found, routine, due, flush=False)
    post_signed(client, "/twilio/messages", inbound_form(enrolled.phone, "I want to kill myself"))
    standin.reset()
    fake = FakeTime()
    report = drain(services, pacer=Pacer(1000, clock=fake.clock, sleep=fake.sleep))  # in turn
    assert report.accepted == 503  # and the out-of-hours notice, in its turn
    handed = standin.messages
    assert handed[0].to == enrolled.phone and "116 123" in handed[0].body  # Samaritans
    assert handed[1].to == enrolled.therapist_phone and "self harm" in handed[1].body
    assert sum(1 for m in handed if "bravesteps sends short tips" in m.body) == 500
    first = {m.catalogue_key: m.priority for m in rows(services) if m.priority}
    assert first == {"risk.self_harm": 1, "system.alert_to_staff": 1}
