"""Risk screening of every message a parent writes, before anything else reads it.

A match never decides care (NICE NG225): it sends the parent the right numbers at once, at any hour
and in their language, tells the people the risk table names, and for an urgent alert holds the
programme until a person resumes it. What the parent wrote never leaves the database: the alert
carries only the family's reference, the kind and a code.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from flows.effects import Send
from flows.screening import screen
from service.alerts import OUT_OF_HOURS_KEY, raise_alert, rule_for, staffed_now
from service.conversations import context_for, queue_message
from service.models import Family, Message
from service.programme import hold_for_alert
from service.wiring import Services

log = logging.getLogger("bravesteps.risk")


def screen_message(
    session: Session, services: Services, family: Family, message: Message, now: datetime
) -> list[int] | None:
    """Act on a risky message; None when the message is not risky (the flow then reads it)."""
    result = screen(message.body or "", services.risk, family.language)
    if result.category == "none":
        return None
    rule = rule_for(result.category)
    variables = dict(context_for(family, now).family)
    outbox: list[int] = []
    if rule.reply:
        sent = queue_message(
            session, services, family, Send(rule.reply, variables, "", "", reply=True), now
        )
        outbox.append(sent.id)
    if not staffed_now(services, now):
        notice = Send(OUT_OF_HOURS_KEY, variables, "", "", reply=True)
        outbox.append(queue_message(session, services, family, notice, now).id)
    _, notices = raise_alert(session, services, family, result.category, now, inbound=message)
    outbox.extend(n.id for n in notices)
    if rule.pauses_programme:
        hold_for_alert(family)
    log.info("family %s: screening rule %s (%s)", family.ref, result.rule, result.category)
    return outbox
