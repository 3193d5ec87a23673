"""Staff logins: users, passwords, sign-in limits, who may see which family, and the audit log.

Passwords are hashed with Werkzeug's scrypt. Failed sign-ins are counted per email address and per
network address: after ``MAX_FAILURES_PER_EMAIL`` failures in ``WINDOW`` an address is refused
until the window has passed, and every failure after the second is answered more slowly. Roles:

- ``admin`` sees and does everything, including export, erase and the audit log;
- ``therapist`` sees the families of the staff record their login is linked to;
- ``school`` sees the families they enrolled, without clinical notes or alerts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from service.models import AuditEvent, Family, LoginAttempt, Staff, User

ROLES = ("admin", "therapist", "school")
WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_EMAIL = 5
MAX_FAILURES_PER_IP = 20
MIN_PASSWORD = 10
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{2,}$")
# Checked when the email is unknown, so an unknown address takes as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not a real password, never matches")


class Viewer(Protocol):
    """What access rules need to know about whoever is looking (a ``User`` or a sign-in)."""

    @property
    def id(self) -> int: ...
    @property
    def role(self) -> str: ...
    @property
    def staff_id(self) -> int | None: ...


class UserError(ValueError):
    """A user could not be added: the reason is fit to show."""


def normal_email(text: str) -> str:
    """Email addresses compare without case or surrounding spaces."""
    return (text or "").strip().lower()


def add_user(
    session: Session,
    *,
    email: str,
    name: str,
    role: str,
    password: str,
    now: datetime,
    therapist_ref: str | None = None,
) -> User:
    """A new login; a therapist login must name the staff record whose families it sees."""
    address = normal_email(email)
    if not _EMAIL.match(address):
        raise UserError("--email must be an email address, like jo@school.example")
    if role not in ROLES:
        raise UserError(f"--role must be one of: {', '.join(ROLES)}")
    if not name.strip():
        raise UserError("--name must not be empty")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password must be at least {MIN_PASSWORD} characters")
    staff = None
    if therapist_ref:
        staff = session.scalar(select(Staff).where(Staff.ref == therapist_ref.strip().upper()))
        if staff is None:
            raise UserError(f"there is no member of staff '{therapist_ref}'")
    elif role == "therapist":
        raise UserError("a therapist login needs --therapist REF (from 'bravesteps therapist add')")
    if session.scalar(select(User.id).where(User.email == address)) is not None:
        raise UserError("there is already a login with that email")
    user = User(
        email=address,
        name=name.strip(),
        role=role,
        password_hash=generate_password_hash(password),
        staff_id=staff.id if staff else None,
        active=True,
        created_at=now,
    )
    session.add(user)
    session.flush()
    return user


@dataclass(frozen=True)
class SignIn:
    """The result of a sign-in attempt: the user, or why not (one message for every failure)."""

    user: User | None
    refused: bool = False  # too many failures: not even checked
    delay: float = 0.0  # seconds the caller should wait before answering a failure


def _failures(session: Session, column: Any, value: str, since: datetime) -> int:
    query = (
        select(func.count())
        .select_from(LoginAttempt)
        .where(column == value, LoginAttempt.ok.is_(False), LoginAttempt.at > since)
    )
    return int(session.scalar(query) or 0)


def sign_in(session: Session, email: str, password: str, ip: str, now: datetime) -> SignIn:
    """Check a password, counting failures per address; records every attempt."""
    address = normal_email(email)[:254]
    since = now - WINDOW
    by_email = _failures(session, LoginAttempt.email, address, since)
    by_ip = _failures(session, LoginAttempt.ip, ip, since)
    if by_email >= MAX_FAILURES_PER_EMAIL or by_ip >= MAX_FAILURES_PER_IP:
        session.add(LoginAttempt(email=address, ip=ip[:45], ok=False, at=now))
        return SignIn(None, refused=True)
    user = session.scalar(select(User).where(User.email == address))
    ok = check_password_hash(user.password_hash if user else _DUMMY_HASH, password)
    ok = ok and user is not None and user.active
    session.add(LoginAttempt(email=address, ip=ip[:45], ok=ok, at=now))
    if not ok:
        return SignIn(None, delay=min(0.25 * max(0, by_email - 1), 2.0))
    assert user is not None
    user.last_login_at = now
    return SignIn(user)


def families_for(user: Viewer) -> Select[Any]:
    """The families this user may see, as a query to refine."""
    query = select(Family)
    if user.role == "admin":
        return query
    if user.role == "therapist":
        return query.where(Family.therapist_id == (user.staff_id or -1))
    return query.where(Family.enrolled_by_user_id == user.id)


def may_see(user: Viewer, family: Family) -> bool:
    """The same rule as ``families_for``, for one family already loaded."""
    if user.role == "admin":
        return True
    if user.role == "therapist":
        return user.staff_id is not None and family.therapist_id == user.staff_id
    return family.enrolled_by_user_id == user.id


def clinical(user: Viewer) -> bool:
    """Notes, alerts and handoff are for admins and therapists, not school staff."""
    return user.role in ("admin", "therapist")


def audit(
    session: Session,
    user: User | None,
    action: str,
    now: datetime,
    *,
    family_ref: str | None = None,
    detail: str | None = None,
) -> None:
    """One line of the audit log. ``detail`` must never hold a parent's words or a number."""
    session.add(
        AuditEvent(
            at=now,
            user_id=user.id if user else None,
            action=action,
            family_ref=family_ref,
            detail=(detail or None) and detail[:200],
        )
    )
