"""Adding staff and enrolling families: checked input, one row each, the opening message due."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from flows.runtime import WEEKDAYS
from service.models import Conversation, DueWork, Family, Staff
from service.phones import normalise_phone
from service.refs import new_ref

ROLES = ("therapist", "duty", "safeguarding", "lead")
CHANNELS = ("sms", "whatsapp")
OPENING_FLOW = "onboarding"


class EnrolmentError(ValueError):
    """Input a person must correct; the text says how."""


def add_staff(
    session: Session,
    *,
    name: str,
    phone: str,
    email: str | None,
    channel: str,
    role: str,
    region: str,
    now: datetime,
) -> Staff:
    """Add a member of staff who receives alerts."""
    if not name.strip():
        raise EnrolmentError("--name is empty")
    if channel not in CHANNELS:
        raise EnrolmentError("--channel must be sms or whatsapp")
    if role not in ROLES:
        raise EnrolmentError(f"--role must be one of {', '.join(ROLES)}")
    if email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
        raise EnrolmentError("--email is not an email address")
    try:
        number = normalise_phone(phone, region)
    except ValueError as exc:
        raise EnrolmentError(f"--phone {exc}") from None
    if session.scalar(select(Staff.id).where(Staff.phone == number)) is not None:
        raise EnrolmentError("a member of staff with that phone number already exists")
    staff = Staff(
        ref=new_ref("T", 5),
        name=name.strip(),
        phone=number,
        email=email,
        channel=channel,
        role=role,
        created_at=now,
    )
    session.add(staff)
    session.flush()
    return staff


@dataclass(frozen=True)
class EnrolRequest:
    """What staff give to enrol a family."""

    phone: str
    channel: str
    child_name: str
    child_age: int
    therapist_ref: str
    language: str = "en"
    timezone: str | None = None
    session_day: str | None = None
    session_time: str | None = None


def parse_day(text: str) -> int:
    """Monday = 0; accepts full names and three-letter forms."""
    word = text.strip().lower()
    for index, day in enumerate(WEEKDAYS):
        if word in (day, day[:3]):
            return index
    raise EnrolmentError("--session-day must be a day of the week, like monday")


def parse_clock(text: str) -> str:
    """``HH:MM`` on the 24-hour clock."""
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text.strip())
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise EnrolmentError("--session-time must be HH:MM on the 24-hour clock, like 18:00")
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def enrol_family(
    session: Session,
    request: EnrolRequest,
    *,
    region: str,
    default_timezone: str,
    languages: list[str],
    now: datetime,
) -> Family:
    """Create the family, its empty conversation, and the opening message due now."""
    if request.channel not in CHANNELS:
        raise EnrolmentError("--channel must be sms or whatsapp")
    name = request.child_name.strip()
    if not name or len(name) > 60:
        raise EnrolmentError("--child-name must be a first name of up to 60 letters")
    if not 3 <= request.child_age <= 18:
        raise EnrolmentError("--child-age must be a number from 3 to 18")
    if request.language not in languages:
        raise EnrolmentError(f"--language must be one of: {', '.join(languages)}")
    timezone = request.timezone or default_timezone
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise EnrolmentError("--timezone must be an IANA time zone like Europe/London") from None
    try:
        number = normalise_phone(request.phone, region)
    except ValueError as exc:
        raise EnrolmentError(f"--phone {exc}") from None
    therapist = session.scalar(select(Staff).where(Staff.ref == request.therapist_ref))
    if therapist is None:
        raise EnrolmentError(f"there is no member of staff '{request.therapist_ref}'")
    if session.scalar(select(Family.id).where(Family.phone == number)) is not None:
        raise EnrolmentError("a family with that phone number is already enrolled")
    family = Family(
        ref=new_ref("F"),
        phone=number,
        channel=request.channel,
        sms_allowed=True,
        child_name=name,
        child_age=request.child_age,
        language=request.language,
        timezone=timezone,
        session_day=parse_day(request.session_day) if request.session_day else None,
        session_time=parse_clock(request.session_time) if request.session_time else None,
        therapist_id=therapist.id,
        status="invited",
        created_at=now,
    )
    session.add(family)
    session.flush()
    session.add(Conversation(family_id=family.id, variables={}, updated_at=now))
    session.add(
        DueWork(
            family_id=family.id,
            kind="start_flow",
            payload={"flow": OPENING_FLOW},
            due_at=now,
            dedupe_key=f"opening:{family.id}",
            created_at=now,
        )
    )
    session.flush()
    return family
