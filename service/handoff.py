"""Human handoff: a therapist takes a conversation over, talks to the parent through the service,
and hands it back; the flow waits meanwhile and the transcript keeps both sides."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from messages.segments import count_segments
from service.alerts import queue_staff_message
from service.models import Conversation, Family, Message, Staff
from service.wiring import Services

FORWARD_KEY = "system.forward_to_staff"


def staff_to_parent(
    session: Session, services: Services, family: Family, staff: Staff, text: str, now: datetime
) -> Message:
    """A therapist's own words to the parent; the conversation is theirs until handed back."""
    take_over(session, family, staff)
    body = text.strip()[:1600]
    message = Message(
        direction="out",
        family_id=family.id,
        staff_id=staff.id,
        channel=family.channel,
        body=body,
        catalogue_key=None,
        segments=count_segments(body),
        status="pending",
        reply=True,  # a person chose to send it now
        due_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(message)
    session.flush()
    return message


def take_over(session: Session, family: Family, staff: Staff) -> None:
    """The parent's replies now go to ``staff`` instead of the flow."""
    conversation = family.conversation
    if conversation is None:
        conversation = Conversation(family_id=family.id, variables={}, updated_at=family.created_at)
        session.add(conversation)
        family.conversation = conversation
    conversation.handoff_staff_id = staff.id


def hand_back(family: Family) -> None:
    """The flow carries on where it was."""
    if family.conversation is not None:
        family.conversation.handoff_staff_id = None


def forward_to_staff(
    session: Session, services: Services, family: Family, staff: Staff, text: str, now: datetime
) -> Message:
    """During a handoff, the parent's reply goes to the therapist who took over."""
    body = services.catalogue.render(FORWARD_KEY, {"family_ref": family.ref, "text": text})
    return queue_staff_message(session, staff, body, FORWARD_KEY, now)
