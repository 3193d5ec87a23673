"""The browser simulator: play a parent without Twilio, and see what the therapist's phone gets.

Only registered when no Twilio credentials are set (the demo): it lets anyone inject messages as
any pretend parent, which must never be possible on a real deployment. Messages typed here go
through exactly the same handling as Twilio's webhook, and the outbox is kept in the database.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request
from sqlalchemy import or_, select

from scheduler.tick import run_tick
from service.enrolment import EnrolmentError, EnrolRequest, add_staff, enrol_family
from service.inbound import handle_inbound, simulated_sid
from service.models import Family, Message, Staff
from service.webhooks import services as _services
from service.wiring import Services

bp = Blueprint("simulator", __name__, url_prefix="/simulator")

DEMO_THERAPIST_PHONE = "+447700900001"  # Ofcom's drama range: never a real phone
NAMES = ("Sam", "Alex", "Maya", "Leo", "Ruby", "Noah", "Isla", "Theo")


@bp.get("")
def page() -> str:
    """The simulator page."""
    return render_template("simulator.html")


def _demo_therapist(svc: Services) -> Staff:
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
        return staff


@bp.post("/api/families")
def enrol() -> tuple[Response, int]:
    """Enrol a pretend family in one click and send the opening message."""
    svc = _services()
    data = request.get_json(silent=True) or {}
    therapist = _demo_therapist(svc)
    child = str(data.get("child_name") or random.choice(NAMES))[:60]
    channel = "whatsapp" if data.get("channel") == "whatsapp" else "sms"
    try:
        with svc.db.transaction() as session:
            for _ in range(20):
                phone = f"+4477009{random.randint(10000, 99999)}"
                if session.scalar(select(Family.id).where(Family.phone == phone)) is None:
                    break
            family = enrol_family(
                session,
                EnrolRequest(
                    phone=phone,
                    channel=channel,
                    child_name=child,
                    child_age=8,
                    therapist_ref=therapist.ref,
                ),
                region=svc.settings.default_region,
                default_timezone=svc.settings.default_timezone,
                languages=svc.catalogue.complete_languages(),
                now=svc.now(),
            )
            ref = family.ref
    except EnrolmentError as exc:
        return jsonify({"error": str(exc)}), 400
    run_tick(svc)
    return jsonify({"ref": ref}), 201


def _family(svc: Services, ref: str) -> Family | None:
    with svc.db.transaction() as session:
        return session.scalar(select(Family).where(Family.ref == ref))


@bp.get("/api/families/<ref>")
def transcript(ref: str) -> tuple[Response, int]:
    """The parent's conversation and the therapist's phone, for the page to draw."""
    svc = _services()
    family = _family(svc, ref)
    if family is None:
        return jsonify({"error": "no such pretend family"}), 404
    with svc.db.transaction() as session:
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
            if conversation and conversation.flow
            else "-"
        )

    def view(m: Message) -> dict[str, Any]:
        return {
            "id": m.id,
            "direction": m.direction,
            "body": m.body or "",
            "status": m.status,
            "key": m.catalogue_key,
            "quick_replies": m.quick_replies or [],
            "at": m.created_at.isoformat(),
        }

    return (
        jsonify(
            {
                "ref": family.ref,
                "child_name": family.child_name,
                "status": family.status,
                "step": where,
                "parent": [view(m) for m in rows if m.family_id == family.id],
                "therapist": [view(m) for m in rows if m.staff_id == family.therapist_id],
            }
        ),
        200,
    )


@bp.post("/api/families/<ref>/messages")
def say(ref: str) -> tuple[Response, int]:
    """The pretend parent sends a message, handled exactly as a Twilio webhook would be."""
    svc = _services()
    family = _family(svc, ref)
    if family is None:
        return jsonify({"error": "no such pretend family"}), 404
    data = request.get_json(silent=True) or {}
    text = str(data.get("text") or "")
    if not text.strip():
        return jsonify({"error": "type a message first"}), 400
    form = {"MessageSid": simulated_sid(), "From": family.address, "Body": text, "NumMedia": "0"}
    result = handle_inbound(svc, form)
    current_app.extensions["bravesteps.dispatcher"].submit(result.outbox)
    return jsonify({"ok": True}), 202


@bp.post("/api/tick")
def tick() -> tuple[Response, int]:
    """Run the scheduler now, optionally as if ``days`` had passed (to skip a wait in the demo)."""
    svc = _services()
    data = request.get_json(silent=True) or {}
    try:
        days = max(0.0, min(float(data.get("days") or 0), 60.0))
    except (TypeError, ValueError):
        return jsonify({"error": "days must be a number"}), 400
    if days:
        later = svc.now() + timedelta(days=days)
        svc = replace(svc, clock=lambda: later)
    report = run_tick(svc)
    return jsonify({"summary": report.line()}), 200
