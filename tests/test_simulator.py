"""The browser simulator's API, through the Flask test client, on an app without Twilio.

The simulator exists only when no Twilio credentials are set: it lets anyone speak as any pretend
parent, so with credentials it must not be there at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Clock, env_for
from sqlalchemy import select

from service import create_app
from service.config import load_settings
from service.models import ConsentEvent, Family
from service.wiring import Services, build_services

CHILD = "Zebedee"
# What a parent answers at each question of the programme, up to its first wait.
ANSWERS = {
    "onboarding.welcome": "yes",
    "onboarding.ask_day": "Monday",
    "onboarding.ask_time": "18:00",
    "onboarding.ask_goal": "go to school on her own",
    "onboarding.ask_goal_rating": "3",
    "onboarding.ask_more_after_1": "no",
    "onboarding.check_name": "yes",
}
DONE = "-"  # onboarding over: the calendar takes it from here


@pytest.fixture
def demo_services(database_url: str, clock: Clock) -> Iterator[Services]:
    """The service as the demo runs it: no Twilio credentials, on the injected clock."""
    settings = load_settings(env_for(database_url, None))
    assert not settings.twilio_enabled
    svc = build_services(settings, clock=clock)
    yield svc
    svc.db.dispose()


@pytest.fixture
def sim(demo_services: Services) -> Any:
    """A test client for the demo app, holding the page's CSRF token as the page's script does."""
    client = create_app(demo_services).test_client()
    page = client.get("/simulator").get_data(as_text=True)
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert match
    client.environ_base["HTTP_X_CSRFTOKEN"] = match.group(1)
    return client


def enrol(sim: Any, **body: str) -> str:
    response = sim.post("/simulator/api/families", json={"child_name": CHILD, **body})
    assert response.status_code == 201, response.get_data(as_text=True)
    return str(response.get_json()["ref"])


def transcript(sim: Any, ref: str) -> dict[str, Any]:
    response = sim.get(f"/simulator/api/families/{ref}")
    assert response.status_code == 200
    body: dict[str, Any] = response.get_json()
    return body


def say(sim: Any, ref: str, text: str) -> None:
    response = sim.post(f"/simulator/api/families/{ref}/messages", json={"text": text})
    assert response.status_code == 202, response.get_data(as_text=True)


def keys(messages: list[dict[str, Any]]) -> list[str | None]:
    return [m["key"] for m in messages if m["direction"] == "out"]


def answer_until(sim: Any, ref: str, step: str) -> dict[str, Any]:
    """Answer each question as a parent would, until the conversation is at ``step``."""
    for _ in range(len(ANSWERS) + 1):
        view = transcript(sim, ref)
        if view["step"] == step:
            return view
        assert view["step"] in ANSWERS, f"stopped at {view['step']}, which this test cannot answer"
        say(sim, ref, ANSWERS[view["step"]])
    raise AssertionError(f"never reached {step}")


def family_row(services: Services, ref: str) -> Family:
    with services.db.transaction() as session:
        family = session.scalar(select(Family).where(Family.ref == ref))
        assert family is not None
        return family


def test_the_page_is_served_with_its_script_and_styles(sim: Any) -> None:
    page = sim.get("/simulator")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "Parent's phone" in html and "Therapist's phone" in html
    for asset, kind in (("simulator.js", "javascript"), ("bravesteps.css", "text/css")):
        assert f"/static/{asset}" in html
        served = sim.get(f"/static/{asset}")
        assert served.status_code == 200 and kind in served.mimetype
        served.close()


def test_enrolling_sends_the_opening_message(sim: Any, demo_services: Services) -> None:
    ref = enrol(sim)
    view = transcript(sim, ref)
    assert (view["ref"], view["child_name"], view["status"]) == (ref, CHILD, "invited")
    [opening] = view["parent"]
    assert (opening["direction"], opening["key"]) == ("out", "onboarding.welcome")
    assert CHILD in opening["body"]
    assert [q.lower() for q in opening["quick_replies"]] == ["yes", "no"]
    assert opening["status"] == "simulated"
    assert view["therapist"] == []
    # Pretend families get numbers from Ofcom's drama range, which no real phone has.
    assert family_row(demo_services, ref).phone.startswith("+447700900")


def test_each_pretend_family_gets_its_own_number(sim: Any, demo_services: Services) -> None:
    refs = [enrol(sim) for _ in range(3)]
    phones = {family_row(demo_services, ref).phone for ref in refs}
    assert len(phones) == 3


def test_yes_records_consent_and_the_programme_moves_on(sim: Any, demo_services: Services) -> None:
    ref = enrol(sim)
    say(sim, ref, "yes")
    view = transcript(sim, ref)
    assert [m["body"] for m in view["parent"] if m["direction"] == "in"] == ["yes"]
    assert keys(view["parent"])[:5] == [
        "onboarding.welcome",
        "onboarding.thanks_yes",
        "onboarding.not_emergency",
        "onboarding.how_to_stop",
        "onboarding.ask_day",
    ]
    assert view["step"] == "onboarding.ask_day"
    family = family_row(demo_services, ref)
    assert family.consent_at is not None
    with demo_services.db.transaction() as session:
        kinds = session.scalars(
            select(ConsentEvent.kind).where(ConsentEvent.family_id == family.id)
        ).all()
    assert kinds == ["consent_given"]


def test_asking_to_talk_alerts_the_therapist_without_the_childs_name(sim: Any) -> None:
    ref = enrol(sim)
    before = answer_until(sim, ref, "onboarding.ask_day")
    assert before["therapist"] == []
    say(sim, ref, "talk")
    view = transcript(sim, ref)
    alerts = [m for m in view["therapist"] if m["key"] == "system.alert_to_staff"]
    assert len(alerts) == 1, view["therapist"]
    assert ref in alerts[0]["body"]
    assert CHILD not in alerts[0]["body"]
    assert len(view["parent"]) > len(before["parent"]) + 1  # the parent is told, too
    assert view["parent"][-1]["direction"] == "out"


def test_skipping_days_brings_the_first_week(sim: Any) -> None:
    ref = enrol(sim)
    done = answer_until(sim, ref, DONE)
    assert keys(done["parent"])[-1] == "onboarding.first_tip"

    now = sim.post("/simulator/api/tick", json={})
    assert now.status_code == 200
    assert "week_1.learn_common" not in keys(transcript(sim, ref)["parent"])

    # Consent on Monday 2 March at 17:00: week 1 runs Monday 9, Wednesday 11, Friday 13 March.
    later = sim.post("/simulator/api/tick", json={"days": 11.2})  # to Friday 13 March, evening
    assert later.status_code == 200
    view = transcript(sim, ref)
    # A skip walks through each due moment: the whole first week arrives, none of it "too late".
    sent = keys(view["parent"])
    for key in ("week_1.learn_common", "week_1.do_notice", "check_in.goal_1"):
        assert key in sent, sent
    assert view["step"] == "week_1_check_in.ask_goal_1"


def test_skips_add_up(sim: Any, clock: Clock) -> None:
    """Two skips reach the first week: the simulated clock keeps its place."""
    ref = enrol(sim)
    answer_until(sim, ref, DONE)
    first = sim.post("/simulator/api/tick", json={"days": 4}).get_json()
    assert "week_1.learn_common" not in keys(transcript(sim, ref)["parent"])
    second = sim.post("/simulator/api/tick", json={"days": 3.2}).get_json()
    assert "week_1.learn_common" in keys(transcript(sim, ref)["parent"])
    assert first["now"] < second["now"]
    assert clock.now.day == 2  # the real (injected) clock did not move


def test_bad_skips_are_refused(sim: Any) -> None:
    for days in ("soon", -1, 61, "nan"):
        response = sim.post("/simulator/api/tick", json={"days": days})
        assert response.status_code == 400, days
        assert "days" in response.get_json()["error"]


def test_unknown_families_and_empty_messages(sim: Any) -> None:
    assert sim.get("/simulator/api/families/F-NOPE").status_code == 404
    assert (
        sim.post("/simulator/api/families/F-NOPE/messages", json={"text": "hi"}).status_code == 404
    )
    ref = enrol(sim)
    empty = sim.post(f"/simulator/api/families/{ref}/messages", json={"text": "  "})
    assert empty.status_code == 400
    assert transcript(sim, ref)["parent"][-1]["direction"] == "out"


def test_odd_request_bodies_do_not_break_it(sim: Any) -> None:
    listed = sim.post("/simulator/api/families", json=["not", "an", "object"])
    assert listed.status_code == 201
    view = transcript(sim, listed.get_json()["ref"])
    assert view["child_name"] and view["parent"]
    blank = sim.post("/simulator/api/families", json={"child_name": "   ", "channel": "whatsapp"})
    assert blank.status_code == 201
    view = transcript(sim, blank.get_json()["ref"])
    assert view["child_name"].strip() and view["channel"] == "whatsapp"
    assert sim.post("/simulator/api/tick", data="days=3").status_code == 200


def test_with_twilio_credentials_there_is_no_simulator(client: Any) -> None:
    assert client.get("/simulator").status_code == 404
    assert client.post("/simulator/api/families", json={}).status_code == 404
    assert client.post("/simulator/api/tick", json={"days": 3}).status_code == 404
    assert client.get("/healthz").status_code == 200
