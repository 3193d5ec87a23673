"""Keeping a human in the loop: call prompts for the therapist, and chasing quiet families.

PL-CBT works because a person checks in. The therapist is prompted to call in the weeks the
calendar names; a family that misses two check-ins in a row, or is silent for 7 days, gets one
friendly nudge and the therapist is told.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from flows import care
from flows.effects import Send
from service.alerts import next_staffed, queue_staff_message, raise_alert
from service.conversations import context_for, queue_message
from service.models import DueWork, Family
from service.programme import due_work_row
from service.wiring import Services

NUDGE_KEY = "system.nudge"
CALL_KEY = "system.call_prompt"


def call_prompt(
    session: Session, services: Services, family: Family, payload: dict[str, Any], now: datetime
) -> list[int]:
    """The first day of a call week: ask the therapist to call, in their working hours."""
    week = payload.get("week")
    therapist = family.therapist
    if not care.prompts_a_call(week) or therapist is None or not therapist.active:
        return []
    when = next_staffed(services, now)
    link = (services.settings.public_url or "") + f"/admin/families/{family.ref}"
    body = services.catalogue.render(
        CALL_KEY, {"family_ref": family.ref, "week": week, "link": link}
    )
    key = f"call:{family.id}:{family.calendar_generation}:{week}"
    message = queue_staff_message(session, therapist, body, CALL_KEY, now, due=when, dedupe_key=key)
    return [message.id]


def heard_from(family: Family) -> None:
    """The parent wrote: the quiet count starts again (the 7-day check reads last_inbound_at)."""
    family.missed_check_ins = 0
    family.nudged_at = None


def first_silence_check(family: Family, now: datetime) -> dict[str, Any]:
    """The 7-day check the programme starts with, as a ``due_work`` row; it moves itself on."""
    key = f"silence:{family.id}:{family.calendar_generation}"
    return due_work_row(family.id, "silence", {}, now + care.SILENT_FOR + care.GRACE, key, now)


def _nudge_and_alert(
    session: Session, services: Services, family: Family, now: datetime
) -> list[int]:
    family.nudged_at = now
    context = context_for(family, now)
    nudge = queue_message(
        session, services, family, Send(NUDGE_KEY, dict(context.family), "", ""), now
    )
    _, notices = raise_alert(session, services, family, "quiet", now)
    return [nudge.id, *(n.id for n in notices)]


def missed_check_in(
    session: Session, services: Services, family: Family, now: datetime
) -> list[int]:
    """A check-in went unanswered; the second in a row brings a nudge and an alert."""
    decided = care.missed_check_in(family.missed_check_ins, nudged=family.nudged_at is not None)
    family.missed_check_ins = decided.in_a_row
    return _nudge_and_alert(session, services, family, now) if decided.nudge else []


def check_silence(session: Session, services: Services, family: Family, now: datetime) -> list[int]:
    """Seven days without a word from a family in the programme (``care.check_silence``)."""
    decided = care.check_silence(
        last_heard=family.last_inbound_at,
        consented_at=family.consent_at,
        held=family.status == "held",
        nudged=family.nudged_at is not None,
        now=now,
    )
    if decided.check_again_at is None:
        return []
    outbox = _nudge_and_alert(session, services, family, now) if decided.nudge else []
    session.add(
        DueWork(
            family_id=family.id,
            kind="silence",
            payload={},
            due_at=decided.check_again_at,
            created_at=now,
        )
    )
    return outbox
