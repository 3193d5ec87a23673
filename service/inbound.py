"""One message from a parent, from Twilio's form to committed state and outbox rows.

The family's row is locked for the whole transaction, so two messages from one parent are handled
one after the other. The inbound message is stored under its unique ``MessageSid`` in the same
transaction as everything it causes: a retried webhook finds it and changes nothing.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from flows.conversation import handle_message
from flows.effects import MessageIn
from flows.screening import ALERT, REVIEW, Screening, screen
from service import inbound_core
from service.alerts import staff_command
from service.checkins import heard_from
from service.conversations import Applied, apply_outcome, context_for, state_of
from service.handoff import forward_to_staff
from service.models import Family, Message, Staff
from service.phones import channel_of, normalise_phone
from service.risk import act_on_alert, act_on_media, act_on_review
from service.wiring import Services

log = logging.getLogger("bravesteps.inbound")

MAX_BODY = 1600  # Twilio's own limit for one message
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SID = re.compile(r"^[A-Za-z]{2}[A-Za-z0-9]{10,62}$")


@lru_cache(maxsize=4096)
def _normalised(sender: str, region: str) -> str:
    """``normalise_phone``, remembered for the numbers seen last (parents write again)."""
    return normalise_phone(sender, region)


class BadWebhook(ValueError):
    """The request is not a message we can take; the text says what is wrong."""


@dataclass
class InboundResult:
    """What the webhook answers and what the sender should hand to Twilio."""

    duplicate: bool = False
    known_sender: bool = True
    replies: list[str] = field(default_factory=list)  # sent in the TwiML answer
    outbox: list[int] = field(default_factory=list)  # sent through the REST API


def clean_text(text: str) -> str:
    """Drop NUL and other control characters and cut to Twilio's longest message."""
    return _CONTROL.sub("", text.replace("\r\n", "\n"))[:MAX_BODY]


def parse_form(
    form: Mapping[str, str], region: str
) -> tuple[str, str, str, str, list[dict[str, str]]]:
    """Check Twilio's fields: (MessageSid, phone, channel, body, media) or ``BadWebhook``."""
    sid = (form.get("MessageSid") or form.get("SmsMessageSid") or "").strip()
    if not sid:
        raise BadWebhook("MessageSid is missing")
    if not _SID.match(sid):
        raise BadWebhook("MessageSid is not a Twilio message SID")
    sender = (form.get("From") or "").strip()
    if not sender:
        raise BadWebhook("From is missing")
    try:
        phone = _normalised(sender, region)
    except ValueError:
        raise BadWebhook("From is not a phone number") from None
    try:
        num_media = max(0, min(int(form.get("NumMedia") or 0), 10))
    except ValueError:
        raise BadWebhook("NumMedia is not a number") from None
    media = []
    for i in range(num_media):
        url = (form.get(f"MediaUrl{i}") or "").strip()
        if url:
            media.append({"url": url, "type": (form.get(f"MediaContentType{i}") or "")[:100]})
    return sid, phone, channel_of(sender), clean_text(form.get("Body") or ""), media


def handle_inbound(services: Services, form: Mapping[str, str]) -> InboundResult:
    """Store and act on one inbound message exactly once."""
    sid, phone, channel, body, media = parse_form(form, services.settings.default_region)
    try:
        return _process(services, sid, phone, channel, body, media)
    except IntegrityError:
        # The same MessageSid committed by a concurrent request first: this one is the repeat.
        return InboundResult(duplicate=True)


def _process(
    services: Services,
    sid: str,
    phone: str,
    channel: str,
    body: str,
    media: list[dict[str, str]],
) -> InboundResult:
    # No round trip to check the pooled connection first (PostgreSQL): a connection found lost
    # is replaced and the message handled again from the start. That is safe at any point,
    # even if the first try committed: the MessageSid is then found stored (a repeat), and the
    # replies that try queued go with the scheduler's next tick.
    try:
        return _once(services, sid, phone, channel, body, media, ping=False)
    except Exception as error:
        if not services.db.lost_connection(error):
            raise
        log.warning("the database connection was lost; handling the message on a new one")
    return _once(services, sid, phone, channel, body, media, ping=True)


def _once(
    services: Services,
    sid: str,
    phone: str,
    channel: str,
    body: str,
    media: list[dict[str, str]],
    *,
    ping: bool,
) -> InboundResult:
    now = services.now()
    plans: list[inbound_core.Plan | None] = [None]

    def plan(connection: Connection) -> None:
        plans[0] = inbound_core.plan(connection, services, phone, body, len(media), now)

    # SQLite writers take turns (one lock): read and run the engine before taking it, so that
    # only the writes are serialised. Under the lock ``handle`` uses the plan only if the family
    # and its conversation still read the same; if not, it decides again.
    before = plan if services.db.is_sqlite else None
    try:
        with services.db.unit(before=before, ping=ping) as unit:
            found, message_id = inbound_core.arrive(
                unit.connection, phone, sid, channel, body, media, now
            )
            if found is None:
                return _not_a_family(unit.session, services, sid, phone, channel, body, media, now)
            if message_id is None:
                raise inbound_core.Repeat  # rolled back: a retry changes nothing
            queued = inbound_core.handle(
                unit, services, found, message_id, body, len(media), now, plans[0]
            )
            if queued is not None:
                return InboundResult(outbox=queued)
            return _from_family(unit.session, services, phone, message_id, body, media, now)
    except inbound_core.Repeat:
        return InboundResult(duplicate=True)


def _not_a_family(
    session: Session,
    services: Services,
    sid: str,
    phone: str,
    channel: str,
    body: str,
    media: list[dict[str, str]],
    now: datetime,
) -> InboundResult:
    """A message from a member of staff, or from a number nobody enrolled."""
    if session.scalar(select(Message.id).where(Message.twilio_sid == sid)) is not None:
        return InboundResult(duplicate=True)
    staff = session.scalar(select(Staff).where(Staff.phone == phone, Staff.active.is_(True)))
    message = Message(
        direction="in",
        family_id=None,
        staff_id=staff.id if staff else None,
        channel=channel,
        twilio_sid=sid,
        # Words from a number nobody enrolled are not kept: they are no one's record.
        body=body if staff else None,
        media=media or None,
        status="received",
        created_at=now,
        updated_at=now,
    )
    session.add(message)
    session.flush()  # a repeated MessageSid fails here, before anything else is written
    if staff is not None:
        answer = staff_command(session, services, staff, body, now)
        return InboundResult(replies=[answer.confirmation], outbox=answer.outbox)
    log.info("message from a number nobody enrolled; answered with one line")
    return InboundResult(
        known_sender=False,
        replies=[services.catalogue.render("system.unknown_sender", {})],
    )


def _held_family(session: Session, phone: str) -> Family | None:
    """The family, its conversation and therapist in one statement.

    Only for a family this transaction already holds (``inbound_core.arrive`` locked its row
    on PostgreSQL; on SQLite the transaction holds the writers' lock): with no lock to wait for,
    the joined rows are current. ``conversations.lock_family`` reads them one query each, because
    a row joined into a locking query is read as it was before the wait.
    """
    statement = (
        select(Family)
        .where(Family.phone == phone)
        .options(joinedload(Family.conversation), joinedload(Family.therapist))
    )
    return session.execute(statement).scalar_one_or_none()


def _from_family(
    session: Session,
    services: Services,
    phone: str,
    message_id: int,
    body: str,
    media: list[dict[str, str]],
    now: datetime,
) -> InboundResult:
    """The family's stored message, through the ORM: screening, hand-off, alerts, STOP/START..."""
    family = _held_family(session, phone)
    message = session.get(Message, message_id)
    assert family is not None and message is not None  # locked and stored in this transaction
    family.last_inbound_at = now
    found = (
        screen(body, services.risk, family.language) if body.strip() else Screening("none", None)
    )
    if found.tier == ALERT:
        # Screened first: a risky message is not also read as an answer to a question.
        heard_from(family)
        outbox = act_on_alert(session, services, family, message, found, now)
        if media:
            outbox += act_on_media(session, services, family, message, media, now)
        return InboundResult(outbox=outbox)
    outbox = []
    handler = family.conversation.handoff_staff_id if family.conversation else None
    person = session.get(Staff, handler) if handler is not None and not family.opted_out else None
    if person is not None:
        # A person has taken this conversation over: the words go to them, not the flow.
        if body.strip():
            outbox.append(forward_to_staff(session, services, family, person, body, now).id)
        heard_from(family)
    else:
        outcome = handle_message(
            services.flows,
            state_of(family),
            MessageIn(body, len(media), asks_for_person=found.person),
            context_for(family, now, services.languages(), services.voice_notes(family.language)),
            family.opted_out,
        )
        applied: Applied = apply_outcome(session, services, family, outcome, now, inbound=message)
        outbox += applied.outbox
        if not family.opted_out:
            heard_from(family)
    if found.tier == REVIEW and not family.opted_out:
        outbox += act_on_review(session, services, family, message, found, now)
    if media and not family.opted_out:
        outbox += act_on_media(session, services, family, message, media, now)
    return InboundResult(outbox=outbox)


def simulated_sid() -> str:
    """A MessageSid for messages typed into the simulator (never clashes with Twilio's)."""
    return "SM" + uuid.uuid4().hex
