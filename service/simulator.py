"""The browser simulator: play a parent without Twilio, and see what the therapist's phone gets.

Only registered when no Twilio credentials are set (the demo): it lets anyone inject messages as
any pretend parent, which must never be possible on a real deployment. Messages typed here go
through exactly the same handling as Twilio's webhook, and the outbox is kept in the database.

"Skip ahead" moves a simulated clock that every simulator action then uses, so two skips of one
day reach a wait of two days, and what a parent types after a skip happens at the skipped-to time.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scheduler.tick import TickReport, run_tick
from service.enrolment import EnrolmentError, EnrolRequest, add_staff, enrol_family
from service.inbound import handle_inbound, simulated_sid
from service.models import DueWork, Family, Message, Staff
from service.outbox import drain
from service.webhooks import services as _services
from service.wiring import Services

bp = Blueprint("simulator", __name__, url_prefix="/simulator")

# Ofcom's drama range, 07700 900000-900999: numbers that are never a real phone.
DRAMA_RANGE = "+447700900"
DEMO_THERAPIST_PHONE = DRAMA_RANGE + "001"
NAMES = ("Sam", "Alex", "Maya", "Leo", "Ruby", "Noah", "Isla", "Theo")
MAX_SKIP_DAYS = 60.0
OFFSET_KEY = "bravesteps.simulator.offset"


@bp.get("")
def page() -> str:
    """The simulator page."""
    return render_template("simulator.html")


def _offset() -> timedelta:
    offset: timedelta = current_app.extensions.get(OFFSET_KEY, timedelta())
    return offset


def _simulated() -> Services:
    """The app's services on the simulated clock (the real one moved on by every skip)."""
    svc = _services()
    offset = _offset()
    if not offset:
        return svc
    clock = svc.clock
    return replace(svc, clock=lambda: clock() + offset)


def _json_body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


def _error(text: str, status: int) -> tuple[Response, int]:
    return jsonify({"error": text}), status


def _demo_therapist(svc: Services) -> str:
    """The reference of the one pretend therapist every pretend family is enrolled with."""
    for _ in range(2):
        try:
            with svc.db.transaction() as session:
                staff = session.scalar(select(Staff).where(Staff.phone == DEMO_THERAPIST_PHONE))
                if staff is None:
                    staff = add_staff(
                        session,
                        name="Jo Demo",
                        phone=DEMO_THERAPIST_PHONE,
                        email=None,
                        channel="sms",
                        role="therapist",
                        region="GB",
                        now=svc.now(),
                    )
                return staff.ref
        except IntegrityError:  # another request added it at the same moment
            continue
    raise RuntimeError("could not add the demo therapist")


def _free_phone(session: Session) -> str | None:
    """A drama-range number no pretend family has yet."""
    taken = set(
        session.scalars(select(Family.phone).where(Family.phone.startswith(DRAMA_RANGE))).all()
    )
    taken.add(DEMO_THERAPIST_PHONE)
    free = [f"{DRAMA_RANGE}{n:03d}" for n in range(1000) if f"{DRAMA_RANGE}{n:03d}" not in taken]
    return random.choice(free) if free else None


@bp.post("/api/families")
def enrol() -> tuple[Response, int]:
    """Enrol a pretend family in one click and send the opening message."""
    svc = _simulated()
    data = _json_body()
    therapist_ref = _demo_therapist(svc)
    child = str(data.get("child_name") or "").strip()[:60] or random.choice(NAMES)
    channel = "whatsapp" if data.get("channel") == "whatsapp" else "sms"
    try:
        with svc.db.transaction() as session:
            phone = _free_phone(session)
            if phone is None:
                return _error("all 1,000 pretend phone numbers are in use", 409)
            family = enrol_family(
                session,
                EnrolRequest(
                    phone=phone,
                    channel=channel,
                    child_name=child,
                    child_age=8,
                    therapist_ref=therapist_ref,
                ),
                region=svc.settings.default_region,
                default_timezone=svc.settings.default_timezone,
                languages=svc.catalogue.complete_languages(),
                now=svc.now(),
            )
            ref = family.ref
    except EnrolmentError as exc:
        return _error(str(exc), 400)
    except IntegrityError:
        return _error("that pretend number was taken at the same moment; try again", 409)
    run_tick(svc)
    return jsonify({"ref": ref}), 201


def _view(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "direction": message.direction,
        "body": message.body or "",
        "status": message.status,
        "key": message.catalogue_key,
        "quick_replies": message.quick_replies or [],
        "at": message.created_at.isoformat(),
    }


@bp.get("/api/families/<ref>")
def transcript(ref: str) -> tuple[Response, int]:
    """The parent's conversation and the therapist's phone, for the page to draw."""
    svc = _simulated()
    with svc.db.transaction() as session:
        family = session.scalar(select(Family).where(Family.ref == ref))
        if family is None:
            return _error("no such pretend family", 404)
        rows = session.scalars(
            select(Message)
            .where(
                or_(
                    Message.family_id == family.id,
                    Message.staff_id == family.therapist_id,
                )
            )
            .order_by(Message.id)
        ).all()
        conversation = family.conversation
        where = (
            f"{conversation.flow}.{conversation.step}"
            if conversation is not None and conversation.flow and conversation.step
            else "-"
        )
        body = {
            "ref": family.ref,
            "child_name": family.child_name,
            "channel": family.channel,
            "status": family.status,
            "step": where,
            "now": _now_text(svc.now()),
            "parent": [_view(m) for m in rows if m.family_id == family.id],
            "therapist": [_view(m) for m in rows if m.staff_id == family.therapist_id],
        }
    return jsonify(body), 200


def _now_text(moment: datetime) -> str:
    return moment.isoformat(timespec="minutes")


@bp.post("/api/families/<ref>/messages")
def say(ref: str) -> tuple[Response, int]:
    """The pretend parent sends a message, handled exactly as a Twilio webhook would be."""
    svc = _simulated()
    with svc.db.transaction() as session:
        family = session.scalar(select(Family).where(Family.ref == ref))
        address = family.address if family is not None else None
    if address is None:
        return _error("no such pretend family", 404)
    text = str(_json_body().get("text") or "")
    if not text.strip():
        return _error("type a message first", 400)
    form = {"MessageSid": simulated_sid(), "From": address, "Body": text, "NumMedia": "0"}
    result = handle_inbound(svc, form)
    if result.outbox:
        # Sent here, on the simulated clock, so the replies are on the page when it next draws.
        drain(svc, ids=result.outbox)
    return jsonify({"ok": True}), 202


@bp.post("/api/tick")
def tick() -> tuple[Response, int]:
    """Run the scheduler now, after moving the simulated clock on by ``days`` (to skip a wait)."""
    raw = _json_body().get("days") or 0
    try:
        days = float(raw)
    except (TypeError, ValueError):
        return _error("days must be a number", 400)
    if not 0 <= days <= MAX_SKIP_DAYS:
        return _error(f"days must be between 0 and {MAX_SKIP_DAYS:g}", 400)
    report = TickReport()
    if days:
        # Walk through every due moment on the way, as a running scheduler would have, so a skip
        # of a week delivers that week at its times instead of finding it all too late.
        end = _simulated().now() + timedelta(days=days)
        for _ in range(MAX_STEPS):
            due = _next_due(_services(), end)
            if due is None:
                break
            moment = max(due, _simulated().now())
            current_app.extensions[OFFSET_KEY] = moment - _services().now()
            _merge(report, run_tick(_simulated()))
        current_app.extensions[OFFSET_KEY] = end - _services().now()
    svc = _simulated()
    _merge(report, run_tick(svc))
    return jsonify({"summary": report.line(), "now": _now_text(svc.now())}), 200


MAX_STEPS = 500


def _next_due(svc: Services, end: datetime) -> datetime | None:
    """The earliest moment, up to ``end``, when timed work or a waiting message is due."""
    with svc.db.transaction() as session:
        work = session.scalar(
            select(DueWork.due_at)
            .where(DueWork.done_at.is_(None), DueWork.due_at <= end)
            .order_by(DueWork.due_at)
            .limit(1)
        )
        message = session.scalar(
            select(Message.due_at)
            .where(Message.direction == "out", Message.status == "pending", Message.due_at <= end)
            .order_by(Message.due_at)
            .limit(1)
        )
    moments = [m for m in (work, message) if m is not None]
    return min(moments) if moments else None


def _merge(total: TickReport, one: TickReport) -> None:
    total.work_done += one.work_done
    total.work_skipped += one.work_skipped
    total.reconciled += one.reconciled
    total.sent.add(one.sent)


DEMO_EMAIL = "demo@bravesteps.local"


def demo_login(svc: Services) -> tuple[str, str]:
    """A staff-app login for the demo: an admin linked to the pretend therapist, so alerts from
    the simulator can be acknowledged and answered. A new password each run; returns both."""
    import secrets

    from werkzeug.security import generate_password_hash

    from service.auth import add_user
    from service.models import User

    password = secrets.token_urlsafe(9)
    staff_ref = _demo_therapist(svc)
    with svc.db.transaction() as session:
        user = session.scalar(select(User).where(User.email == DEMO_EMAIL))
        if user is None:
            add_user(
                session,
                email=DEMO_EMAIL,
                name="Demo Admin",
                role="admin",
                password=password,
                therapist_ref=staff_ref,
                now=svc.now(),
            )
        else:
            user.password_hash = generate_password_hash(password)
    return DEMO_EMAIL, password
