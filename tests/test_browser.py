"""The staff web app in a real browser: Playwright driving Debian's Chromium.

The app runs on a loopback port in this process (so it shares the test's clock and the Twilio
stand-in); the parent's messages arrive as Twilio-signed webhooks. One journey, as a therapist
would live it: sign in, enrol a family, see the opening message, the parent says YES and then
something worrying, the alert tops the inbox, the therapist acknowledges it and replies, and after
three weeks of check-ins the ratings are drawn as a chart. A screenshot of each main page is saved
under ``tests/artifacts/screenshots`` (or ``$BRAVESTEPS_ARTIFACTS``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import Clock, add_therapist, inbound_form, post_signed
from sqlalchemy import select
from test_admin import PASSWORD, make_user
from test_alerts import rota
from test_schedule import run_until
from werkzeug.serving import make_server

from scheduler.tick import run_tick
from service import create_app
from service.models import Conversation, Family, Message
from service.wiring import Services

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("BRAVESTEPS_ARTIFACTS") or Path(__file__).parent / "artifacts")
NUMBER_QUESTIONS = ("check_in.goal_1", "check_in.goal_2", "check_in.goal_3", "check_in.worry")
ONBOARDING = ("Monday", "18:00", "sleep in her own bed", "3", "no", "yes")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium (.ci/run installs it)"
    ),
]


@pytest.fixture
def server(services: Services) -> Iterator[str]:
    """The app on a free loopback port, in a thread of this process."""
    app = create_app(services)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def page(backend: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        context.set_default_timeout(15_000)
        yield context.new_page()
        context.close()
        browser.close()


UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
    .filter(e => e.type !== 'hidden')
    .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
    .map(e => e.name || e.id || e.outerHTML.slice(0, 60))"""
NAMELESS_BUTTONS = """() => [...document.querySelectorAll('button, a')]
    .filter(e => !(e.innerText || '').trim() && !e.getAttribute('aria-label'))
    .map(e => e.outerHTML.slice(0, 80))"""
UNTITLED_PICTURES = """() => [...document.querySelectorAll('svg[role=img]')]
    .filter(e => !e.querySelector('title'))
    .map(e => e.outerHTML.slice(0, 80))"""


def check_accessible(page: Any) -> None:
    """What a screen-reader or keyboard user needs on every page: one main heading, a label for
    every field, a name for every button and link, a title for every picture, a language."""
    assert page.locator("h1").count() == 1, page.url
    assert page.evaluate(UNLABELLED) == [], page.url
    assert page.evaluate(NAMELESS_BUTTONS) == [], page.url
    assert page.evaluate(UNTITLED_PICTURES) == [], page.url
    assert page.locator("html").get_attribute("lang") == "en"


def shot(page: Any, name: str, backend: str) -> None:
    check_accessible(page)
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{backend}-{name}.png"), full_page=True)


def sign_in(page: Any, url: str) -> None:
    page.goto(url + "/admin/login")
    page.get_by_label("Email").fill("jo@nhs.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Families").wait_for()


def last_out(services: Services, phone: str) -> Message | None:
    with services.db.transaction() as session:
        family_id = session.scalar(select(Family.id).where(Family.phone == phone))
        return session.scalar(
            select(Message)
            .where(Message.family_id == family_id, Message.direction == "out")
            .order_by(Message.id.desc())
            .limit(1)
        )


def answer_check_ins(services: Services, client: Any, phone: str) -> None:
    """What a parent does at a check-in: answer each rating question, a bit better each week."""
    for _ in range(6):
        message = last_out(services, phone)
        if message is None or message.catalogue_key not in NUMBER_QUESTIONS:
            return
        with services.db.transaction() as session:
            family = session.scalar(select(Family).where(Family.phone == phone))
            assert family is not None
            conversation = session.get(Conversation, family.id)
            week = (conversation.variables or {}).get("week", 1) if conversation else 1
        value = 6 if message.catalogue_key == "check_in.worry" else min(10, 2 * int(week) + 1)
        post_signed(client, "/twilio/messages", inbound_form(phone, str(value)))


def test_a_therapists_day(
    services: Services,
    server: str,
    page: Any,
    client: Any,
    standin: Any,
    clock: Clock,
    backend: str,
) -> None:
    rota(services)
    staff_ref = add_therapist(services, "Jo Bloggs", "+447700900555")
    make_user(services, "jo@nhs.example", "therapist", staff_ref)
    phone = "+447700900123"

    # Sign in.
    page.goto(server + "/admin/families")
    page.get_by_label("Email").wait_for()  # every page needs a sign-in
    shot(page, "login", backend)
    sign_in(page, server)

    # Enrol a family through the form.
    page.get_by_role("link", name="Enrol a family").first.click()
    page.get_by_label("Parent's mobile number").fill("07700 900123")
    page.get_by_label("Child's first name").fill("Maya")
    page.get_by_label("Child's age").fill("8")
    page.get_by_label("SMS (text message)").check()
    shot(page, "enrol", backend)
    page.get_by_role("button", name="Enrol and send the first message").click()
    page.get_by_text("Enrolled as").wait_for()
    ref = page.locator("h1").inner_text().split(" ")[0]

    # The scheduler's next run sends the opening message; it shows in the transcript.
    run_tick(services)
    opening = last_out(services, phone)
    assert opening is not None and opening.body and standin.sent_to(phone)
    page.reload()
    transcript = page.locator("ol.transcript")
    assert opening.body.split("\n")[0][:40] in transcript.inner_text()

    # The parent says YES, sets up, then writes something worrying.
    for text in ("YES", *ONBOARDING):
        assert post_signed(client, "/twilio/messages", inbound_form(phone, text)).status_code == 200
    clock.advance(minutes=3)
    post_signed(
        client, "/twilio/messages", inbound_form(phone, "I keep thinking about hurting myself")
    )

    # The alert is at the top of the inbox.
    page.get_by_role("link", name="Alerts").click()
    first = page.locator("ol.alerts > li").first
    assert "self harm" in first.inner_text() and ref in first.inner_text()
    assert "hurting myself" not in page.content()
    shot(page, "alerts", backend)

    # Acknowledge, reply, hand back and let the programme carry on.
    first.get_by_role("button", name="Acknowledge").click()
    page.get_by_text("acknowledged: the escalation has stopped").wait_for()
    first = page.locator("ol.alerts > li").first
    reply = "Hi, this is Jo. I will call you at 3pm today. You can ring 999 if you need to."
    first.get_by_label("Take over and write to the parent").fill(reply)
    first.get_by_role("button", name="Send to the parent").click()
    page.get_by_text(f"Sent to {ref}").wait_for()
    assert any(m.body == reply for m in standin.sent_to(phone))
    page.locator("ol.alerts > li").first.get_by_role(
        "button", name="Hand back to the programme"
    ).click()
    page.get_by_text("is back with the programme").wait_for()
    page.locator("ol.alerts > li").first.get_by_role(
        "button", name="Let the programme carry on"
    ).click()
    page.get_by_text("will carry on at its next session").wait_for()

    # Three weeks of the programme, answering each check-in.
    run_until(
        services,
        clock,
        clock.now + timedelta(weeks=4),
        on_message=lambda _moment: answer_check_ins(services, client, phone),
    )
    sign_in(page, server)  # idle for weeks: signed out meanwhile
    shot(page, "families", backend)
    page.get_by_role("link", name=ref).click()
    chart = page.locator("figure.chart-box svg")
    chart.wait_for()
    assert chart.locator("polyline").count() >= 1
    page.get_by_text("The numbers").click()
    weeks = page.locator("table.ratings tbody th").all_inner_texts()
    assert len(weeks) >= 3, weeks
    shot(page, "family", backend)

    # On a phone: nothing wider than the screen but the tables that scroll on their own.
    page.set_viewport_size({"width": 390, "height": 844})
    for name, path in (
        ("phone-family", f"/admin/families/{ref}"),
        ("phone-families", "/admin/families"),
    ):
        page.goto(server + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width}px wide on a 390px screen"
        shot(page, name, backend)
    page.set_viewport_size({"width": 1100, "height": 900})

    # The admin's pages: flows with a diagram, and the audit log of all of the above.
    make_user(services, "ada@bravesteps.example", "admin")
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("Email").fill("ada@bravesteps.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Flows").click()
    page.get_by_role("heading", name="Flows and messages").wait_for()
    shot(page, "flows", backend)
    page.get_by_role("link", name="Draw onboarding").click()
    page.locator("figure.diagram svg").wait_for()
    shot(page, "flow-onboarding", backend)
    page.get_by_role("link", name="Audit log").click()
    log = page.locator("table").inner_text()
    for action in ("enrolled", "viewed family", "alert acknowledge", "alert reply"):
        assert action in log
    shot(page, "audit", backend)
