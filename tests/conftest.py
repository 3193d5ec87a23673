"""Shared fixtures: a database per test (SQLite, and PostgreSQL when TEST_DATABASE_URL is set),
the Twilio stand-in, an injectable clock, and Twilio-signed webhook helpers.

Tests that take the ``backend`` fixture run once per database; the PostgreSQL case carries the
``postgres`` marker and is skipped only when ``TEST_DATABASE_URL`` is unset.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import create_engine, text
from twilio.request_validator import RequestValidator

sys.path.insert(0, str(Path(__file__).parent))

from twilio_standin import TwilioStandIn

from service import create_app
from service.config import Settings, load_settings
from service.db import upgrade
from service.enrolment import EnrolRequest, add_staff, enrol_family
from service.wiring import Services, build_services

PUBLIC_URL = "https://bravesteps.test"
AUTH_TOKEN = "f" * 32
ACCOUNT_SID = "AC" + "1" * 32
SMS_FROM = "+447700900000"
WHATSAPP_FROM = "whatsapp:+447700900009"
PG_URL = os.environ.get("TEST_DATABASE_URL") or None
# Monday 10:00 in London, in staffed hours (the clock's own start, 17:00, is not): a routine
# alert raised then texts staff at once.
STAFFED = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
TABLES = (
    "early_statuses",
    "staff_command_misses",
    "audit_events",
    "login_attempts",
    "notes",
    "consent_events",
    "answers",
    "measures",
    "alerts",
    "due_work",
    "messages",
    "conversations",
    "families",
    "users",
    "staff",
)


class Clock:
    """A clock the test moves by hand; never sleeps."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 3, 2, 17, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


_sqlite_template: dict[str, Path] = {}


def _sqlite_url(tmp_path: Path, factory: pytest.TempPathFactory) -> str:
    """A fresh migrated SQLite file per test, copied from one migrated template."""
    if "path" not in _sqlite_template:
        template = factory.mktemp("template") / "template.sqlite"
        upgrade(f"sqlite:///{template}")
        _sqlite_template["path"] = template
    target = tmp_path / "bravesteps.sqlite"
    shutil.copy(_sqlite_template["path"], target)
    return f"sqlite:///{target}"


_pg_ready: dict[str, bool] = {}


def _postgres_url() -> str:
    """The PostgreSQL test database, migrated once and emptied before each test."""
    assert PG_URL
    url = PG_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    if "ready" not in _pg_ready:
        upgrade(url)
        _pg_ready["ready"] = True
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgres",
            marks=[
                pytest.mark.postgres,
                pytest.mark.skipif(PG_URL is None, reason="TEST_DATABASE_URL is not set"),
            ],
        ),
    ]
)
def backend(request: pytest.FixtureRequest) -> str:
    """Which database this run of the test uses."""
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh, migrated database for this test."""
    if backend == "postgres":
        return _postgres_url()
    return _sqlite_url(tmp_path, tmp_path_factory)


@pytest.fixture
def standin() -> Iterator[TwilioStandIn]:
    """The local Twilio stand-in, with our test credentials."""
    with TwilioStandIn(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as server:
        yield server


@pytest.fixture
def clock() -> Clock:
    """An injected clock, starting on a Monday at 17:00 UTC."""
    return Clock()


def env_for(database_url: str, standin: TwilioStandIn | None, **extra: str) -> dict[str, str]:
    """The environment a test process runs with."""
    env = {
        "DATABASE_URL": database_url,
        "BRAVESTEPS_TESTING": "1",
        "BRAVESTEPS_DISPATCH": "inline",
        "PUBLIC_URL": PUBLIC_URL,
        "TWILIO_TIMEOUT": "2",
    }
    if standin is not None:
        env.update(
            TWILIO_ACCOUNT_SID=ACCOUNT_SID,
            TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            TWILIO_SMS_FROM=SMS_FROM,
            TWILIO_WHATSAPP_FROM=WHATSAPP_FROM,
            TWILIO_API_BASE_URL=standin.base_url,
        )
    env.update(extra)
    return env


@pytest.fixture
def settings(database_url: str, standin: TwilioStandIn) -> Settings:
    """Settings pointing at the stand-in and this test's database."""
    return load_settings(env_for(database_url, standin))


@pytest.fixture
def services(settings: Settings, clock: Clock) -> Iterator[Services]:
    """The service's wiring, on the injected clock."""
    svc = build_services(settings, clock=clock)
    yield svc
    svc.db.dispose()


@pytest.fixture
def app(services: Services) -> Any:
    """The Flask app over ``services``."""
    return create_app(services)


@pytest.fixture
def client(app: Any) -> Any:
    """A test client for the app."""
    return app.test_client()


def sign(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    """The X-Twilio-Signature Twilio would send for this URL and form."""
    return str(RequestValidator(token).compute_signature(url, params))


def post_signed(client: Any, path: str, params: dict[str, str], token: str = AUTH_TOKEN) -> Any:
    """POST a form to the app exactly as Twilio would, signed over PUBLIC_URL + path."""
    return client.post(
        path,
        data=urlencode(params),
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": sign(PUBLIC_URL + path, params, token)},
    )


_sid_counter = [0]


def message_sid() -> str:
    """A fresh, Twilio-shaped MessageSid."""
    _sid_counter[0] += 1
    return "SM" + f"{_sid_counter[0]:032x}"


def inbound_form(phone: str, body: str, sid: str | None = None, **extra: str) -> dict[str, str]:
    """An inbound-message webhook form with the fields Twilio sends."""
    form = {
        "MessageSid": sid or message_sid(),
        "AccountSid": ACCOUNT_SID,
        "From": phone,
        "To": SMS_FROM if not phone.startswith("whatsapp:") else WHATSAPP_FROM,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }
    form["SmsMessageSid"] = form["MessageSid"]
    form["SmsSid"] = form["MessageSid"]
    form.update(extra)
    return form


@dataclass
class Enrolled:
    """A family enrolled for a test."""

    ref: str
    phone: str
    therapist_ref: str
    therapist_phone: str


def enrol(
    services: Services,
    phone: str = "+447700900123",
    channel: str = "sms",
    child_name: str = "Sam",
    therapist_phone: str = "+447700900555",
    **extra: Any,
) -> Enrolled:
    """Enrol a family (and its therapist, if new) directly through the service layer."""
    from sqlalchemy import select

    from service.models import Staff

    with services.db.transaction() as session:
        staff = session.scalar(select(Staff).where(Staff.phone == therapist_phone))
        if staff is None:
            staff = new_staff(session, services, "Jo Bloggs", therapist_phone)
        family = enrol_family(
            session,
            EnrolRequest(
                phone=phone,
                channel=channel,
                child_name=child_name,
                child_age=8,
                therapist_ref=staff.ref,
                **extra,
            ),
            region="GB",
            default_timezone="Europe/London",
            languages=["en"],
            now=services.now(),
        )
        return Enrolled(family.ref, family.phone, staff.ref, staff.phone)


def new_staff(
    session: Any, services: Services, name: str, phone: str, role: str = "therapist"
) -> Any:
    """A member of staff who gets texts by SMS."""
    return add_staff(
        session,
        name=name,
        phone=phone,
        email=None,
        channel="sms",
        role=role,
        region="GB",
        now=services.now(),
    )


def add_therapist(services: Services, name: str, phone: str) -> str:
    """A therapist, in a transaction of their own; returns their reference."""
    with services.db.transaction() as session:
        return str(new_staff(session, services, name, phone).ref)


def with_clock(services: Services, moment: datetime) -> Services:
    """The same services seen at another time."""
    return replace(services, clock=lambda: moment)
