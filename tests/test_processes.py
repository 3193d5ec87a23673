"""Real processes against one database: schedulers and ticks together, and a tick killed mid-batch.

Every family's opening message must reach the Twilio stand-in exactly once, whatever runs at the
same time and whatever is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import env_for
from sqlalchemy import select

from service.enrolment import EnrolRequest, add_staff, enrol_family
from service.models import Message
from service.wiring import Services

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def enrol_many(services: Services, count: int) -> list[str]:
    """Enrol ``count`` families in one transaction; their openings are due now."""
    phones = [f"+4477009{i:05d}" for i in range(10000, 10000 + count)]
    now = datetime.now(UTC)
    with services.db.transaction() as session:
        staff = add_staff(
            session,
            name="Jo",
            phone="+447700900555",
            email=None,
            channel="sms",
            role="therapist",
            region="GB",
            now=now,
        )
        for phone in phones:
            enrol_family(
                session,
                EnrolRequest(phone, "sms", "Sam", 8, staff.ref),
                region="GB",
                default_timezone="Europe/London",
                languages=["en"],
                now=now,
            )
    return phones


def process_env(database_url: str, standin: Any) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("TEST_DATABASE_URL", None)
    env.update(
        env_for(
            database_url,
            standin,
            MESSAGES_PER_SECOND="0",
            QUIET_HOURS="00:00-00:00",  # these tests run at any hour of the real day
            SCHEDULER_INTERVAL="1",
        )
    )
    return env


def wait_for(condition: Any, seconds: float) -> bool:
    """Poll until ``condition()`` holds (waiting on other processes, not timing anything)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def test_two_schedulers_and_three_ticks_send_each_message_once(
    services: Services, standin: Any, database_url: str, tmp_path: Path
) -> None:
    phones = enrol_many(services, 1000)
    env = process_env(database_url, standin)
    command = str(BIN / "bravesteps")
    schedulers = [
        subprocess.Popen([command, "scheduler"], env=env, cwd=tmp_path, stderr=subprocess.DEVNULL)
        for _ in range(2)
    ]
    ticks = [
        subprocess.Popen([command, "tick"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL)
        for _ in range(3)
    ]
    try:
        for tick in ticks:
            assert tick.wait(timeout=240) == 0
        assert wait_for(lambda: len(standin.messages) >= 1000, 120)
    finally:
        for scheduler in schedulers:
            scheduler.terminate()
        for scheduler in schedulers:
            scheduler.wait(timeout=30)
    counts = Counter(m.to for m in standin.messages)
    assert len(standin.messages) == 1000
    assert set(counts) == set(phones) and set(counts.values()) == {1}


def test_a_tick_killed_mid_batch_loses_nothing_and_duplicates_nothing(
    services: Services, standin: Any, database_url: str, tmp_path: Path
) -> None:
    phones = enrol_many(services, 300)
    env = process_env(database_url, standin)
    standin.create_delay = 0.01
    tick = subprocess.Popen(
        [str(BIN / "bravesteps"), "tick"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL
    )
    assert wait_for(lambda: len(standin.messages) >= 40, 120)
    tick.send_signal(signal.SIGKILL)
    tick.wait(timeout=30)
    standin.create_delay = 0.0
    sent_before = len(standin.messages)
    assert 40 <= sent_before < 300
    with services.db.transaction() as session:
        stuck = session.scalars(select(Message.id).where(Message.status == "sending")).all()
    assert stuck, "the kill should have left claimed messages behind"

    # Straight after the kill the claims are still leased: nothing is sent twice.
    subprocess.run([str(BIN / "bravesteps"), "tick"], env=env, cwd=tmp_path, check=True)
    # Once the leases have run out, the next tick settles everything.
    later = (datetime.now(UTC) + timedelta(minutes=6)).isoformat()
    done = subprocess.run(
        [str(BIN / "bravesteps"), "tick", "--now", later],
        env=env,
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    )
    assert "reconciled" in done.stdout
    counts = Counter(m.to for m in standin.messages)
    assert set(counts) == set(phones)
    assert set(counts.values()) == {1}
    with services.db.transaction() as session:
        statuses = Counter(session.scalars(select(Message.status)).all())
    assert statuses == {"queued": 300}
