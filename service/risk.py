"""Acting on what the screening found in a parent's message, before anything else reads it.

A match never decides care (NICE NG225): an alert sends the parent the right numbers at once, at
any hour and in their language, tells the people the risk table names, and for an urgent alert
holds the programme until a person resumes it. A borderline message (the review tier) is read by
the flow as usual, gets one line on where to find help now, and asks the therapist to read it. A
voice note, picture or video cannot be screened: the therapist is asked to listen or look. What the
parent wrote never leaves the database: an alert carries only the family's reference, the kind, a
code, and for audit the rule or model score that raised it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from flows import care
from flows.effects import Send
from flows.screening import Screening
from service.alerts import raise_alert, staffed_now
from service.conversations import context_for, queue_message
from service.models import Family, Message
from service.programme import hold_for_alert
from service.wiring import Services

log = logging.getLogger("bravesteps.risk")


def _reply(session: Session, services: Services, family: Family, key: str, now: datetime) -> int:
    """Queue the catalogue message ``key`` to the parent at once, with the family's words."""
    variables = dict(context_for(family, now).family)
    return queue_message(
        session, services, family, Send(key, variables, "", "", reply=True), now
    ).id


def _alert(
    session: Session,
    services: Services,
    family: Family,
    kind: str,
    message: Message,
    result: Screening,
    now: datetime,
) -> list[int]:
    """Raise ``kind`` with what the screening found (rule, score); the staff texts it queued."""
    _, notices = raise_alert(
        session, services, family, kind, now, inbound=message, rule=result.rule, score=result.score
    )
    return [n.id for n in notices]


def act_on_alert(
    session: Session,
    services: Services,
    family: Family,
    message: Message,
    result: Screening,
    now: datetime,
) -> list[int]:
    """A risky message: the numbers to the parent at once, the alert, the programme held
    (``care.respond_to_alert``)."""
    response = care.respond_to_alert(result, staffed=staffed_now(services, now))
    outbox = [_reply(session, services, family, key, now) for key in response.replies]
    outbox += _alert(session, services, family, response.alert, message, result, now)
    if response.holds_programme:
        hold_for_alert(family)
    log.info("family %s: screening rule %s (%s)", family.ref, result.rule, result.category)
    return outbox


def act_on_review(
    session: Session,
    services: Services,
    family: Family,
    message: Message,
    result: Screening,
    now: datetime,
) -> list[int]:
    """A borderline message, after the flow's own reply: one line on help now, and a "please read"
    to the therapist."""
    response = care.respond_to_review(result)
    outbox = [_reply(session, services, family, key, now) for key in response.replies]
    outbox += _alert(session, services, family, response.alert, message, result, now)
    log.info("family %s: review, %s (%s)", family.ref, result.rule, result.category)
    return outbox


def act_on_media(
    session: Session,
    services: Services,
    family: Family,
    message: Message,
    media: list[dict[str, str]],
    now: datetime,
) -> list[int]:
    """A voice note, picture or video cannot be screened: ask the therapist to listen or look."""
    kind = care.respond_to_media([str(item.get("type") or "") for item in media]).alert
    _, notices = raise_alert(session, services, family, kind, now, inbound=message)
    return [n.id for n in notices]
