"""Two things at the same instant: messages from one parent, the same retry, two ticks at once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from conftest import enrol, inbound_form, message_sid
from sqlalchemy import select

from flows.conversation import handle_message
from flows.effects import Context, ConversationState, MessageIn, RecordConsent, StartFlow
from flows.runtime import run
from scheduler.tick import run_tick
from service.conversations import context_for
from service.inbound import handle_inbound
from service.models import Conversation, Family, Message
from service.wiring import Services


def at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls on threads released together by a barrier; re-raise any error."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def runner(i: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[i] = call()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=runner, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


def replay(services: Services, family_id: int) -> ConversationState:
    """What the state must be if the stored messages were handled one at a time, in order."""
    with services.db.transaction() as session:
        family = session.get(Family, family_id)
        assert family is not None
        texts = session.scalars(
            select(Message.body)
            .where(Message.family_id == family_id, Message.direction == "in")
            .order_by(Message.id)
        ).all()
        ctx = context_for(family, services.now())
    ctx = Context(ctx.now, ctx.family, False, ctx.language)
    outcome = run(services.flows, ConversationState(), StartFlow("onboarding"), ctx)
    state = outcome.state
    for text in texts:
        outcome = handle_message(services.flows, state, MessageIn(text or ""), ctx, False)
        state = outcome.state
        if any(isinstance(e, RecordConsent) and e.given for e in outcome.effects):
            ctx = Context(ctx.now, ctx.family, True, ctx.language)
    return state


def test_two_messages_from_one_parent_at_the_same_instant(services: Services, standin: Any) -> None:
    families = [enrol(services, phone=f"+4477009001{i:02d}") for i in range(8)]
    run_tick(services)
    for enrolled in families:
        at_once(
            lambda p=enrolled.phone: handle_inbound(services, inbound_form(p, "yes")),
            lambda p=enrolled.phone: handle_inbound(services, inbound_form(p, "tuesday")),
        )
    for enrolled in families:
        with services.db.transaction() as session:
            family = session.scalar(select(Family).where(Family.phone == enrolled.phone))
            assert family is not None
            inbound = session.scalars(
                select(Message.body).where(
                    Message.family_id == family.id, Message.direction == "in"
                )
            ).all()
            stored = session.get(Conversation, family.id)
        assert sorted(inbound) == ["tuesday", "yes"]
        assert stored is not None
        expected = replay(services, family.id)
        assert (stored.flow, stored.step, stored.waiting) == (
            expected.flow,
            expected.step,
            expected.waiting,
        )
        assert stored.variables == expected.variables
        assert family.consent_at is not None


def test_the_same_message_sid_twice_at_once_is_handled_once(
    services: Services, standin: Any
) -> None:
    enrolled = enrol(services)
    run_tick(services)
    for _ in range(5):
        form = inbound_form(enrolled.phone, "help", sid=message_sid())
        results = at_once(
            lambda f=form: handle_inbound(services, f), lambda f=form: handle_inbound(services, f)
        )
        assert sorted(r.duplicate for r in results) == [False, True]
    with services.db.transaction() as session:
        assert len(session.scalars(select(Message.id).where(Message.direction == "in")).all()) == 5
    from service.outbox import drain

    drain(services)
    help_replies = [m for m in standin.sent_to(enrolled.phone) if "999" in m.body]
    assert len(help_replies) == 5


def test_ticks_running_together_send_each_opening_once(services: Services, standin: Any) -> None:
    families = [enrol(services, phone=f"+4477009002{i:02d}") for i in range(40)]
    at_once(*(lambda: run_tick(services) for _ in range(4)))
    counts = Counter(m.to for m in standin.messages)
    assert sorted(counts) == sorted(f.phone for f in families)
    assert set(counts.values()) == {1}
