"""Alerts: who is told, by when they must act, escalation up the rota, and staff replies by SMS.

The rules are programme.md's risk table. An alert text carries the family's reference, the kind and
urgency, a link and a short code; never a child's name or a parent's words (phones are shared). A
member of staff acknowledges with "ACK <code>", if the alert is theirs to act on (any other code
gets the one neutral answer, and five such misses in 15 minutes lock the number out for 15); an
urgent alert nobody acknowledges in its time goes to the next role on the rota (therapist, duty,
safeguarding, lead). Every alert, message, acknowledgement and escalation is stored with its
time.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, case, func, select
from sqlalchemy.orm import Session

from flows.care import ROTA, URGENCY_RANK, Rule, rule_for
from messages.segments import count_segments
from service.fastsql import table_of
from service.models import (
    PRIORITY_FIRST,
    PRIORITY_NORMAL,
    Alert,
    AlertEvent,
    DueWork,
    Family,
    Message,
    Staff,
    StaffCommandMiss,
)
from service.refs import new_ref
from service.wiring import Services

log = logging.getLogger("bravesteps.alerts")

ALERT_KEY = "system.alert_to_staff"
OVERDUE_KEY = "system.alert_overdue"
OVERDUE_EVERY = timedelta(hours=1)  # an overdue alert is told again this often until someone has it

_ALERTS = table_of(Alert)
# The family's open alert of a kind (the most urgent, then the newest), that a new one may join:
# read by ``raise_alert`` and by the webhook's Core path (``inbound_core``) alike.
OPEN_ALERT = (
    select(_ALERTS.c.id, _ALERTS.c.urgency)
    .where(
        _ALERTS.c.family_id == bindparam("family_id"),
        _ALERTS.c.kind == bindparam("kind"),
        _ALERTS.c.status == "open",
        _ALERTS.c.acknowledged_at.is_(None),
    )
    .order_by(
        case(
            *((_ALERTS.c.urgency == name, rank) for name, rank in URGENCY_RANK.items()), else_=0
        ).desc(),
        _ALERTS.c.id.desc(),
    )
    .limit(1)
)


def deadline(services: Services, rule: Rule, now: datetime) -> datetime:
    """When someone must have acted; counted in staffed hours except for the 15-minute rule."""
    hours = services.settings.staffed_hours
    zone = ZoneInfo(services.settings.default_timezone)
    amount, _, unit = rule.within.partition(" ")
    if rule.within == "15 minutes":
        return now + timedelta(minutes=15)
    if rule.within == "same working day":
        return hours.end_of_working_day(now, zone)
    span = timedelta(hours=int(amount)) if unit.startswith("working hour") else None
    if span is None:
        day = datetime.combine(now.date(), hours.end) - datetime.combine(now.date(), hours.start)
        span = int(amount) * day
    return hours.add_working(now, zone, span)


def staffed_now(services: Services, now: datetime) -> bool:
    """True in staffed hours (in the service's own time zone)."""
    return services.settings.staffed_hours.is_staffed(
        now, ZoneInfo(services.settings.default_timezone)
    )


def next_staffed(services: Services, now: datetime) -> datetime:
    """``now`` in staffed hours, else when the next staffed period starts (bank holidays are not
    known: a staffed weekday is staffed)."""
    zone = ZoneInfo(services.settings.default_timezone)
    return services.settings.staffed_hours.add_working(now, zone, timedelta(0))


def text_due(services: Services, urgency: str, now: datetime) -> datetime:
    """When an alert's text may go to staff: an urgent or soon one at once, a routine one in
    staffed hours (raised outside them, it waits for the next staffed period to start)."""
    return now if urgency != "routine" else next_staffed(services, now)


def _staff_for(session: Session, family: Family, role: str) -> list[Staff]:
    if role == "therapist":
        return [family.therapist] if family.therapist and family.therapist.active else []
    return list(
        session.scalars(
            select(Staff).where(Staff.role == role, Staff.active.is_(True)).order_by(Staff.id)
        )
    )


def queue_staff_message(
    session: Session,
    staff: Staff,
    body: str,
    key: str | None,
    now: datetime,
    *,
    due: datetime | None = None,
    dedupe_key: str | None = None,
    priority: int = PRIORITY_NORMAL,
) -> Message:
    """A text to a member of staff (alerts, call prompts, forwarded replies); never held for a
    family's quiet hours: ``due`` says when it may go."""
    values = staff_message_values(
        staff.id, staff.channel, body, key, now, due=due, dedupe_key=dedupe_key, priority=priority
    )
    message = Message(**values)
    session.add(message)
    session.flush()
    return message


def staff_message_values(
    staff_id: int,
    channel: str,
    body: str,
    key: str | None,
    now: datetime,
    *,
    due: datetime | None = None,
    dedupe_key: str | None = None,
    priority: int = PRIORITY_NORMAL,
) -> dict[str, Any]:
    """The outbox row of a text to a member of staff (``priority``: ``PRIORITY_FIRST`` for an
    urgent alert's); its columns, in order, are those of ``conversations.outbox_values`` (so the
    webhook can insert both kinds in one statement)."""
    return {
        "direction": "out",
        "family_id": None,
        "staff_id": staff_id,
        "channel": channel,
        "body": body,
        "media": None,
        "catalogue_key": key,
        "flow": None,
        "step": None,
        "quick_replies": None,
        "segments": count_segments(body),
        "status": "pending",
        "reply": True,
        "in_reply_to": None,
        "dedupe_key": dedupe_key,
        "due_at": due or now,
        "priority": priority,
        "created_at": now,
        "updated_at": now,
    }


def alert_text(
    services: Services, family_ref: str, kind: str, urgency: str, code: str, key: str = ALERT_KEY
) -> str:
    """What an alert says to a member of staff: the family's reference, the kind, the urgency,
    a link and the code to acknowledge it with (never a name or a parent's words). ``key``:
    the words, ``OVERDUE_KEY`` for an alert nobody acknowledged."""
    link = (services.settings.public_url or "") + f"/admin/families/{family_ref}"
    return services.catalogue.render(
        key,
        {
            "family_ref": family_ref,
            "alert_kind": kind.replace("_", " "),
            "urgency": urgency,
            "link": link,
            "code": code,
        },
    )


def _notify(
    session: Session,
    services: Services,
    alert: Alert,
    family: Family,
    staff: Staff,
    now: datetime,
    key: str = ALERT_KEY,
) -> Message:
    body = alert_text(services, family.ref, alert.kind, alert.urgency, alert.code, key)
    priority = PRIORITY_FIRST if alert.urgency == "urgent" else PRIORITY_NORMAL
    due = text_due(services, alert.urgency, now)
    message = queue_staff_message(session, staff, body, key, now, due=due, priority=priority)
    session.add(
        AlertEvent(
            alert_id=alert.id, kind="sent", staff_id=staff.id, role=staff.role, created_at=now
        )
    )
    return message


def _roles_now(services: Services, rule: Rule, now: datetime) -> tuple[str, ...]:
    """Urgent alerts outside staffed hours go to the out-of-hours role, where one is set."""
    role = services.settings.out_of_hours_role
    if (
        rule.urgency == "urgent"
        and role
        and not staffed_now(services, now)
        and role not in rule.roles
    ):
        return (*rule.roles, role)
    return rule.roles


def therapist_only(services: Services, kind: str, urgency: str | None, now: datetime) -> bool:
    """An alert that goes to the family's therapist alone and never escalates (not urgent):
    the webhook writes these itself (``inbound_core``); ``raise_alert`` writes every other."""
    rule = rule_for(kind)
    return (
        _roles_now(services, rule, now) == ("therapist",) and (urgency or rule.urgency) != "urgent"
    )


def alert_to_join(open_alert: Any | None, urgency: str) -> int | None:
    """The open alert (``OPEN_ALERT``'s row, or None) that a new alert of its kind joins: no new
    alert and no new text. None: there is none, or the new one is more urgent (a new alert)."""
    if open_alert is None:
        return None
    more_urgent = URGENCY_RANK.get(urgency, 0) > URGENCY_RANK.get(open_alert.urgency, 0)
    return None if more_urgent else int(open_alert.id)


def raise_alert(
    session: Session,
    services: Services,
    family: Family,
    kind: str,
    now: datetime,
    inbound: Message | None = None,
    urgency: str | None = None,
    *,
    rule: str | None = None,
    score: float | None = None,
) -> tuple[Alert, list[Message]]:
    """Record an alert, text the people its rule names, and set up its escalation; or, while
    one of its kind is open for the family, record a "joined" event on that one instead.
    ``rule`` and ``score``: what raised it (a screening rule's id or "model:<version>")."""
    found = session.execute(OPEN_ALERT, {"family_id": family.id, "kind": kind}).first()
    joined = alert_to_join(found, urgency or rule_for(kind).urgency)
    if joined is not None:
        at = inbound.created_at if inbound is not None else now
        session.add(AlertEvent(alert_id=joined, kind="joined", created_at=at))
        open_alert = session.get(Alert, joined)
        assert open_alert is not None
        return open_alert, []
    roles = _roles_now(services, rule_for(kind), now)
    inbound_id = inbound.id if inbound else None
    values = alert_values(services, family, kind, urgency, inbound_id, roles, now)
    alert = Alert(**values, code=_new_code(session), rule=rule, score=score)
    session.add(alert)
    session.flush()
    session.add(AlertEvent(alert_id=alert.id, kind="raised", created_at=now))
    sent = [
        _notify(session, services, alert, family, s, now)
        for r in roles
        for s in _staff_for(session, family, r)
    ]
    if not sent:
        log.warning(
            "alert %s for family %s: nobody holds the roles %s", alert.code, family.ref, roles
        )
    if alert.urgency == "urgent":
        _escalation_due(session, family, alert, now)
    session.flush()
    return alert, sent


def alert_values(
    services: Services,
    family: Family,
    kind: str,
    urgency: str | None,
    inbound_id: int | None,
    roles: tuple[str, ...],
    now: datetime,
) -> dict[str, Any]:
    """A new alert's columns, all but its code, for the ``roles`` told first: as ``raise_alert``
    stores it and as the webhook does (``inbound_core``)."""
    rule = rule_for(kind)
    return {
        "family_id": family.id,
        "staff_id": family.therapist_id,
        "kind": kind,
        "urgency": urgency or rule.urgency,
        "source_message_id": inbound_id,
        "due_by": deadline(services, rule, now),
        "level": max(ROTA.index(r) for r in roles if r in ROTA),
        "created_at": now,
    }


def _new_code(session: Session) -> str:
    code = ""
    for code in alert_codes():
        if session.scalar(select(Alert.id).where(Alert.code == code)) is None:
            break
    return code


def alert_codes() -> Iterator[str]:
    """Codes to try, in turn, for a new alert: short ones (easy to type back in "ACK <code>"),
    then, should twenty of those all be taken, one of eight characters."""
    for _ in range(20):
        yield new_ref("A", 4).removeprefix("A-")
    yield new_ref("A", 8).removeprefix("A-")


def escalate(session: Session, services: Services, alert_id: int, now: datetime) -> list[Message]:
    """Nobody acknowledged in time: tell the next role on the rota, and set the next deadline.
    With nobody higher to tell, the alert is overdue (``overdue``)."""
    alert = session.get(Alert, alert_id)
    if alert is None or alert.acknowledged_at is not None or alert.status != "open":
        return []
    family = session.get(Family, alert.family_id)
    assert family is not None
    sent: list[Message] = []
    level = alert.level
    while not sent and level + 1 < len(ROTA):
        level += 1
        for staff in _staff_for(session, family, ROTA[level]):
            sent.append(_notify(session, services, alert, family, staff, now))
    if not sent:
        return overdue(session, services, alert, family, now)
    alert.level = level
    alert.due_by = now + (
        timedelta(minutes=15) if rule_for(alert.kind).within == "15 minutes" else timedelta(hours=1)
    )
    session.add(AlertEvent(alert_id=alert.id, kind="escalated", role=ROTA[level], created_at=now))
    _escalation_due(session, family, alert, now)  # the lead's deadline too: then it is overdue
    return sent


def overdue(
    session: Session, services: Services, alert: Alert, family: Family, now: datetime
) -> list[Message]:
    """The rota is exhausted and nobody acknowledged: tell the lead again (and the out-of-hours
    role outside staffed hours), mark the alert overdue, and do it again in ``OVERDUE_EVERY``."""
    roles = [ROTA[-1]]
    out_of_hours = services.settings.out_of_hours_role
    if out_of_hours and out_of_hours not in roles and not staffed_now(services, now):
        roles.append(out_of_hours)
    told = {staff.id: staff for role in roles for staff in _staff_for(session, family, role)}
    sent = [_notify(session, services, alert, family, s, now, OVERDUE_KEY) for s in told.values()]
    if not sent:
        log.warning("alert %s is overdue and nobody holds the roles %s", alert.code, roles)
    times = session.scalar(
        select(func.count())
        .select_from(AlertEvent)
        .where(AlertEvent.alert_id == alert.id, AlertEvent.kind == "overdue")
    )
    alert.overdue_at = alert.overdue_at or now
    session.add(AlertEvent(alert_id=alert.id, kind="overdue", role=ROTA[-1], created_at=now))
    session.add(
        DueWork(
            family_id=family.id,
            kind="escalate",
            payload={"alert": alert.id},
            due_at=now + OVERDUE_EVERY,
            dedupe_key=f"overdue:{alert.id}:{times}",
            created_at=now,
        )
    )
    return sent


def _escalation_due(session: Session, family: Family, alert: Alert, now: datetime) -> None:
    """The check, at the alert's deadline, that someone acknowledged it at its current level."""
    assert alert.due_by is not None
    session.add(
        DueWork(
            family_id=family.id,
            kind="escalate",
            payload={"alert": alert.id},
            due_at=alert.due_by,
            dedupe_key=f"escalate:{alert.id}:{alert.level}",
            created_at=now,
        )
    )


# The one answer to a code that names no alert the sender may act on, whether or not it exists.
NO_SUCH_ALERT = "bravesteps: no alert of yours has code {code}. Check the code, or use the web app."
MISSES_ALLOWED = 5
MISS_WINDOW = timedelta(minutes=15)
LOCKED_FOR = timedelta(minutes=15)
_STAFF_COMMAND = re.compile(
    r"^\s*(ACK|R|RESUME|BACK)\s+([A-Za-z0-9-]{4,12})\b\s*(.*)$", re.IGNORECASE | re.DOTALL
)


@dataclass
class StaffReply:
    """What a staff command did: a confirmation for them, messages to send, and for whom."""

    confirmation: str
    outbox: list[int]


def staff_command(
    session: Session, services: Services, staff: Staff, text: str, now: datetime
) -> StaffReply:
    """ACK <code>, R <code> <words to the parent>, BACK <code>, RESUME <code>; else a help line.

    Only for an alert the sender may act on (``may_act``); any other code gets the answer an
    unknown one gets, word for word, and counts as a miss. After ``MISSES_ALLOWED`` misses
    within ``MISS_WINDOW``, everything from that number is refused for ``LOCKED_FOR``.
    """
    until = locked_until(_recent_misses(session, staff, now), now)
    if until is not None:
        local = until.astimezone(ZoneInfo(services.settings.default_timezone))
        return StaffReply(
            f"bravesteps: too many codes that name no alert of yours. Commands from this "
            f"number are refused until {local:%H:%M}; use the web app meanwhile.",
            [],
        )
    match = _STAFF_COMMAND.match(text or "")
    if not match:
        return StaffReply(
            "bravesteps: reply ACK <code> to acknowledge, R <code> <message> to write to the "
            "family, BACK <code> to hand them back to the programme, RESUME <code> to restart it.",
            [],
        )
    verb, code, rest = match.group(1).upper(), match.group(2).upper(), match.group(3).strip()
    alert = session.scalar(select(Alert).where(Alert.code == code))
    family = session.get(Family, alert.family_id) if alert is not None else None
    if alert is None or family is None or not may_act(session, services, staff, alert, family):
        session.add(StaffCommandMiss(staff_id=staff.id, created_at=now))
        return StaffReply(NO_SUCH_ALERT.format(code=code), [])
    return _carry_out(session, services, staff, alert, family, verb, rest, now)


def _carry_out(
    session: Session,
    services: Services,
    staff: Staff,
    alert: Alert,
    family: Family,
    verb: str,
    rest: str,
    now: datetime,
) -> StaffReply:
    """Do one command on an alert the sender may act on."""
    code = alert.code
    if verb == "ACK":
        acknowledge(session, alert, staff, now)
        return StaffReply(f"bravesteps: alert {code} for {family.ref} acknowledged. Thank you.", [])
    if verb == "BACK":
        from service.handoff import hand_back

        acknowledge(session, alert, staff, now)
        hand_back(family)
        return StaffReply(f"bravesteps: {family.ref} is back with the programme.", [])
    if verb == "RESUME":
        from service.programme import resume_after_alert

        acknowledge(session, alert, staff, now)
        resume_after_alert(session, family, now)
        return StaffReply(f"bravesteps: the programme for {family.ref} will carry on.", [])
    if not rest:
        return StaffReply("bravesteps: add your message after the code: R <code> <message>.", [])
    from service.handoff import staff_to_parent

    message = staff_to_parent(session, services, family, staff, rest, now)
    acknowledge(session, alert, staff, now)
    return StaffReply(f"bravesteps: sent to {family.ref}.", [message.id])


def rota_roles(alert: Alert, out_of_hours_role: str | None) -> frozenset[str]:
    """The roles on an alert's escalation rota: those its rule names and, for an urgent alert,
    the rota roles above them and the out-of-hours role. "therapist" means the family's own."""
    rule = rule_for(alert.kind)
    roles = set(rule.roles)
    if alert.urgency == "urgent":
        first = max((ROTA.index(r) for r in rule.roles if r in ROTA), default=0)
        roles.update(ROTA[first + 1 :])
        if out_of_hours_role:
            roles.add(out_of_hours_role)
    return frozenset(roles)


def may_act(
    session: Session, services: Services, staff: Staff, alert: Alert, family: Family
) -> bool:
    """True for the family's therapist, a holder of a role on the alert's rota (other than
    "therapist": another family's therapist may not), or anyone the alert was sent to."""
    if family.therapist_id == staff.id:
        return True
    roles = rota_roles(alert, services.settings.out_of_hours_role)
    if staff.role != "therapist" and staff.role in roles:
        return True
    sent = select(AlertEvent.id).where(
        AlertEvent.alert_id == alert.id, AlertEvent.kind == "sent", AlertEvent.staff_id == staff.id
    )
    return session.scalar(sent.limit(1)) is not None


def _recent_misses(session: Session, staff: Staff, now: datetime) -> list[datetime]:
    """The sender's misses recent enough to refuse their commands now."""
    since = now - MISS_WINDOW - LOCKED_FOR
    return list(
        session.scalars(
            select(StaffCommandMiss.created_at).where(
                StaffCommandMiss.staff_id == staff.id, StaffCommandMiss.created_at > since
            )
        )
    )


def locked_until(misses: list[datetime], now: datetime) -> datetime | None:
    """Until when commands are refused: ``LOCKED_FOR`` after a miss that was the
    ``MISSES_ALLOWED``-th within ``MISS_WINDOW``, if that is still to come; else None."""
    times = sorted(misses)
    for i in range(MISSES_ALLOWED - 1, len(times)):
        fifth = times[i]
        if fifth - times[i - MISSES_ALLOWED + 1] < MISS_WINDOW and now < fifth + LOCKED_FOR:
            return fifth + LOCKED_FOR
    return None


def acknowledge(session: Session, alert: Alert, staff: Staff | None, now: datetime) -> None:
    """Stop the escalation: someone has it (``staff`` None: an admin with no staff record)."""
    if alert.acknowledged_at is None:
        alert.acknowledged_at = now
        alert.acknowledged_by = staff.id if staff else None
        alert.status = "acknowledged"
        _event(session, alert, "acknowledged", staff, now)


def resolve(session: Session, alert: Alert, staff: Staff | None, now: datetime) -> None:
    """Done with: the alert leaves the inbox (acknowledged first if nobody had)."""
    acknowledge(session, alert, staff, now)
    if alert.resolved_at is None:
        alert.resolved_at = now
        alert.status = "resolved"
        _event(session, alert, "resolved", staff, now)


def _event(session: Session, alert: Alert, kind: str, staff: Staff | None, now: datetime) -> None:
    session.add(
        AlertEvent(
            alert_id=alert.id,
            kind=kind,
            staff_id=staff.id if staff else None,
            role=staff.role if staff else "admin",
            created_at=now,
        )
    )
