"""The sender: drains the outbox through the gateway, exactly once per message.

A row goes ``pending`` -> ``sending`` (claimed with a token and a lease, committed) -> the gateway
call -> the outcome recorded under the same token. So:

- a message Twilio accepted has its SID stored and is never handed over again;
- a 429, a 5xx or a refused connection puts it back to ``pending`` with capped, jittered backoff,
  and after ``MAX_ATTEMPTS`` it is ``failed`` for staff to see;
- a permanent error is final (21610 opts the family out; a bad number is marked and the therapist
  told);
- a call whose outcome is unknown (the connection broke after the request went out, or the process
  died mid-call) stays ``sending`` until its lease runs out, and is then *reconciled*: Twilio's
  message list is asked whether it arrived, and only if it did not is it sent again.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from messages.twilio_io import (
    ACCEPTED,
    PERMANENT,
    RETRY,
    UNKNOWN,
    ReconcileUnavailable,
    SendRequest,
    SendResult,
)
from service.claims import claim_ids, new_token
from service.conversations import opt_out, raise_alert
from service.models import Family, Message, Staff
from service.wiring import Services

log = logging.getLogger("bravesteps.outbox")

LEASE = timedelta(minutes=2)
MAX_ATTEMPTS = 6
BACKOFF_FIRST = timedelta(seconds=15)
BACKOFF_CAP = timedelta(hours=1)
OPTED_OUT_CODE = 21610
INVALID_NUMBER_CODES = frozenset({21211, 21614, 30005, 30006})
ALWAYS_SENT_WHEN_OPTED_OUT = frozenset({"system.stopped"})


@dataclass
class SendReport:
    """Counts from one drain, for the tick's summary line."""

    accepted: int = 0
    retried: int = 0
    failed: int = 0
    unknown: int = 0
    cancelled: int = 0

    def add(self, other: SendReport) -> None:
        """Fold another report into this one."""
        for name in ("accepted", "retried", "failed", "unknown", "cancelled"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def total(self) -> int:
        """Messages handled."""
        return self.accepted + self.retried + self.failed + self.unknown + self.cancelled


def backoff(attempts: int, rng: random.Random | None = None) -> timedelta:
    """Capped exponential backoff with full jitter, so retries from many rows spread out."""
    ceiling = min(BACKOFF_CAP, BACKOFF_FIRST * (2 ** max(attempts - 1, 0)))
    fraction = (rng or random).uniform(0.5, 1.0)
    return ceiling * fraction


def claim_outbox(
    services: Services, now: datetime, limit: int = 100, ids: list[int] | None = None
) -> tuple[str, list[int]]:
    """Claim pending outbound rows that are due; ``ids`` narrows to the given rows."""
    token = new_token()
    ready = [Message.direction == "out", Message.status == "pending", Message.due_at <= now]
    if ids is not None:
        ready.append(Message.id.in_(ids))
    with services.db.transaction() as session:
        claimed = claim_ids(
            session,
            Message,
            ready,
            order_by=[Message.due_at, Message.id],
            limit=limit,
            token=token,
            values={
                "status": "sending",
                "claimed_until": now + LEASE,
                "attempts": Message.attempts + 1,
                "updated_at": now,
            },
        )
    return token, claimed


def _address(session: Session, row: Message) -> tuple[str | None, Family | None]:
    if row.family_id is not None:
        family = session.get(Family, row.family_id)
        return (family.address if family else None), family
    if row.staff_id is not None:
        staff = session.get(Staff, row.staff_id)
        if staff is None:
            return None, None
        return (f"whatsapp:{staff.phone}" if staff.channel == "whatsapp" else staff.phone), None
    return None, None


def _prepare(services: Services, message_id: int, token: str, now: datetime) -> SendRequest | None:
    """Build the request for a claimed row, or settle rows that must not go at all."""
    with services.db.transaction() as session:
        row = session.get(Message, message_id)
        if row is None or row.claim_token != token or row.status != "sending":
            return None
        to, family = _address(session, row)
        reason = None
        if to is None:
            reason = "no address"
        elif (
            family is not None
            and family.opted_out
            and (row.catalogue_key not in ALWAYS_SENT_WHEN_OPTED_OUT)
        ):
            reason = "family opted out"
        elif family is not None and family.number_invalid_at is not None:
            reason = "number marked invalid"
        if reason:
            row.status = "cancelled"
            row.last_error = reason
            row.claimed_until = None
            row.updated_at = now
            return None
        media = tuple(m["url"] for m in row.media or [] if m.get("url"))
        return SendRequest(
            to=str(to),
            body=row.body,
            channel=row.channel,
            media_urls=media,
            content_sid=row.content_sid,
            content_variables=row.content_variables,
            status_callback=services.status_callback_url(),
        )


def record_result(
    services: Services, message_id: int, token: str, result: SendResult, now: datetime
) -> str:
    """Store what the gateway said, if this worker still holds the claim; return the outcome."""
    with services.db.transaction() as session:
        row = session.get(Message, message_id)
        if row is None or row.claim_token != token:
            return "lost-claim"
        if result.outcome == UNKNOWN:
            # updated_at keeps the claim time: reconciliation searches Twilio from then on.
            row.last_error = result.detail[:200]
            return UNKNOWN
        row.updated_at = now
        if result.outcome == ACCEPTED:
            row.status = result.status or "queued"
            row.twilio_sid = result.sid
            row.sent_at = now
            row.claimed_until = None
            row.error_code = None
            row.last_error = None
            return ACCEPTED
        row.error_code = result.error_code
        row.last_error = result.detail[:200]
        row.claimed_until = None
        if result.outcome == RETRY and row.attempts < MAX_ATTEMPTS:
            row.status = "pending"
            row.due_at = now + backoff(row.attempts)
            return RETRY
        row.status = "failed"
        if result.outcome == PERMANENT and row.family_id is not None:
            _permanent(session, services, row, now)
        return "failed"


def _permanent(session: Session, services: Services, row: Message, now: datetime) -> None:
    family = session.get(Family, row.family_id)
    if family is None:
        return
    if row.error_code == OPTED_OUT_CODE:
        opt_out(session, family, now, "twilio 21610")
    elif row.error_code in INVALID_NUMBER_CODES and family.number_invalid_at is None:
        family.number_invalid_at = now
        raise_alert(session, services, family, "number_invalid", "routine", now)


def send_one(services: Services, message_id: int, token: str) -> str:
    """Hand one claimed row to the gateway and record the outcome."""
    request = _prepare(services, message_id, token, services.now())
    if request is None:
        return "cancelled"
    result = services.gateway.send(request)
    return record_result(services, message_id, token, result, services.now())


def drain(services: Services, ids: list[int] | None = None, batch: int = 100) -> SendReport:
    """Send every due pending message (or just ``ids``) until none is left."""
    report = SendReport()
    while True:
        token, claimed = claim_outbox(services, services.now(), batch, ids)
        if not claimed:
            return report
        for message_id in claimed:
            outcome = send_one(services, message_id, token)
            if outcome == ACCEPTED:
                report.accepted += 1
            elif outcome == RETRY:
                report.retried += 1
            elif outcome == UNKNOWN:
                report.unknown += 1
            elif outcome == "cancelled":
                report.cancelled += 1
            else:
                report.failed += 1
        if ids is not None:
            return report


def reconcile(services: Services, batch: int = 100) -> int:
    """Settle sends whose outcome was never recorded: ask Twilio before sending again."""
    now = services.now()
    token = new_token()
    with services.db.transaction() as session:
        stale = claim_ids(
            session,
            Message,
            [
                Message.direction == "out",
                Message.status == "sending",
                Message.claimed_until < now,
            ],
            order_by=[Message.id],
            limit=batch,
            token=token,
            values={"claimed_until": now + LEASE},
        )
    for message_id in stale:
        with services.db.transaction() as session:
            row = session.get(Message, message_id)
            if row is None or row.claim_token != token:
                continue
            to, _ = _address(session, row)
            since, body = row.updated_at, row.body
        try:
            candidates = services.gateway.find_sent(str(to), since, body) if to else []
        except ReconcileUnavailable:
            continue
        with services.db.transaction() as session:
            row = session.get(Message, message_id)
            if row is None or row.claim_token != token:
                continue
            known = set(
                session.scalars(
                    select(Message.twilio_sid).where(Message.twilio_sid.in_(candidates))
                )
            )
            sid = next((c for c in candidates if c not in known), None)
            row.claimed_until = None
            row.updated_at = services.now()
            if sid:
                row.status, row.twilio_sid, row.sent_at = "queued", sid, row.sent_at or now
                log.info("message %s reconciled: Twilio had it", message_id)
            else:
                row.status, row.due_at = "pending", now
                log.info("message %s reconciled: Twilio never had it; will send", message_id)
    return len(stale)
