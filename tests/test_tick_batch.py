"""The tick does its due work in batches: one transaction for many families, and nothing else new.

A batch must store exactly what doing the items one at a time would, must not let one family's
failure hold up the others, and must still do a family's second item after its first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from conftest import Clock, enrol
from sqlalchemy import select

import scheduler.tick as tick
from scheduler.tick import claim_due, do_batch, do_work, run_tick
from service.models import DueWork, Family, Message
from service.wiring import Services

COLUMNS = [c.key for c in Message.__table__.columns if c.key not in ("id", "family_id")]


def outbox_by_family(services: Services) -> dict[int, list[str]]:
    """Each family's outbox rows, every column but the ids, in the order they were stored."""
    rows: dict[int, list[str]] = {}
    with services.db.transaction() as session:
        query = select(Message).where(Message.family_id.is_not(None)).order_by(Message.id)
        for message in session.scalars(query):
            values = repr([getattr(message, key) for key in COLUMNS])
            rows.setdefault(message.family_id or 0, []).append(values)
    return rows


@pytest.mark.parametrize("day", [1, 2])
def test_a_batch_stores_what_one_item_at_a_time_would(
    services: Services, standin: Any, day: int
) -> None:
    for i in range(6):
        enrol(services, phone=f"+4477009004{i:02d}")
    now = services.now()
    with services.db.transaction() as session:
        # A weekly session as well as the opening, so that a batch has families with two items.
        for family_id in session.scalars(select(Family.id)):
            session.add(
                DueWork(
                    family_id=family_id,
                    kind="calendar",
                    payload={"flow": "onboarding", "week": 1, "day": day},
                    due_at=now,
                    created_at=now,
                )
            )
    token, ids = claim_due(services, now)
    assert len(ids) == 12
    with services.db.transaction() as session:
        owners = dict(session.execute(select(DueWork.id, DueWork.family_id)).all())
    first_three = sorted(set(owners.values()))[:3]
    alone = [work_id for work_id in ids if owners[work_id] in first_three]
    together = [work_id for work_id in ids if owners[work_id] not in first_three]
    outcomes = [do_work(services, work_id, token, now)[0] for work_id in alone]
    outcomes += do_batch(services, together, token, now)
    assert sorted(outcomes) == sorted(["done"] * 12)
    rows = outbox_by_family(services)
    assert len(rows) == 6
    assert len({tuple(family_rows) for family_rows in rows.values()}) == 1, (
        "a family done in a batch got other outbox rows than one done alone"
    )
    with services.db.transaction() as session:
        assert set(session.scalars(select(DueWork.outcome).where(DueWork.id.in_(ids)))) == {"done"}


def test_one_failing_family_holds_up_no_other(
    services: Services, standin: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = enrol(services, phone="+447700900500", child_name="Crash")
    fine = [enrol(services, phone=f"+4477009005{i:02d}") for i in range(1, 4)]
    engine = tick.run

    def failing(flows: Any, state: Any, event: Any, context: Any) -> Any:
        if context.family["child_name"] == "Crash":
            raise RuntimeError("engine failure")
        return engine(flows, state, event, context)

    monkeypatch.setattr(tick, "run", failing)
    report = run_tick(services)
    assert (report.work_done, report.work_skipped) == (3, 1)
    assert all(len(standin.sent_to(family.phone)) == 1 for family in fine)
    assert standin.sent_to(broken.phone) == []
    with services.db.transaction() as session:
        [left] = session.scalars(select(DueWork).where(DueWork.done_at.is_(None))).all()
        family = session.get(Family, left.family_id)
        assert family is not None and family.ref == broken.ref
        assert left.claimed_until is not None and left.claimed_until > clock.now

    # Mended, and once its claim has run out, the item is done; nothing goes out twice.
    monkeypatch.setattr(tick, "run", engine)
    assert run_tick(services).work_done == 0
    clock.advance(minutes=6)
    assert run_tick(services).work_done == 1
    assert len(standin.sent_to(broken.phone)) == 1
    assert all(len(standin.sent_to(family.phone)) == 1 for family in fine)


def test_a_familys_second_item_sees_the_first_done(services: Services, standin: Any) -> None:
    enrolled = enrol(services)
    now: datetime = services.now()
    with services.db.transaction() as session:
        family = session.scalar(select(Family).where(Family.ref == enrolled.ref))
        assert family is not None
        # A stale wake-up, due with the opening: starting onboarding cancels it.
        session.add(
            DueWork(
                family_id=family.id,
                kind="wake",
                payload={"reason": "reminder", "flow": "onboarding", "step": "welcome"},
                due_at=now,
                created_at=now,
            )
        )
    report = run_tick(services)
    assert (report.work_done, report.work_skipped) == (1, 1)
    assert len(standin.sent_to(enrolled.phone)) == 1
    with services.db.transaction() as session:
        outcomes = dict(session.execute(select(DueWork.kind, DueWork.outcome)).all())
    assert outcomes == {"start_flow": "done", "wake": "cancelled"}
