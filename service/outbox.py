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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from messages.pacing import Pacer
from messages.twilio_io import (
    ACCEPTED,
    PERMANENT,
    RETRY,
    UNKNOWN,
    ReconcileUnavailable,
    SendRequest,
    SendResult,
)
from service.alerts import raise_alert
from service.claims import claim_ids, new_token
from service.conversations import context_for, opt_out
from service.models import Family, Message, Staff
from service.programme import not_before
from service.wiring import Services

log = logging.getLogger("bravesteps.outbox")

LEASE = timedelta(minutes=2)
SEND_THREADS = 8
MAX_ATTEMPTS = 6
BACKOFF_FIRST = timedelta(seconds=15)
BACKOFF_CAP = timedelta(hours=1)
OPTED_OUT_CODE = 21610
INVALID_NUMBER_CODES = frozenset({21211, 21614, 30005, 30006})
UNREACHABLE_CODE = 30003
WHATSAPP_WINDOW_CODE = 63016
WHATSAPP_WINDOW = timedelta(hours=24)
ALWAYS_SENT_WHEN_OPTED_OUT = frozenset({"system.stopped"})


@dataclass
class SendReport:
    """Counts from one drain, for the tick's summary line."""

    accepted: int = 0
    retried: int = 0
    failed: int = 0
    unknown: int = 0
    cancelled: int = 0
    held: int = 0

    def add(self, other: SendReport) -> None:
        """Fold another report into this one."""
        for name in ("accepted", "retried", "failed", "unknown", "cancelled", "held"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def count(self, outcome: str) -> None:
        """Add one message's outcome."""
        if outcome == ACCEPTED:
            self.accepted += 1
        elif outcome == RETRY:
            self.retried += 1
        elif outcome == UNKNOWN:
            self.unknown += 1
        elif outcome == "cancelled":
            self.cancelled += 1
        elif outcome in ("held", "lost-claim"):
            self.held += 1
        else:
            self.failed += 1

    @property
    def total(self) -> int:
        """Messages handled."""
        return (
            self.accepted + self.retried + self.failed + self.unknown + self.cancelled + self.held
        )


def backoff(attempts: int, rng: random.Random | None = None) -> timedelta:
    """Capped exponential backoff with full jitter, so retries from many rows spread out."""
    ceiling = min(BACKOFF_CAP, BACKOFF_FIRST * (2 ** max(attempts - 1, 0)))
    fraction = (rng or random).uniform(0.5, 1.0)
    return ceiling * fraction


# Risk replies and texts about urgent alerts first, then by due time (ix_messages_outbox).
OUTBOX_ORDER = (Message.priority.desc(), Message.due_at, Message.id)


def claim_outbox(
    services: Services, now: datetime, limit: int = 100, ids: list[int] | None = None
) -> tuple[str, list[int]]:
    """Claim pending outbound rows that are due, in ``OUTBOX_ORDER``, and return them in it (to
    be sent in turn); ``ids`` narrows to the given rows."""
    token = new_token()
    ready = [Message.direction == "out", Message.status == "pending", Message.due_at <= now]
    if ids is not None:
        ready.append(Message.id.in_(ids))
    with services.db.transaction() as session:
        claimed = claim_ids(
            session,
            Message,
            ready,
            order_by=list(OUTBOX_ORDER),
            limit=limit,
            token=token,
            values={
                "status": "sending",
                "claimed_until": now + LEASE,
                "attempts": Message.attempts + 1,
                "updated_at": now,
            },
        )
        if len(claimed) > 1:
            in_turn = select(Message.id).where(Message.id.in_(claimed)).order_by(*OUTBOX_ORDER)
            claimed = list(session.scalars(in_turn))
    return token, claimed


def _address(session: Session, row: Message) -> tuple[str | None, Family | None]:
    if row.family_id is not None:
        family = session.get(Family, row.family_id)
        if family is None:
            return None, None
        return (f"whatsapp:{family.phone}" if row.channel == "whatsapp" else family.phone), family
    if row.staff_id is not None:
        staff = session.get(Staff, row.staff_id)
        if staff is None:
            return None, None
        return (f"whatsapp:{staff.phone}" if staff.channel == "whatsapp" else staff.phone), None
    return None, None


def _prepare(services: Services, message_id: int, token: str, now: datetime) -> SendRequest | str:
    """Build the request for a claimed row, or settle it: "held", "cancelled" or "lost-claim"."""
    return prepare_batch(services, [message_id], token, now)[message_id]


def prepare_batch(
    services: Services, ids: list[int], token: str, now: datetime
) -> dict[int, SendRequest | str]:
    """:func:`_prepare` for claimed rows in one transaction: their rows, families and staff are
    read with one query each."""
    with services.db.transaction() as session:
        rows = session.scalars(select(Message).where(Message.id.in_(ids))).all()
        family_ids = {row.family_id for row in rows if row.family_id is not None}
        staff_ids = {row.staff_id for row in rows if row.staff_id is not None}
        # Held here so that ``session.get`` in ``_address`` finds them without a query.
        families = (
            session.scalars(select(Family).where(Family.id.in_(family_ids))).all()
            if family_ids
            else []
        )
        staff = (
            session.scalars(select(Staff).where(Staff.id.in_(staff_ids))).all() if staff_ids else []
        )
        prepared: dict[int, SendRequest | str] = dict.fromkeys(ids, "lost-claim")
        for row in rows:
            prepared[row.id] = _prepare_row(session, services, row, token, now)
        del families, staff
        return prepared


def _prepare_row(
    session: Session, services: Services, row: Message, token: str, now: datetime
) -> SendRequest | str:
    if row.claim_token != token or row.status != "sending":
        return "lost-claim"
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
        return "cancelled"
    if family is not None and not row.reply:
        release = not_before(services, family, now)
        if release > now:
            _hold_until(row, release, now, "quiet hours")
            return "held"
        if row.channel == "whatsapp" and not row.content_sid and outside_window(family, now):
            if not _whatsapp_outside_window(session, services, row, family, now):
                return "held"
            to, _ = _address(session, row)
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


def outside_window(family: Family, now: datetime) -> bool:
    """True when WhatsApp allows only templates: over 24 hours since the parent last wrote."""
    return family.last_inbound_at is None or now - family.last_inbound_at >= WHATSAPP_WINDOW


def _hold_until(row: Message, release: datetime, now: datetime, reason: str) -> None:
    """Put a claimed row back to wait; holding is not a send attempt."""
    row.status = "pending"
    row.due_at = release
    row.claimed_until = None
    row.attempts = max(row.attempts - 1, 0)
    row.last_error = reason
    row.updated_at = now


def _whatsapp_outside_window(
    session: Session, services: Services, row: Message, family: Family, now: datetime
) -> bool:
    """Make a row sendable outside the 24-hour window; False if it must be held instead."""
    template = services.templates.get(row.catalogue_key or "")
    if template is not None:
        row.content_sid = template.content_sid
        row.content_variables = template.content_variables(_template_values(family, now))
        return True
    if family.sms_allowed:
        row.channel = "sms"
        row.last_error = "outside the WhatsApp window with no template: sent by SMS"
        return True
    row.status = "held"
    row.claimed_until = None
    row.last_error = "outside the WhatsApp window, no template, SMS not allowed"
    row.updated_at = now
    raise_alert(session, services, family, "message_held", now)
    return False


def _template_values(family: Family, now: datetime) -> dict[str, object]:
    """The words' variables for a template: what the flows saved, then the family's own."""
    variables = dict(family.conversation.variables or {}) if family.conversation else {}
    return {**context_for(family, now).family, **variables}


def follow_up(
    session: Session, row: Message, now: datetime, due: datetime, key: str, **changes: object
) -> Message | None:
    """A new outbox row repeating ``row`` (once per ``key``): a retry Twilio cannot do itself."""
    if session.scalar(select(Message.id).where(Message.dedupe_key == key)) is not None:
        return None
    copy = Message(
        direction="out",
        family_id=row.family_id,
        staff_id=row.staff_id,
        channel=row.channel,
        body=row.body,
        media=row.media,
        catalogue_key=row.catalogue_key,
        flow=row.flow,
        step=row.step,
        quick_replies=row.quick_replies,
        segments=row.segments,
        status="pending",
        reply=row.reply,
        in_reply_to=row.in_reply_to,
        dedupe_key=key,
        due_at=due,
        priority=row.priority,
        created_at=now,
        updated_at=now,
    )
    for name, value in changes.items():
        setattr(copy, name, value)
    session.add(copy)
    session.flush()
    return copy


def after_failure(session: Session, services: Services, row: Message, now: datetime) -> None:
    """What a final error code means for the family and for a second try (sync or callback)."""
    family = session.get(Family, row.family_id) if row.family_id is not None else None
    if family is None:
        return
    code = row.error_code
    if code == OPTED_OUT_CODE:
        opt_out(session, family, now, "twilio 21610")
    elif code in INVALID_NUMBER_CODES and family.number_invalid_at is None:
        family.number_invalid_at = now
        raise_alert(session, services, family, "number_invalid", now)
    elif code == UNREACHABLE_CODE and not (row.dedupe_key or "").startswith("retry-30003:"):
        # The handset was off or out of signal: one more try a day later, and no more.
        follow_up(session, row, now, now + timedelta(days=1), f"retry-30003:{row.id}")
    elif code == WHATSAPP_WINDOW_CODE and row.channel == "whatsapp":
        template = services.templates.get(row.catalogue_key or "")
        if template is not None and not row.content_sid:
            follow_up(
                session,
                row,
                now,
                now,
                f"template:{row.id}",
                content_sid=template.content_sid,
                content_variables=template.content_variables(_template_values(family, now)),
            )
        elif family.sms_allowed:
            follow_up(session, row, now, now, f"sms:{row.id}", channel="sms")
        else:
            raise_alert(session, services, family, "message_held", now)


def record_result(
    services: Services, message_id: int, token: str, result: SendResult, now: datetime
) -> str:
    """Store what the gateway said, if this worker still holds the claim; return the outcome."""
    return record_batch(services, token, [(message_id, result)], now)[0]


def record_batch(
    services: Services, token: str, results: list[tuple[int, SendResult]], now: datetime
) -> list[str]:
    """:func:`record_result` for many rows in one transaction; outcomes in no particular order.

    Accepted rows, nearly all of them, are stored by one statement run for each row, guarded by
    the claim token like the rest.
    """
    accepted = [
        (message_id, result) for message_id, result in results if result.outcome == ACCEPTED
    ]
    outcomes: list[str] = []
    with services.db.transaction() as session:
        if accepted:
            table = cast(Table, Message.__table__)
            stored = (
                session.connection()
                .execute(
                    update(table)
                    .where(table.c.id == bindparam("message_id"), table.c.claim_token == token)
                    .values(
                        status=bindparam("new_status"),
                        twilio_sid=bindparam("sid"),
                        sent_at=now,
                        claimed_until=None,
                        error_code=None,
                        last_error=None,
                        updated_at=now,
                    ),
                    [
                        {
                            "message_id": message_id,
                            "new_status": result.status or "queued",
                            "sid": result.sid,
                        }
                        for message_id, result in accepted
                    ],
                )
                .rowcount
            )
            lost = len(accepted) - stored if 0 <= stored <= len(accepted) else 0
            outcomes += [ACCEPTED] * (len(accepted) - lost) + ["lost-claim"] * lost
        for message_id, result in results:
            if result.outcome != ACCEPTED:
                outcomes.append(_record_row(session, services, message_id, token, result, now))
    return outcomes


def _record_row(
    session: Session,
    services: Services,
    message_id: int,
    token: str,
    result: SendResult,
    now: datetime,
) -> str:
    row = session.get(Message, message_id)
    if row is None or row.claim_token != token:
        return "lost-claim"
    if result.outcome == UNKNOWN:
        # updated_at keeps the claim time: reconciliation searches Twilio from then on.
        row.last_error = result.detail[:200]
        return UNKNOWN
    row.updated_at = now
    row.error_code = result.error_code
    row.last_error = result.detail[:200]
    row.claimed_until = None
    if result.outcome == RETRY and row.attempts < MAX_ATTEMPTS:
        row.status = "pending"
        row.due_at = now + backoff(row.attempts)
        return RETRY
    row.status = "failed"
    if result.outcome == PERMANENT:
        after_failure(session, services, row, now)
    return "failed"


def send_one(services: Services, message_id: int, token: str, pacer: Pacer | None = None) -> str:
    """Hand one claimed row to the gateway and record the outcome."""
    request = _prepare(services, message_id, token, services.now())
    if isinstance(request, str):
        return request
    if pacer is not None:
        pacer.wait(request.channel)
    result = services.gateway.send(request)
    return record_result(services, message_id, token, result, services.now())


def drain(
    services: Services,
    ids: list[int] | None = None,
    batch: int = 100,
    pacer: Pacer | None = None,
) -> SendReport:
    """Send every due pending message (or just ``ids``) until none is left, paced per sender.

    Paced, a claimed batch goes one message at a time, each prepared just before its turn and
    its outcome stored at once. Unpaced, a claimed batch is prepared in one transaction, handed
    over by a few threads at once, and its outcomes stored in one transaction: a crash in
    between leaves up to a batch ``sending``, which reconciliation settles (each row keeps its
    claim token, so none of this changes exactly-once).
    """
    report = SendReport()
    pacer = pacer or Pacer(
        0 if services.gateway.simulated else services.settings.messages_per_second
    )
    with ThreadPoolExecutor(max_workers=SEND_THREADS) as pool:
        while True:
            token, claimed = claim_outbox(services, services.now(), batch, ids)
            if not claimed:
                return report
            if pacer.interval or len(claimed) < 2:
                outcomes = [send_one(services, message_id, token, pacer) for message_id in claimed]
            else:
                outcomes = _send_batch(services, pool, claimed, token)
            for outcome in outcomes:
                report.count(outcome)
            if ids is not None:
                return report


def _send_batch(
    services: Services, pool: ThreadPoolExecutor, claimed: list[int], token: str
) -> list[str]:
    prepared = prepare_batch(services, claimed, token, services.now())
    settled = [outcome for outcome in prepared.values() if isinstance(outcome, str)]
    ready = [(i, request) for i, request in prepared.items() if isinstance(request, SendRequest)]
    results = list(pool.map(services.gateway.send, [request for _, request in ready]))
    sent = [(message_id, result) for (message_id, _), result in zip(ready, results, strict=True)]
    return settled + record_batch(services, token, sent, services.now())


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
