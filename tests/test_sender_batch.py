"""The unpaced sender: a claimed batch prepared together, sent on threads, recorded together.

Every outcome Twilio can give must come out as it does one message at a time, and a row whose
claim another worker took over must never be written by the batch that lost it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from conftest import STAFFED, Clock, enrol
from sqlalchemy import select, update

from messages.twilio_io import ACCEPTED, SendResult
from scheduler.tick import claim_due, do_batch, run_tick
from service.models import Alert, Family, Message
from service.outbox import LEASE, claim_outbox, drain, record_batch
from service.wiring import Services, build_services


@pytest.fixture
def unpaced(settings: Any, clock: Clock) -> Iterator[Services]:
    svc = build_services(replace(settings, messages_per_second=0), clock=clock)
    yield svc
    svc.db.dispose()


def row_for(services: Services, phone: str) -> Message:
    with services.db.transaction() as session:
        found = session.scalar(
            select(Message)
            .join(Family, Message.family_id == Family.id)
            .where(Family.phone == phone)
        )
        assert found is not None
        return found


def test_every_outcome_in_one_batch(unpaced: Services, standin: Any, clock: Clock) -> None:
    clock.now = STAFFED  # the therapist's alert goes at once
    phones = [f"+4477009006{i:02d}" for i in range(6)]
    families = [enrol(unpaced, phone=phone) for phone in phones]
    retry, opted_out, invalid, dropped, fine, also_fine = phones
    standin.fail_next(http_status=429, code=20429, to=retry)
    standin.opt_out(opted_out)
    standin.fail_next(http_status=400, code=21211, to=invalid)
    standin.fail_next(mode="accept_then_drop", to=dropped)

    report = run_tick(unpaced)
    # The therapist's alert about the bad number is a second batch of the same drain.
    assert (report.sent.accepted, report.sent.retried) == (3, 1)
    assert (report.sent.failed, report.sent.unknown) == (2, 1)

    for phone in (fine, also_fine):
        row = row_for(unpaced, phone)
        [sent] = standin.sent_to(phone)
        assert (row.status, row.twilio_sid, row.claimed_until) == ("queued", sent.sid, None)
        assert row.sent_at == clock.now
    row = row_for(unpaced, retry)
    assert (row.status, row.error_code) == ("pending", 20429) and row.due_at > clock.now
    row = row_for(unpaced, opted_out)
    assert (row.status, row.error_code) == ("failed", 21610)
    row = row_for(unpaced, invalid)
    assert (row.status, row.error_code) == ("failed", 21211)
    with unpaced.db.transaction() as session:
        by_phone = {f.phone: f for f in session.scalars(select(Family))}
        assert by_phone[opted_out].opted_out and by_phone[invalid].number_invalid_at is not None
        assert session.scalars(select(Alert.kind)).all() == ["number_invalid"]
    assert len(standin.sent_to(families[0].therapist_phone)) == 1
    row = row_for(unpaced, dropped)
    assert (row.status, row.twilio_sid) == ("sending", None)

    # The dropped answer is reconciled once its lease is over: Twilio had it, so it is not resent.
    clock.advance(seconds=LEASE.total_seconds() + 1)
    run_tick(unpaced)
    [sent] = standin.sent_to(dropped)
    assert (row_for(unpaced, dropped).status, row_for(unpaced, dropped).twilio_sid) == (
        "queued",
        sent.sid,
    )


def test_a_batch_that_lost_its_claim_writes_nothing(unpaced: Services, standin: Any) -> None:
    enrolled = enrol(unpaced)
    run_tick(unpaced)  # the opening goes; now a message of our own to claim
    with unpaced.db.transaction() as session:
        family = session.scalar(select(Family))
        assert family is not None
        now = unpaced.now()
        session.add(
            Message(
                direction="out",
                family_id=family.id,
                channel="sms",
                body="A tip.",
                status="pending",
                due_at=now,
                created_at=now,
                updated_at=now,
            )
        )
    token, [message_id] = claim_outbox(unpaced, unpaced.now())
    with unpaced.db.transaction() as session:  # another worker took the row over meanwhile
        session.execute(
            update(Message).where(Message.id == message_id).values(claim_token="someone-else")
        )
    outcomes = record_batch(
        unpaced, token, [(message_id, SendResult(ACCEPTED, sid="SM" + "1" * 32))], unpaced.now()
    )
    assert outcomes == ["lost-claim"]
    with unpaced.db.transaction() as session:
        row = session.get(Message, message_id)
        assert row is not None
        assert (row.status, row.twilio_sid, row.claim_token) == ("sending", None, "someone-else")
    assert len(standin.sent_to(enrolled.phone)) == 1


def test_rows_settled_before_sending_are_not_sent(unpaced: Services, standin: Any) -> None:
    staying = enrol(unpaced, phone="+447700900701")
    leaving = enrol(unpaced, phone="+447700900702")
    token, ids = claim_due(unpaced, unpaced.now())
    assert do_batch(unpaced, ids, token, unpaced.now()) == ["done", "done"]
    with unpaced.db.transaction() as session:  # opted out between queueing and sending
        family = session.scalar(select(Family).where(Family.phone == leaving.phone))
        assert family is not None
        family.opted_out_at = unpaced.now()
    report = drain(unpaced)
    assert (report.accepted, report.cancelled) == (1, 1)
    assert len(standin.sent_to(staying.phone)) == 1
    assert standin.sent_to(leaving.phone) == []
    assert row_for(unpaced, leaving.phone).status == "cancelled"
    assert drain(unpaced).total == 0
