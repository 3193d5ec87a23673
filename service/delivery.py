"""Delivery reports from Twilio's status callbacks: idempotent, order-proof, never backwards.

Callbacks can repeat and arrive out of order; each status has a rank and a report only ever moves a
message forward. A final error may change the family: 21610 means they opted out with Twilio, and a
dead number is marked so nothing more is tried.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.models import EarlyStatus, Message
from service.outbox import after_failure
from service.wiring import Services

log = logging.getLogger("bravesteps.delivery")

RANK = {
    "pending": 0,
    "sending": 0,
    "accepted": 1,
    "scheduled": 1,
    "queued": 1,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "read": 5,
    "canceled": 4,
}
TWILIO_SID = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")
KEEP_UNMATCHED = timedelta(days=3)


def record_status(services: Services, sid: str, status: str, error_code: int | None) -> bool:
    """Apply one status callback; True if it changed anything.

    A report for a SID we have not stored yet is kept (``EarlyStatus``): the sender stores a SID
    a moment after Twilio answers, and a quick "failed" (21610: the parent opted out) must not
    be lost in that moment. :func:`settle_early` applies it once the SID is stored.
    """
    if status not in RANK:
        log.info("status callback with an unknown status ignored")
        return False
    now = services.now()
    with services.db.transaction() as session:
        message = session.execute(
            select(Message).where(Message.twilio_sid == sid).with_for_update()
        ).scalar_one_or_none()
        if message is None:
            if TWILIO_SID.match(sid):
                session.add(
                    EarlyStatus(sid=sid, status=status, error_code=error_code, received_at=now)
                )
            return False
        return _apply(session, services, message, status, error_code, now)


def _apply(
    session: Session,
    services: Services,
    message: Message,
    status: str,
    error_code: int | None,
    now: datetime,
) -> bool:
    if message.direction != "out":
        return False
    if RANK[status] <= RANK.get(message.status, 0) and message.status != "sending":
        return False
    message.status = status
    message.updated_at = now
    if error_code is not None:
        message.error_code = error_code
    if status in ("failed", "undelivered"):
        after_failure(session, services, message, now)
    return True


def settle_early(services: Services) -> int:
    """Apply kept reports whose SID is now stored (in the order they came); forget ones no
    message has claimed in three days. Returns how many were applied."""
    now = services.now()
    with services.db.transaction() as session:
        rows = list(
            session.execute(
                select(EarlyStatus, Message)
                .join(Message, Message.twilio_sid == EarlyStatus.sid)
                .order_by(EarlyStatus.id)
                .with_for_update(of=Message)
            )
        )
        for early, message in rows:
            if early.status in RANK:
                _apply(session, services, message, early.status, early.error_code, now)
        if rows:
            session.execute(
                delete(EarlyStatus).where(EarlyStatus.id.in_([early.id for early, _ in rows]))
            )
        session.execute(delete(EarlyStatus).where(EarlyStatus.received_at < now - KEEP_UNMATCHED))
    return len(rows)
