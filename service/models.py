"""The database tables, as typed SQLAlchemy 2.0 models.

Every message in and out is a row (the outbox is the ``messages`` rows still to send), every timed
thing is a ``due_work`` row, and every consent or opt-out is recorded. Unique keys make retries
safe: an inbound ``MessageSid`` is stored once, and an outbound message or due work with a
``dedupe_key`` is created once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Datetimes stored as UTC and always handed back timezone-aware (SQLite forgets zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; pass an aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def driver_bind(self, dialect: Dialect) -> Callable[[datetime | None], Any] | None:
        """For ``service.fastsql``: the value SQLite stores, as ``bind_processor`` would make it
        (process_bind_param, then SQLite's DATETIME text in UTC), in one step. None elsewhere."""
        if dialect.name != "sqlite":
            return None

        def process(value: datetime | None) -> str | None:
            stored = self.process_bind_param(value, dialect)  # naive UTC, or refused
            return None if stored is None else stored.isoformat(" ", "microseconds")

        return process


class Base(DeclarativeBase):
    """Declarative base with stable constraint names for Alembic."""

    metadata = MetaData(naming_convention=NAMING)


class Staff(Base):
    """A member of staff who receives alerts (therapist, duty, safeguarding, lead)."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    email: Mapped[str | None] = mapped_column(String(254))
    channel: Mapped[str] = mapped_column(String(10), default="sms")
    role: Mapped[str] = mapped_column(String(20), default="therapist")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Family(Base):
    """An enrolled family: the parent's number, the child's first name, and their programme."""

    __tablename__ = "families"

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(16), unique=True)
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    channel: Mapped[str] = mapped_column(String(10))
    sms_allowed: Mapped[bool] = mapped_column(Boolean, default=True)
    child_name: Mapped[str] = mapped_column(String(60))
    child_age: Mapped[int] = mapped_column(Integer)
    language: Mapped[str] = mapped_column(String(10), default="en")
    timezone: Mapped[str] = mapped_column(String(64))
    session_day: Mapped[int | None] = mapped_column(Integer)  # Monday = 0
    session_time: Mapped[str | None] = mapped_column(String(5))  # "HH:MM" local
    quiet_hours: Mapped[str | None] = mapped_column(String(11))  # "21:00-08:00" local
    therapist_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    status: Mapped[str] = mapped_column(String(16), default="invited")
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    number_invalid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    programme_start: Mapped[date | None] = mapped_column(Date)  # local date of week 1, day 1
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    calendar_generation: Mapped[int] = mapped_column(Integer, default=0)
    prefers_audio: Mapped[bool] = mapped_column(Boolean, default=False)
    missed_check_ins: Mapped[int] = mapped_column(Integer, default=0)
    nudged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    enrolled_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    therapist: Mapped[Staff] = relationship()
    conversation: Mapped[Conversation | None] = relationship(back_populates="family")

    @property
    def opted_out(self) -> bool:
        """True after STOP (or Twilio's 21610) until START."""
        return self.opted_out_at is not None

    @property
    def address(self) -> str:
        """The Twilio address for this family's channel."""
        return f"whatsapp:{self.phone}" if self.channel == "whatsapp" else self.phone


class Conversation(Base):
    """Where one family is in its flows: flow, the flow version it is on, step, variables."""

    __tablename__ = "conversations"

    family_id: Mapped[int] = mapped_column(ForeignKey("families.id"), primary_key=True)
    flow: Mapped[str | None] = mapped_column(String(64))
    flow_version: Mapped[str | None] = mapped_column(String(16))
    step: Mapped[str | None] = mapped_column(String(64))
    waiting: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    handoff_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    family: Mapped[Family] = relationship(back_populates="conversation")


HAS_SID = "twilio_sid IS NOT NULL"
# ``messages.priority``: what the sender claims first (``outbox.OUTBOX_ORDER``).
PRIORITY_FIRST = 1  # a risk reply to a parent, a text to staff about an urgent alert
PRIORITY_NORMAL = 0
HAS_KEY = "dedupe_key IS NOT NULL"


def where(condition: str) -> dict[str, Any]:
    """A partial index's condition, on both databases."""
    return {"sqlite_where": text(condition), "postgresql_where": text(condition)}


class Message(Base):
    """A message in or out. Outbound rows are the outbox until Twilio accepts them."""

    __tablename__ = "messages"
    __table_args__ = (
        # Partial: each index holds only the rows it is there to find (migration 0008); the
        # outbox's own index follows the class.
        Index("ix_messages_family_created", "family_id", "id"),
        Index("uq_messages_twilio_sid", "twilio_sid", unique=True, **where(HAS_SID)),
        Index("uq_messages_dedupe_key", "dedupe_key", unique=True, **where(HAS_KEY)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    direction: Mapped[str] = mapped_column(String(3))  # "in" | "out"
    family_id: Mapped[int | None] = mapped_column(ForeignKey("families.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    channel: Mapped[str] = mapped_column(String(10))
    twilio_sid: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[str | None] = mapped_column(Text)
    media: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)
    catalogue_key: Mapped[str | None] = mapped_column(String(80))
    flow: Mapped[str | None] = mapped_column(String(64))
    step: Mapped[str | None] = mapped_column(String(64))
    quick_replies: Mapped[list[str] | None] = mapped_column(JSON)
    segments: Mapped[int | None] = mapped_column(Integer)
    # Twilio's status: received | pending | sending | queued | accepted | sent | delivered | read
    #   | undelivered | failed | held | simulated
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[int | None] = mapped_column(Integer)
    reply: Mapped[bool] = mapped_column(Boolean, default=False)
    in_reply_to: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    dedupe_key: Mapped[str | None] = mapped_column(String(160))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claim_token: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    priority: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(String(200))
    content_sid: Mapped[str | None] = mapped_column(String(64))
    content_variables: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


# The sender's claim order (``outbox.OUTBOX_ORDER``): priority first, 1 before 0, then the due
# time (migration 0010).
Index(
    "ix_messages_outbox",
    Message.status,
    Message.priority.desc(),
    Message.due_at,
    **where("direction = 'out'"),
)


class Answer(Base):
    """A parent's answer to a question, with when and where it was asked."""

    __tablename__ = "answers"

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("families.id"), index=True)
    flow: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(64))
    question: Mapped[str] = mapped_column(String(80))
    value: Mapped[Any] = mapped_column(JSON)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    week: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Measure(Base):
    """A number tracked over the weeks: goal ratings, the worry rating, helpfulness."""

    __tablename__ = "measures"

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("families.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)
    flow: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(64))
    week: Mapped[int | None] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Alert(Base):
    """Something a person must look at; holds no message text and no child's name."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("families.id"), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    kind: Mapped[str] = mapped_column(String(40))
    urgency: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(12), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    source_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    due_by: Mapped[datetime | None] = mapped_column(UTCDateTime())
    level: Mapped[int] = mapped_column(Integer, default=0)  # highest rota role alerted so far
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set when an urgent alert's rota ran out with nobody acknowledging it.
    overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # What raised it, for the clinical safety officer: a screening rule's id or "model:<version>".
    rule: Mapped[str | None] = mapped_column(String(80))
    score: Mapped[float | None] = mapped_column(Float)


class AlertEvent(Base):
    """Every alert raised, sent, acknowledged, escalated or resolved, with its time."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    kind: Mapped[str] = mapped_column(
        String(20)
    )  # raised | sent | joined | acknowledged | escalated | overdue | resolved
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    role: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StaffCommandMiss(Base):
    """An SMS command from a member of staff that named no alert of theirs (a wrong or unknown
    code); five in 15 minutes refuse that number's commands for a while."""

    __tablename__ = "staff_command_misses"
    __table_args__ = (
        Index("ix_staff_command_misses_staff_id_created_at", "staff_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DueWork(Base):
    """Timed work: start a flow, wake a waiting question. Claimed atomically, done once."""

    __tablename__ = "due_work"
    __table_args__ = (
        Index("ix_due_work_pending", "due_at", **where("done_at IS NULL")),
        Index("uq_due_work_dedupe_key", "dedupe_key", unique=True, **where(HAS_KEY)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("families.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # start_flow | wake
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    dedupe_key: Mapped[str | None] = mapped_column(String(160))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claim_token: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ConsentEvent(Base):
    """The record of consent given or declined, opt-outs and opt-ins, with their source."""

    __tablename__ = "consent_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("families.id"), index=True)
    kind: Mapped[str] = mapped_column(
        String(20)
    )  # consent_given | consent_declined | opt_out | opt_in
    source: Mapped[str] = mapped_column(String(40))  # sms reply | twilio 21610 | staff
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class User(Base):
    """A login for the staff web app: admin (everything), therapist (their own families) or
    school (the families they enrolled, without clinical notes)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower-case
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    staff: Mapped[Staff | None] = relationship()


class LoginAttempt(Base):
    """Every sign-in attempt, so that repeated failures are slowed and then refused."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_email_at", "email", "at"),
        Index("ix_login_attempts_ip_at", "ip", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    ip: Mapped[str] = mapped_column(String(45))
    ok: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditEvent(Base):
    """Who viewed or changed which family, and when. Keeps the family's reference, not a key,
    so the record outlives an erased family."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_family_ref_at", "family_ref", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(40))
    family_ref: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(String(200))


class Note(Base):
    """A clinical note a therapist or admin keeps on a family (never shown to school staff)."""

    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("families.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EarlyStatus(Base):
    """A status callback for a SID not stored yet: the send's outcome is recorded a moment after
    Twilio answers, and a quick report can beat it. Applied by the next tick, never dropped."""

    __tablename__ = "early_statuses"

    id: Mapped[int] = mapped_column(primary_key=True)
    sid: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[int | None] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
