"""PostgreSQL: a connection the server dropped while it sat in the pool.

The webhook checks out a pooled connection without a round trip to check it first (a "pre-ping")
and, when it finds the connection lost, handles the message again on a new one. Everything else
still pings. Both must end as if nothing had happened: the message stored once, the reply queued
once, no 5xx.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from conftest import PG_URL, enrol, inbound_form, post_signed
from sqlalchemy import create_engine, func, select, text

from scheduler.tick import run_tick
from service.models import Family, Message
from service.wiring import Services

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(PG_URL is None, reason="TEST_DATABASE_URL is not set"),
]
PHONE = "+447700900123"


@pytest.fixture
def backend() -> str:
    """These tests are about a database server; SQLite has none."""
    return "postgres"


def _drop_connections(services: Services) -> int:
    """Ask the server to end every other session on this database (as a restart would)."""
    engine = create_engine(services.db.url)
    with engine.connect() as connection:
        ended = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    engine.dispose()
    return int(ended)


def _messages(services: Services, body: str) -> int:
    with services.db.transaction() as session:
        return int(
            session.scalar(select(func.count()).select_from(Message).where(Message.body == body))
            or 0
        )


def test_the_webhook_handles_a_message_on_a_new_connection_when_its_pooled_one_was_lost(
    services: Services, client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    enrol(services, phone=PHONE)
    run_tick(services)
    assert post_signed(client, "/twilio/messages", inbound_form(PHONE, "Yes")).status_code == 200
    assert _drop_connections(services) >= 1  # the webhook's pooled connection among them
    with caplog.at_level(logging.WARNING, logger="bravesteps.inbound"):
        answer = post_signed(client, "/twilio/messages", inbound_form(PHONE, "Monday"))
    assert answer.status_code == 200
    assert "connection was lost" in caplog.text  # it was found lost, not pinged away
    assert _messages(services, "Monday") == 1
    with services.db.transaction() as session:
        family = session.scalar(select(Family).where(Family.phone == PHONE))
        assert family is not None and family.session_day == 0  # Monday, applied once
        replies = session.scalars(
            select(Message.catalogue_key).where(
                Message.family_id == family.id, Message.direction == "out"
            )
        ).all()
    assert replies.count("onboarding.ask_time") == 1  # the next question, queued once


def test_other_work_pings_a_pooled_connection_and_replaces_a_lost_one(
    services: Services, client: Any
) -> None:
    enrol(services, phone=PHONE)
    run_tick(services)  # a connection goes back to the pool
    assert _drop_connections(services) >= 1
    with services.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Family)) == 1


def test_a_lost_connection_is_told_apart_from_other_errors(services: Services) -> None:
    assert not services.db.lost_connection(ValueError("not a database error"))
    with pytest.raises(Exception) as raised, services.db.transaction() as session:
        session.execute(text("SELECT no_such_column FROM families"))
    assert not services.db.lost_connection(raised.value)
