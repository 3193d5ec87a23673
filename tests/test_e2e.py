"""End to end through the public surface: the CLI, gunicorn, signed HTTP webhooks, the stand-in.

Nothing here calls the service's Python code directly: families are enrolled with `bravesteps`,
messages arrive as Twilio-signed HTTP requests to a real gunicorn, and what the parent receives is
counted at the Twilio stand-in.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import env_for, inbound_form, sign
from sqlalchemy import create_engine, text

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Deployment:
    """A gunicorn running the service, the CLI beside it, and a way to post as Twilio."""

    def __init__(self, env: dict[str, str], port: int, workdir: Path) -> None:
        self.env = env
        self.url = f"http://127.0.0.1:{port}"
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.port = port

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [str(BIN / "bravesteps"), *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "service:create_app()",
                "--workers",
                "2",
                "--bind",
                f"127.0.0.1:{self.port}",
            ],
            env=self.env,
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/healthz", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            assert self.process.poll() is None, (
                self.process.stderr.read() if self.process.stderr else ""
            )
            time.sleep(0.1)  # waiting for a process to be ready, not for timing
        raise AssertionError("gunicorn did not become healthy")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)

    def post(self, form: dict[str, str], signature: str | None = None) -> requests.Response:
        url = self.env["PUBLIC_URL"] + "/twilio/messages"
        headers = {"X-Twilio-Signature": signature or sign(url, form)}
        return requests.post(self.url + "/twilio/messages", data=form, headers=headers, timeout=30)

    def scalar(self, sql: str) -> Any:
        engine = create_engine(
            self.env["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
        )
        try:
            with engine.connect() as connection:
                return connection.execute(text(sql)).scalar()
        finally:
            engine.dispose()


@pytest.fixture
def deployment(database_url: str, standin: Any, tmp_path: Path) -> Iterator[Deployment]:
    port = free_port()
    env = dict(os.environ)
    env.pop("TEST_DATABASE_URL", None)
    env.update(
        env_for(
            database_url,
            standin,
            PUBLIC_URL=f"http://127.0.0.1:{port}",
            SECRET_KEY="e2e-secret",
            BRAVESTEPS_TESTING="0",
            QUIET_HOURS="00:00-00:00",  # real processes, real clock: any hour of the day
        )
    )
    deployment = Deployment(env, port, tmp_path)
    deployment.start()
    yield deployment
    deployment.stop()


def test_enrol_opening_yes_and_the_first_session(deployment: Deployment, standin: Any) -> None:
    therapist = deployment.cli("therapist", "add", "--name", "Jo Bloggs", "--phone", "07700900555")
    ref = deployment.cli(
        "enrol",
        "--phone",
        "07700 900123",
        "--channel",
        "sms",
        "--child-name",
        "Sam",
        "--child-age",
        "8",
        "--therapist",
        therapist,
    )
    assert ref.startswith("F-")
    deployment.cli("tick")
    deployment.cli("tick")
    phone = "+447700900123"
    opening = standin.sent_to(phone)
    assert len(opening) == 1 and "Reply YES or NO" in opening[0].body

    reply = deployment.post(inbound_form(phone, "Yes"))
    assert reply.status_code == 200 and reply.headers["Content-Type"].startswith("text/xml")
    keys = [m.body.split(".")[0] for m in standin.sent_to(phone)[1:]]
    assert keys[0] == "Thank you"
    for answer in ("monday", "18:00", "go to school happily", "4", "no", "yes"):
        assert deployment.post(inbound_form(phone, answer)).status_code == 200
    bodies = [m.body for m in standin.sent_to(phone)]
    assert any("first tip" in b for b in bodies)  # onboarding is over; the calendar takes over
    assert deployment.scalar("SELECT count(*) FROM measures WHERE name = 'goal_1'") == 1
    # The calendar keeps the next event only; each one done adds the one after it.
    events = deployment.scalar("SELECT count(*) FROM due_work WHERE kind = 'calendar'")
    assert events == 1
    first = deployment.scalar(
        "SELECT dedupe_key FROM due_work WHERE kind = 'calendar' AND done_at IS NULL"
    )
    assert str(first).endswith(":1:1:week_1_learn")


def test_forged_duplicate_and_stop(deployment: Deployment, standin: Any) -> None:
    therapist = deployment.cli("therapist", "add", "--name", "Jo", "--phone", "07700900556")
    deployment.cli(
        "enrol",
        "--phone",
        "+447700900124",
        "--channel",
        "sms",
        "--child-name",
        "Ada",
        "--child-age",
        "7",
        "--therapist",
        therapist,
    )
    deployment.cli("tick")
    phone = "+447700900124"
    before = deployment.scalar("SELECT count(*) FROM messages")

    forged = deployment.post(inbound_form(phone, "yes"), signature="bm90IGEgc2lnbmF0dXJl")
    assert forged.status_code == 403
    assert deployment.scalar("SELECT count(*) FROM messages") == before
    assert len(standin.sent_to(phone)) == 1

    form = inbound_form(phone, "yes")
    assert deployment.post(form).status_code == 200
    sent = len(standin.sent_to(phone))
    assert deployment.post(form).status_code == 200
    assert len(standin.sent_to(phone)) == sent  # the retry got no second reply

    deployment.post(inbound_form(phone, "STOP"))
    after_stop = len(standin.sent_to(phone))
    assert "no more messages" in standin.sent_to(phone)[-1].body
    deployment.post(inbound_form(phone, "monday"))
    deployment.cli("tick")
    assert len(standin.sent_to(phone)) == after_stop
    deployment.post(inbound_form(phone, "START"))
    assert any(m.body.startswith("Welcome back") for m in standin.sent_to(phone)[-2:])


def test_two_messages_at_the_same_instant_over_http(deployment: Deployment, standin: Any) -> None:
    therapist = deployment.cli("therapist", "add", "--name", "Jo", "--phone", "07700900557")
    phones = [f"+4477009003{i:02d}" for i in range(5)]
    for phone in phones:
        deployment.cli(
            "enrol",
            "--phone",
            phone,
            "--channel",
            "sms",
            "--child-name",
            "Kit",
            "--child-age",
            "9",
            "--therapist",
            therapist,
        )
    deployment.cli("tick")
    for phone in phones:
        forms = [inbound_form(phone, "yes"), inbound_form(phone, "wednesday")]
        barrier = threading.Barrier(2)
        codes: list[int] = []

        def send(
            form: dict[str, str], barrier: threading.Barrier = barrier, codes: list[int] = codes
        ) -> None:
            barrier.wait()
            codes.append(deployment.post(form).status_code)

        threads = [threading.Thread(target=send, args=(f,)) for f in forms]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert codes == [200, 200]
    assert deployment.scalar("SELECT count(*) FROM messages WHERE direction = 'in'") == 10
    # Each family consented exactly once, whatever the order the two messages were taken in.
    assert (
        deployment.scalar("SELECT count(*) FROM consent_events WHERE kind = 'consent_given'") == 5
    )
    assert deployment.scalar("SELECT count(*) FROM families WHERE consent_at IS NULL") == 0
