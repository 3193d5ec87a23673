"""The tick: do every piece of timed work that is due, then hand the outbox to Twilio.

``bravesteps tick`` runs it once; ``bravesteps scheduler`` runs it every few seconds. Work is
claimed atomically in batches, and each batch is done in one transaction with its families' rows
locked, so any number of ticks, schedulers and web workers can run at once without doing anything
twice. Work claimed by
a process that died is free again when its lease ends; work missed during downtime is simply due.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, insert, inspect, select
from sqlalchemy.orm import Session, selectinload

from flows.effects import StartFlow, WakeUp
from flows.runtime import run
from service.alerts import escalate
from service.checkins import call_prompt, check_silence, missed_check_in
from service.claims import claim_ids, new_token
from service.conversations import (
    MAY_HAVE_WAKES,
    apply_outcome,
    context_for,
    lock_family,
    state_of,
)
from service.delivery import settle_early
from service.models import DueWork, Family, Message
from service.outbox import SendReport, drain, reconcile
from service.programme import HELD, catch_up, next_event_row, resume, store_next_events
from service.wiring import Services

log = logging.getLogger("bravesteps.tick")

LEASE = timedelta(minutes=5)
BATCH = 200


@dataclass
class TickReport:
    """What one tick did, for its summary line."""

    work_done: int = 0
    work_skipped: int = 0
    reconciled: int = 0
    sent: SendReport = field(default_factory=SendReport)

    def line(self) -> str:
        """One line for the operator."""
        s = self.sent
        return (
            f"tick: {self.work_done} due item(s) done, {self.work_skipped} skipped; "
            f"{s.accepted} message(s) sent, {s.retried} to retry, {s.failed} failed, "
            f"{s.cancelled} cancelled, {s.held} held, {s.unknown} awaiting reconciliation; "
            f"{self.reconciled} reconciled"
        )


def claim_due(services: Services, now: datetime, limit: int = BATCH) -> tuple[str, list[int]]:
    """Claim due work atomically; expired claims of dead processes are claimable again."""
    token = new_token()
    ready = [
        DueWork.done_at.is_(None),
        DueWork.due_at <= now,
        (DueWork.claimed_until.is_(None)) | (DueWork.claimed_until < now),
    ]
    with services.db.transaction() as session:
        ids = claim_ids(
            session,
            DueWork,
            ready,
            order_by=[DueWork.due_at, DueWork.id],
            limit=limit,
            token=token,
            values={"claimed_until": now + LEASE, "attempts": DueWork.attempts + 1},
        )
    return token, ids


def do_work(services: Services, work_id: int, token: str, now: datetime) -> tuple[str, list[int]]:
    """Do one claimed item in one transaction; returns its outcome and new outbox rows."""
    with services.db.transaction() as session:
        work = session.get(DueWork, work_id)
        if work is None or work.claim_token != token or work.done_at is not None:
            return "lost-claim", []
        family = lock_family(session, id=work.family_id)
        chained: list[dict[str, Any]] = []
        outcome, outbox, queued = _settle(session, services, work, family, now, chained, flush=True)
        if queued:
            session.flush()
        store_next_events(session, chained)
        return outcome, sorted({*outbox, *(m.id for m in queued)})


def do_batch(services: Services, ids: list[int], token: str, now: datetime) -> list[str]:
    """Do a claimed batch in one transaction; returns each item's outcome.

    The batch's families are locked in one statement, in id order (so concurrent ticks cannot
    deadlock), before their due rows are read, so a row cancelled meanwhile is seen as such. New
    rows are flushed once for the batch. Only one item per family runs in the batch, because one
    item's effects (say, cancelling wake-ups) must be stored before the next is looked at; the
    others follow one by one. If anything in the batch fails, the whole batch is rolled back
    and redone one item at a time, so one bad family holds up no other.
    """
    later: list[int] = []
    try:
        with services.db.transaction() as session:
            families = lock_families(session, ids)
            session.info[MAY_HAVE_WAKES] = set(
                session.scalars(
                    select(DueWork.family_id)
                    .where(
                        DueWork.family_id.in_(list(families)),
                        DueWork.kind == "wake",
                        DueWork.done_at.is_(None),
                    )
                    .distinct()
                )
            )
            works = session.scalars(
                select(DueWork).where(DueWork.id.in_(ids)).order_by(DueWork.id)
            ).all()
            outcomes = ["lost-claim"] * (len(ids) - len(works))
            seen: set[int] = set()
            queued: list[Message] = []
            chained: list[dict[str, Any]] = []
            for work in works:
                if work.claim_token != token or work.done_at is not None:
                    outcomes.append("lost-claim")
                elif work.family_id in seen:
                    later.append(work.id)
                else:
                    seen.add(work.family_id)
                    family = families.get(work.family_id)
                    outcome, _, new = _settle(
                        session, services, work, family, now, chained, flush=False
                    )
                    outcomes.append(outcome)
                    queued += new
            insert_outbox(session, queued)
            store_next_events(session, chained)
    except Exception as exc:
        log.error(
            "a batch of %d due item(s) failed (%s); doing them one by one",
            len(ids),
            type(exc).__name__,
        )
        return [_do_alone(services, work_id, token, now) for work_id in ids]
    return outcomes + [_do_alone(services, work_id, token, now) for work_id in later]


def insert_outbox(session: Session, messages: list[Message]) -> None:
    """Store the batch's new outbox rows with one executemany INSERT (no RETURNING: the sender
    finds them by query), instead of the flush's multi-row INSERT, whose thousands of
    placeholders cost more to prepare than the rows themselves."""
    table = cast(Table, Message.__table__)
    columns = [column.key for column in table.columns if column.key != "id"]
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for message in messages:
        if not inspect(message).transient:
            continue  # in the session already (a staff alert): the flush stores it
        values = {key: message.__dict__[key] for key in columns if key in message.__dict__}
        groups.setdefault(tuple(values), []).append(values)
    for rows in groups.values():
        session.connection().execute(insert(table), rows)


def _do_alone(services: Services, work_id: int, token: str, now: datetime) -> str:
    """One item in its own transaction; a failure is logged and the item left to its lease."""
    try:
        return do_work(services, work_id, token, now)[0]
    except Exception as exc:
        log.error(
            "due item %s failed (%s); it is retried when its claim runs out",
            work_id,
            type(exc).__name__,
        )
        return "failed"


def lock_families(session: Session, work_ids: list[int]) -> dict[int, Family]:
    """Lock the families of these due rows in id order, with their conversations and therapists."""
    statement = (
        select(Family)
        .where(Family.id.in_(select(DueWork.family_id).where(DueWork.id.in_(work_ids))))
        .order_by(Family.id)
        .options(selectinload(Family.conversation), selectinload(Family.therapist))
        .with_for_update()
    )
    return {family.id: family for family in session.scalars(statement)}


def _settle(
    session: Session,
    services: Services,
    work: DueWork,
    family: Family | None,
    now: datetime,
    chained: list[dict[str, Any]],
    *,
    flush: bool,
) -> tuple[str, list[int], list[Message]]:
    """Do one item whose family is locked: its outcome, stored outbox ids, unflushed messages.

    A calendar event done (or passed over, for a family not receiving) adds the row of the
    event after it to ``chained``, for the caller to store.
    """
    work.done_at = now
    if family is None:
        work.outcome = "no family"
        return "skipped", [], []
    payload = work.payload or {}
    if work.kind == "escalate":
        # Escalation is about staff, so it runs whatever the family's own state.
        sent = escalate(session, services, int(payload.get("alert", 0)), now)
        work.outcome = "escalated" if sent else "not needed"
        return "done", [], sent
    if family.opted_out or family.status in ("declined",) or family.number_invalid_at:
        work.outcome = "family not receiving"
        if work.kind == "calendar" and not family.opted_out:
            # The programme goes on without this event (STOP's cancelled it: START goes on).
            _chain(services, family, payload, now, chained)
        return "skipped", [], []
    if work.kind == "resume":
        resume(session, family, now)
        work.outcome = "done"
        return "done", [], []
    if work.kind == "silence":
        outbox = check_silence(session, services, family, now)
        work.outcome = "nudged" if outbox else "not silent"
        return "done", outbox, []
    if work.kind == "calendar" and family.status == HELD:
        # An urgent alert is open: the programme waits until a person resumes it.
        work.done_at = None
        work.claimed_until = None
        work.due_at = now + timedelta(days=1)
        work.outcome = "held for alert"
        return "held", [], []
    if work.kind == "calendar" and now - work.due_at > services.settings.late_limit:
        # Too late to send now (the service was down): the calendar moves to the next session.
        work.done_at = None
        weeks = catch_up(session, family, work.due_at, now)
        log.info("family %s: calendar moved %d week(s) after missed work", family.ref, weeks)
        return "moved", [], []
    if work.kind in ("start_flow", "calendar"):
        week = {"week": payload["week"]} if "week" in payload else {}
        event: StartFlow | WakeUp = StartFlow(str(payload.get("flow")), week)
    elif work.kind == "wake":
        event = WakeUp(
            str(payload.get("reason")), str(payload.get("flow")), str(payload.get("step"))
        )
    else:
        work.outcome = f"unknown kind {work.kind}"
        return "skipped", [], []
    context = context_for(family, now, services.languages(), services.voice_notes(family.language))
    outcome = run(services.flows, state_of(family), event, context)
    applied = apply_outcome(session, services, family, outcome, now, flush=flush)
    if isinstance(event, WakeUp) and event.reason == "give_up" and "check_in" in event.flow:
        applied.outbox.extend(missed_check_in(session, services, family, now))
    if work.kind == "calendar":
        if payload.get("day") == 1:
            applied.outbox.extend(call_prompt(session, services, family, payload, now))
        # After the flow, which may have moved the calendar (a new session day or time).
        _chain(services, family, payload, now, chained)
    work.outcome = "done"
    return "done", applied.outbox, applied.messages


def _chain(
    services: Services,
    family: Family,
    payload: dict[str, Any],
    now: datetime,
    chained: list[dict[str, Any]],
) -> None:
    """The calendar's next event, after the one in ``payload``, to be stored by the caller."""
    row = next_event_row(services, family, payload, now)
    if row is not None:
        chained.append(row)


def run_tick(services: Services, now: datetime | None = None) -> TickReport:
    """Do all timed work due at or before ``now``, then send everything due."""
    at = now or services.now()
    report = TickReport()
    while True:
        token, ids = claim_due(services, at)
        if not ids:
            break
        for outcome in do_batch(services, ids, token, at):
            if outcome == "done":
                report.work_done += 1
            else:
                report.work_skipped += 1
    report.reconciled = reconcile(services)
    report.sent = drain(services)
    settle_early(services)  # delivery reports that came before their SID was stored
    return report
