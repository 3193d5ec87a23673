"""The caseload, one family's page, enrolling, pause/resume, notes, export and erase."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from service.admin import bp, now, record, roles, services, viewer
from service.admin.charts import Series, legend, line_chart
from service.auth import clinical, families_for, may_see
from service.conversations import lock_family
from service.enrolment import WEEKDAYS, EnrolmentError, EnrolRequest, enrol_family
from service.models import (
    Alert,
    AlertEvent,
    Answer,
    AuditEvent,
    ConsentEvent,
    Conversation,
    DueWork,
    Family,
    Measure,
    Message,
    Note,
    Staff,
    User,
)
from service.programme import pause, resume, upcoming

QUIET_AFTER = timedelta(days=7)
STATUSES = ("alert open", "active", "paused", "quiet", "invited", "stopped", "declined")
SORTS = ("status", "ref", "child", "week", "last", "therapist")
CHART_MEASURES = {"goal_1": "Goal 1", "goal_2": "Goal 2", "goal_3": "Goal 3", "worry": "Worry"}
MAX_NOTE = 2000
PAGE_SIZE = 100


@dataclass(frozen=True)
class Row:
    """One family in the caseload."""

    ref: str
    child: str
    status: str
    week: int | None
    last_contact: datetime | None
    therapist: str
    channel: str


def status_of(family: Family, open_alerts: int, moment: datetime) -> str:
    """What a therapist needs first: alert open, stopped, paused, quiet, invited or active."""
    if open_alerts or family.status == "held":
        return "alert open"
    if family.opted_out_at is not None or family.number_invalid_at is not None:
        return "stopped"
    if family.status == "declined":
        return "declined"
    if family.status == "paused" or (family.paused_until and family.paused_until > moment):
        return "paused"
    if family.consent_at is None:
        return "invited"
    last = family.last_inbound_at or family.consent_at
    return "quiet" if moment - last > QUIET_AFTER else "active"


def week_of(conversation: Conversation | None) -> int | None:
    """The programme week the family's flows are on (set by each week's calendar event)."""
    week = (conversation.variables or {}).get("week") if conversation else None
    return week if isinstance(week, int) else None


def _open_alerts(db: Session, family_ids: Iterable[int]) -> dict[int, int]:
    ids = list(family_ids)
    if not ids:
        return {}
    rows = db.execute(
        select(Alert.family_id, func.count())
        .where(Alert.family_id.in_(ids), Alert.status != "resolved")
        .group_by(Alert.family_id)
    )
    return {int(family_id): int(count) for family_id, count in rows}


def caseload(db: Session, moment: datetime) -> list[Row]:
    """Every family the viewer may see, with what the caseload shows."""
    query = (
        families_for(viewer())
        .add_columns(Conversation, Staff.name)
        .outerjoin(Conversation, Conversation.family_id == Family.id)
        .join(Staff, Staff.id == Family.therapist_id)
    )
    found = list(db.execute(query))
    alerts = _open_alerts(db, (family.id for family, _, _ in found))
    return [
        Row(
            family.ref,
            family.child_name,
            status_of(family, alerts.get(family.id, 0), moment),
            week_of(conversation),
            family.last_inbound_at,
            therapist,
            family.channel,
        )
        for family, conversation, therapist in found
    ]


def _sort_key(sort: str) -> Any:
    order = {status: index for index, status in enumerate(STATUSES)}
    oldest = datetime.min.replace(tzinfo=ZoneInfo("UTC"))
    keys = {
        "status": lambda r: (order.get(r.status, 99), r.ref),
        "ref": lambda r: r.ref,
        "child": lambda r: (r.child.lower(), r.ref),
        "week": lambda r: (r.week or 0, r.ref),
        "last": lambda r: (r.last_contact or oldest, r.ref),
        "therapist": lambda r: (r.therapist.lower(), r.ref),
    }
    return keys[sort]


@bp.get("/families")
def families() -> str:
    """The caseload: filter by status or a search, sort by any column."""
    sort = request.args.get("sort", "status")
    sort = sort if sort in SORTS else "status"
    descending = request.args.get("dir") == "desc"
    wanted = request.args.get("status", "")
    search = (request.args.get("q") or "").strip().lower()[:60]
    with services().db.transaction() as db:
        rows = caseload(db, now())
    if wanted in STATUSES:
        rows = [r for r in rows if r.status == wanted]
    if search:
        rows = [r for r in rows if search in r.ref.lower() or search in r.child.lower()]
    rows.sort(key=_sort_key(sort), reverse=descending)
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    try:
        number = min(max(1, int(request.args.get("page", "1"))), pages)
    except ValueError:
        number = 1
    return render_template(
        "admin/families.html",
        rows=rows[(number - 1) * PAGE_SIZE : number * PAGE_SIZE],
        total=len(rows),
        page=number,
        pages=pages,
        sort=sort,
        descending=descending,
        wanted=wanted,
        search=search,
        statuses=STATUSES,
        moment=now(),
    )


def _family_or_404(db: Session, ref: str, *, lock: bool = False) -> Family:
    """The family with ``ref`` if the viewer may see it; 404 otherwise (no hint it exists)."""
    ref = ref.strip().upper()[:16]
    family = (
        lock_family(db, ref=ref) if lock else db.scalar(select(Family).where(Family.ref == ref))
    )
    if family is None or not may_see(viewer(), family):
        abort(404)
    return family


def _chart(db: Session, family: Family) -> tuple[str | None, list[Any], list[Any]]:
    measures = list(
        db.scalars(
            select(Measure)
            .where(Measure.family_id == family.id, Measure.name.in_(list(CHART_MEASURES)))
            .order_by(Measure.recorded_at)
        )
    )
    by_name: dict[str, dict[int, float]] = {}
    for measure in measures:
        if measure.week is not None:
            by_name.setdefault(measure.name, {})[measure.week] = measure.value
    series = [
        Series(label, tuple(sorted(by_name[name].items())))
        for name, label in CHART_MEASURES.items()
        if name in by_name
    ]
    table = sorted({week for points in by_name.values() for week in points})
    rows = [(week, [by_name.get(name, {}).get(week) for name in CHART_MEASURES]) for week in table]
    if not series:
        return None, [], rows
    title = f"Ratings by week for {family.ref}: goals (0 to 10) and worry (0 to 10)"
    return line_chart(series, title=title), legend(series), rows


def _plan(db: Session, family: Family) -> list[dict[str, Any]]:
    """The family's calendar: its events so far as stored, then, while the programme runs, the
    rest of the timetable as it would come (its rows are made one by one, as each is due)."""
    zone = ZoneInfo(family.timezone)
    rows = list(
        db.scalars(
            select(DueWork)
            .where(DueWork.family_id == family.id, DueWork.kind == "calendar")
            .order_by(DueWork.due_at, DueWork.id)
        )
    )
    plan = [
        {
            "week": row.payload.get("week"),
            "day": row.payload.get("day"),
            "flow": row.payload.get("flow"),
            "due": row.due_at.astimezone(zone),
            "state": row.outcome or ("done" if row.done_at else "to come"),
        }
        for row in rows
    ]
    pending = [row.payload for row in rows if row.done_at is None]
    if pending and family.programme_start is not None:
        last = pending[-1]
        for event, due in upcoming(services(), family, last):
            plan.append(
                {
                    "week": event.week,
                    "day": event.day,
                    "flow": event.flow,
                    "due": due.astimezone(zone),
                    "state": "to come",
                }
            )
    return plan


@bp.get("/families/<ref>")
def family(ref: str) -> str:
    """One family: details, consent, programme, transcript, ratings, plan, alerts, notes."""
    user = viewer()
    with services().db.transaction() as db:
        found = _family_or_404(db, ref)
        moment = now()
        messages = list(
            db.scalars(select(Message).where(Message.family_id == found.id).order_by(Message.id))
        )
        alerts = list(
            db.scalars(
                select(Alert).where(Alert.family_id == found.id).order_by(Alert.created_at.desc())
            )
        )
        open_count = sum(1 for a in alerts if a.status != "resolved")
        chart, key, ratings = _chart(db, found)
        notes = (
            list(
                db.execute(
                    select(Note, User.name)
                    .outerjoin(User, User.id == Note.user_id)
                    .where(Note.family_id == found.id)
                    .order_by(Note.created_at.desc())
                )
            )
            if clinical(user)
            else []
        )
        consent = list(
            db.scalars(
                select(ConsentEvent)
                .where(ConsentEvent.family_id == found.id)
                .order_by(ConsentEvent.created_at)
            )
        )
        everyone = list(db.scalars(select(Staff).order_by(Staff.name)))
        staff = {s.id: s.name for s in everyone}
        therapists = [s for s in everyone if s.active and s.role == "therapist"]
        handoff = found.conversation.handoff_staff_id if found.conversation else None
        record(db, "viewed family", family_ref=found.ref)
        context = dict(
            family=found,
            zone=ZoneInfo(found.timezone),
            status=status_of(found, open_count, moment),
            week=week_of(found.conversation),
            therapist=found.therapist.name,
            therapists=therapists,
            messages=messages,
            staff=staff,
            alerts=alerts,
            chart=chart,
            chart_key=key,
            ratings=ratings,
            rating_names=list(CHART_MEASURES.values()),
            plan=_plan(db, found),
            notes=notes,
            consent=consent,
            clinical=clinical(user),
            handoff=handoff,
            moment=moment,
            session_day=WEEKDAYS[found.session_day].title()
            if found.session_day is not None
            else None,
        )
    # Rendered after the transaction: the page's header opens one of its own.
    return render_template("admin/family.html", **context)


def _back(ref: str) -> BaseResponse:
    return redirect(url_for("admin.family", ref=ref))


@bp.post("/families/<ref>/pause")
def pause_family(ref: str) -> BaseResponse:
    """Hold the programme for 1 to 4 weeks (the calendar moves, as when a parent texts PAUSE)."""
    try:
        weeks = int(request.form.get("weeks", "2"))
    except ValueError:
        weeks = 0
    if not 1 <= weeks <= 4:
        flash("Choose a pause of 1 to 4 weeks.", "error")
        return _back(ref)
    with services().db.transaction() as db:
        found = _family_or_404(db, ref, lock=True)
        if found.consent_at is None or found.opted_out_at is not None:
            flash("Only a family on the programme can be paused.", "error")
            return _back(found.ref)
        pause(db, found, weeks, now())
        record(
            db,
            "paused",
            family_ref=found.ref,
            detail=f"{weeks} weeks",
        )
    flash(f"Paused for {weeks} week{'s' if weeks > 1 else ''}.", "ok")
    return _back(ref)


@bp.post("/families/<ref>/resume")
def resume_family(ref: str) -> BaseResponse:
    """End a pause: the next step comes at the family's next session time."""
    with services().db.transaction() as db:
        found = _family_or_404(db, ref, lock=True)
        if found.paused_until is None:
            flash("This family is not paused.", "error")
            return _back(found.ref)
        resume(db, found, now())
        record(db, "resumed", family_ref=found.ref)
    flash("Resumed: the next step comes at the family's next session time.", "ok")
    return _back(ref)


@bp.post("/families/<ref>/therapist")
@roles("admin")
def move_family(ref: str) -> BaseResponse:
    """Give the family to another therapist (staff move on): alerts and calls go to them now."""
    wanted = (request.form.get("therapist") or "").strip().upper()
    with services().db.transaction() as db:
        found = _family_or_404(db, ref, lock=True)
        staff = db.scalar(
            select(Staff).where(
                Staff.ref == wanted, Staff.active.is_(True), Staff.role == "therapist"
            )
        )
        if staff is None:
            flash("Choose a therapist from the list.", "error")
            return _back(found.ref)
        before = found.therapist.ref
        found.therapist_id = staff.id
        record(
            db,
            "moved to therapist",
            family_ref=found.ref,
            detail=f"{before} -> {staff.ref}",
        )
        name = staff.name
    flash(f"{ref} is now with {name}.", "ok")
    return _back(ref)


@bp.post("/families/<ref>/notes")
@roles("admin", "therapist")
def add_note(ref: str) -> BaseResponse:
    """A clinical note (never shown to school staff)."""
    text = (request.form.get("text") or "").strip()
    if not text:
        flash("Write the note first.", "error")
        return _back(ref)
    with services().db.transaction() as db:
        found = _family_or_404(db, ref)
        db.add(
            Note(family_id=found.id, user_id=viewer().id, text=text[:MAX_NOTE], created_at=now())
        )
        record(db, "added note", family_ref=found.ref)
    flash("Note saved.", "ok")
    return _back(ref)


def export_of(db: Session, family: Family) -> dict[str, Any]:
    """Everything stored about a family, as plain data."""

    def rows(model: Any, *where: Any) -> list[dict[str, Any]]:
        found = db.scalars(select(model).where(*where).order_by(*model.__table__.primary_key))
        return [
            {c.key: _plain(getattr(row, c.key)) for c in model.__table__.columns} for row in found
        ]

    alert_ids = select(Alert.id).where(Alert.family_id == family.id)
    return {
        "family": {c.key: _plain(getattr(family, c.key)) for c in Family.__table__.columns},
        "conversation": rows(Conversation, Conversation.family_id == family.id),
        "consent": rows(ConsentEvent, ConsentEvent.family_id == family.id),
        "messages": rows(Message, Message.family_id == family.id),
        "answers": rows(Answer, Answer.family_id == family.id),
        "measures": rows(Measure, Measure.family_id == family.id),
        "alerts": rows(Alert, Alert.family_id == family.id),
        "alert_events": rows(AlertEvent, AlertEvent.alert_id.in_(alert_ids)),
        "due_work": rows(DueWork, DueWork.family_id == family.id),
        "notes": rows(Note, Note.family_id == family.id),
    }


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


@bp.post("/families/<ref>/export")
@roles("admin")
def export(ref: str) -> Response:
    """Download everything stored about the family as JSON (recorded in the audit log)."""
    with services().db.transaction() as db:
        found = _family_or_404(db, ref)
        data = export_of(db, found)
        record(db, "exported", family_ref=found.ref)
    body = json.dumps(data, indent=2, ensure_ascii=False)
    return Response(
        body,
        mimetype="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="bravesteps-{found.ref}.json"',
            "Cache-Control": "no-store",
        },
    )


def erase(db: Session, family: Family) -> None:
    """Delete every row about the family; the audit log keeps only its reference."""
    alert_ids = select(Alert.id).where(Alert.family_id == family.id).scalar_subquery()
    message_ids = select(Message.id).where(Message.family_id == family.id).scalar_subquery()
    db.execute(delete(AlertEvent).where(AlertEvent.alert_id.in_(alert_ids)))
    db.execute(delete(Alert).where(Alert.family_id == family.id))
    db.execute(delete(Answer).where(Answer.family_id == family.id))
    db.execute(delete(Measure).where(Measure.family_id == family.id))
    db.execute(delete(ConsentEvent).where(ConsentEvent.family_id == family.id))
    db.execute(delete(DueWork).where(DueWork.family_id == family.id))
    db.execute(delete(Note).where(Note.family_id == family.id))
    db.execute(update(Message).where(Message.in_reply_to.in_(message_ids)).values(in_reply_to=None))
    db.execute(delete(Message).where(Message.family_id == family.id))
    db.execute(delete(Conversation).where(Conversation.family_id == family.id))
    db.execute(delete(Family).where(Family.id == family.id))


@bp.post("/families/<ref>/erase")
@roles("admin")
def erase_family(ref: str) -> BaseResponse:
    """Erase a family's data for good: the admin types the reference to confirm."""
    with services().db.transaction() as db:
        found = _family_or_404(db, ref, lock=True)
        if (request.form.get("confirm") or "").strip().upper() != found.ref:
            flash(f"Nothing erased: type {found.ref} in the box to confirm.", "error")
            return _back(found.ref)
        db.expunge(found)
        erase(db, found)
        record(db, "erased", family_ref=found.ref)
    flash(f"Everything stored about {found.ref} has been erased.", "ok")
    return redirect(url_for("admin.families"))


@bp.route("/families/new", methods=["GET", "POST"])
def enrol() -> str | BaseResponse | tuple[str, int]:
    """Enrol a family: the opening (consent) message goes at once."""
    user = viewer()
    svc = services()
    with svc.db.transaction() as db:
        therapists = list(
            db.scalars(
                select(Staff)
                .where(Staff.active.is_(True), Staff.role == "therapist")
                .order_by(Staff.name)
            )
        )
    if user.role == "therapist":
        therapists = [t for t in therapists if t.id == user.staff_id]
    form = request.form if request.method == "POST" else {}
    context = {
        "therapists": therapists,
        "form": form,
        "weekdays": [d.title() for d in WEEKDAYS],
        "languages": svc.languages(),
        "default_timezone": svc.settings.default_timezone,
    }
    if request.method == "GET":
        return render_template("admin/enrol.html", **context)
    try:
        age = int(form.get("child_age", "") or "0")
    except ValueError:
        age = 0
    ref = form.get("therapist", "")
    if ref not in {t.ref for t in therapists}:
        return render_template("admin/enrol.html", error="Choose a therapist.", **context), 400
    enrol_request = EnrolRequest(
        phone=form.get("phone", ""),
        channel=form.get("channel", "sms"),
        child_name=form.get("child_name", ""),
        child_age=age,
        therapist_ref=ref,
        language=form.get("language", "en") or "en",
        timezone=form.get("timezone") or None,
        session_day=form.get("session_day") or None,
        session_time=form.get("session_time") or None,
    )
    try:
        with svc.db.transaction() as db:
            family = enrol_family(
                db,
                enrol_request,
                region=svc.settings.default_region,
                default_timezone=svc.settings.default_timezone,
                languages=[code for code, _ in svc.languages()],
                now=svc.now(),
            )
            family.enrolled_by_user_id = user.id
            record(db, "enrolled", family_ref=family.ref)
            new_ref = family.ref
    except EnrolmentError as exc:
        reason = str(exc).replace("--", "").replace("-", " ", 1)
        return render_template("admin/enrol.html", error=reason, **context), 400
    flash(
        f"Enrolled as {new_ref}. The opening message goes at the scheduler's next run (within a "
        "minute), or when the family's quiet hours end.",
        "ok",
    )
    return redirect(url_for("admin.family", ref=new_ref))


@bp.get("/audit")
@roles("admin")
def audit_log() -> str:
    """Who viewed or changed which family, newest first (admins only)."""
    ref = (request.args.get("family") or "").strip().upper()[:16]
    with services().db.transaction() as db:
        query = (
            select(AuditEvent, User.name, User.email)
            .outerjoin(User, User.id == AuditEvent.user_id)
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .limit(500)
        )
        if ref:
            query = query.where(AuditEvent.family_ref == ref)
        events = list(db.execute(query))
    return render_template("admin/audit.html", events=events, ref=ref)


@bp.get("/families/<ref>/media/<int:message_id>/<int:index>")
def media(ref: str, message_id: int, index: int) -> BaseResponse:
    """A voice note or picture in the transcript. Our own recordings are served by the app;
    a parent's, which Twilio keeps behind the account's credentials, are fetched and passed on."""
    svc = services()
    with svc.db.transaction() as db:
        found = _family_or_404(db, ref)
        message = db.get(Message, message_id)
        if message is None or message.family_id != found.id or not message.media:
            abort(404)
        if not 0 <= index < len(message.media):
            abort(404)
        url = str(message.media[index].get("url", ""))
    if url.startswith("/") and not url.startswith("//"):
        return redirect(url)
    public = svc.settings.public_url
    if public and url.startswith(public.rstrip("/") + "/"):
        return redirect(url[len(public.rstrip("/")) :])
    return _fetch_from_twilio(svc, url)


def _fetch_from_twilio(svc: Any, url: str) -> BaseResponse:
    import requests

    settings = svc.settings
    base = (settings.twilio_api_base_url or "https://api.twilio.com").rstrip("/")
    if not settings.twilio_enabled or not url.startswith(base + "/"):
        abort(404)  # only Twilio's own media, with our own credentials
    try:
        answer = requests.get(
            url,
            auth=(settings.twilio_account_sid, settings.twilio_auth_token),
            timeout=settings.send_timeout,
            stream=True,
        )
    except requests.RequestException:
        abort(502)
    if answer.status_code != 200:
        abort(404)
    body = answer.raw.read(16 * 1024 * 1024 + 1, decode_content=True)
    if len(body) > 16 * 1024 * 1024:
        abort(413)
    kind = answer.headers.get("Content-Type", "application/octet-stream")
    return Response(body, mimetype=kind, headers={"Cache-Control": "private, no-store"})
