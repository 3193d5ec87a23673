"""The alerts inbox: most urgent and oldest first; acknowledge, resolve, take over and reply.

The same actions as the SMS commands (ACK, R, BACK, RESUME), through the same functions, so an
alert acknowledged on a phone is acknowledged here too and the escalation stops either way.
"""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import and_, case, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from service.admin import bp, now, record, roles, services, viewer
from service.alerts import acknowledge, resolve
from service.auth import families_for, may_see
from service.conversations import lock_family
from service.handoff import hand_back, staff_to_parent
from service.models import Alert, Conversation, Family, Staff
from service.programme import resume_after_alert

URGENCY_ORDER = case((Alert.urgency == "urgent", 0), (Alert.urgency == "soon", 1), else_=2)
# An open alert the whole rota left unacknowledged comes before the others of its urgency.
OVERDUE_FIRST = case((and_(Alert.overdue_at.is_not(None), Alert.status == "open"), 0), else_=1)
MAX_REPLY = 1600


@bp.get("/alerts")
@roles("admin", "therapist")
def alerts() -> str:
    """Open and acknowledged alerts of the viewer's families, most urgent (overdue first of those)
    and oldest first."""
    visible = families_for(viewer()).with_only_columns(Family.id).scalar_subquery()
    with services().db.transaction() as db:
        rows = list(
            db.execute(
                select(Alert, Family.ref, Family.status, Staff.name, Conversation.handoff_staff_id)
                .join(Family, Family.id == Alert.family_id)
                .outerjoin(Conversation, Conversation.family_id == Family.id)
                .outerjoin(Staff, Staff.id == Alert.acknowledged_by)
                .where(Alert.status != "resolved", Alert.family_id.in_(visible))
                .order_by(URGENCY_ORDER, OVERDUE_FIRST, Alert.created_at, Alert.id)
            )
        )
    return render_template("admin/alerts.html", rows=rows, moment=now())


def _alert_for_viewer(db: Session, code: str) -> tuple[Alert, Family] | None:
    alert = db.scalar(select(Alert).where(Alert.code == code.strip().upper()[:12]))
    if alert is None:
        return None
    family = lock_family(db, id=alert.family_id)
    if family is None or not may_see(viewer(), family):
        return None
    return alert, family


def _back() -> Response:
    target = request.form.get("back") or ""
    if target.startswith("/admin/") and not target.startswith("//"):
        return redirect(target)
    return redirect(url_for("admin.alerts"))


@bp.post("/alerts/<code>")
@roles("admin", "therapist")
def act(code: str) -> Response:
    """One action on an alert: acknowledge, resolve, reply (take over), hand back, resume."""
    action = request.form.get("action", "")
    text = (request.form.get("text") or "").strip()
    user = viewer()
    svc = services()
    outbox: list[int] = []
    with svc.db.transaction() as db:
        found = _alert_for_viewer(db, code)
        if found is None:
            flash("No such alert.", "error")
            return _back()
        alert, family = found
        staff = db.get(Staff, user.staff_id) if user.staff_id else None
        moment = now()
        if action == "acknowledge":
            acknowledge(db, alert, staff, moment)
            message = f"Alert {alert.code} acknowledged: the escalation has stopped."
        elif action == "resolve":
            resolve(db, alert, staff, moment)
            message = f"Alert {alert.code} resolved."
        elif action == "reply":
            if staff is None:
                flash("Your login is not linked to a staff record, so you cannot reply.", "error")
                return _back()
            if not text:
                flash("Write your message to the parent first.", "error")
                return _back()
            sent = staff_to_parent(db, svc, family, staff, text[:MAX_REPLY], moment)
            acknowledge(db, alert, staff, moment)
            outbox.append(sent.id)
            message = (
                f"Sent to {family.ref}. Their replies now come to you until you hand them back."
            )
        elif action == "hand_back":
            acknowledge(db, alert, staff, moment)
            hand_back(family)
            message = f"{family.ref} is back with the programme."
        elif action == "resume":
            acknowledge(db, alert, staff, moment)
            resume_after_alert(db, family, moment)
            message = f"The programme for {family.ref} will carry on at its next session."
        else:
            flash("Unknown action.", "error")
            return _back()
        record(
            db,
            f"alert {action.replace('_', ' ')}",
            family_ref=family.ref,
            detail=f"alert {alert.code} ({alert.kind})",
        )
    if outbox:
        current_app.extensions["bravesteps.dispatcher"].submit(outbox)
    flash(message, "ok")
    return _back()
