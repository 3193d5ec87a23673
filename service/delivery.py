"""Delivery reports from Twilio's status callbacks: idempotent, order-proof, never backwards.

Callbacks can repeat and arrive out of order; each status has a rank and a report only ever moves a
message forward. A final error may change the family: 21610 means they opted out with Twilio, and a
dead number is marked so nothing more is tried.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from service.models import Message
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


def record_status(services: Services, sid: str, status: str, error_code: int | None) -> bool:
    """Apply one status callback; True if it changed anything."""
    if status not in RANK:
        log.info("status callback with an unknown status ignored")
        return False
    now = services.now()
    with services.db.transaction() as session:
        message = session.execute(
            select(Message).where(Message.twilio_sid == sid).with_for_update()
        ).scalar_one_or_none()
        if message is None or message.direction != "out":
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
