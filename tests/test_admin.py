"""The staff web app through Flask's test client: sign-in, roles, CSRF, the pages and actions.

The browser test (tests/test_browser.py) drives the same pages in Chromium; these tests cover the
rules one by one: who may see what, what a form without its token gets, what a wrong password
gets, and that each action changes what it says and is written in the audit log.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import (
    PUBLIC_URL,
    Clock,
    Enrolled,
    add_therapist,
    enrol,
    inbound_form,
    post_signed,
)
from sqlalchemy import func, select
from test_alerts import DUTY, rota

from scheduler.tick import run_tick
from service import create_app
from service.admin import ago
from service.alerts import raise_alert
from service.auth import MAX_FAILURES_PER_EMAIL, add_user
from service.cli import main
from service.inbound import handle_inbound
from service.models import Alert, AuditEvent, DueWork, Family, LoginAttempt, Message, Note, User
from service.wiring import Services

PASSWORD = "correct horse battery"
PAGES = ("/admin/families", "/admin/alerts", "/admin/flows", "/admin/audit", "/admin/families/new")


def make_user(services: Services, email: str, role: str, therapist_ref: str | None = None) -> int:
    with services.db.transaction() as session:
        user = add_user(
            session,
            email=email,
            name=email.split("@")[0].title(),
            role=role,
            password=PASSWORD,
            therapist_ref=therapist_ref,
            now=services.now(),
        )
        return user.id


def staff_client(services: Services) -> Any:
    """A client on https (the session cookie is Secure, as PUBLIC_URL is https)."""
    return https_client(create_app(services))


def https_client(app: Any) -> Any:
    client = app.test_client()
    client.environ_base.update({"wsgi.url_scheme": "https", "HTTP_HOST": PUBLIC_URL.split("//")[1]})
    return client


def token(client: Any, path: str = "/admin/login") -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page[:500]
    return match.group(1)


def sign_in(client: Any, email: str, password: str = PASSWORD) -> Any:
    return client.post(
        "/admin/login", data={"email": email, "password": password, "csrf_token": token(client)}
    )


def post_form(client: Any, path: str, data: dict[str, str], page: str | None = None) -> Any:
    """POST a form as the browser would: with the token from the page it is on."""
    return client.post(path, data={**data, "csrf_token": token(client, page or path)})


@pytest.fixture
def family(services: Services) -> Enrolled:
    found = enrol(services)
    run_tick(services)  # the opening message goes
    return found


@pytest.fixture
def therapist(services: Services, family: Enrolled) -> Any:
    make_user(services, "jo@nhs.example", "therapist", family.therapist_ref)
    client = staff_client(services)
    assert sign_in(client, "jo@nhs.example").status_code == 302
    return client


@pytest.fixture
def admin(services: Services) -> Any:
    make_user(services, "ada@bravesteps.example", "admin")
    client = staff_client(services)
    assert sign_in(client, "ada@bravesteps.example").status_code == 302
    return client


def audit_actions(services: Services) -> list[tuple[str, str | None]]:
    with services.db.transaction() as session:
        rows = session.execute(
            select(AuditEvent.action, AuditEvent.family_ref).order_by(AuditEvent.id)
        )
        return [(action, ref) for action, ref in rows]


# ---- signing in ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_every_page_needs_a_sign_in(services: Services, family: Enrolled, path: str) -> None:
    client = staff_client(services)
    response = client.get(path)
    assert response.status_code == 302
    assert "/admin/login" in response.headers["Location"]
    assert client.get(f"/admin/families/{family.ref}").status_code == 302


def test_actions_without_a_sign_in_change_nothing(services: Services, family: Enrolled) -> None:
    client = staff_client(services)
    csrf = token(client)
    response = client.post(
        f"/admin/families/{family.ref}/erase", data={"confirm": family.ref, "csrf_token": csrf}
    )
    assert response.status_code == 302 and "/admin/login" in response.headers["Location"]
    with services.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Family)) == 1


def test_login_page_has_the_fixed_fields(services: Services) -> None:
    page = staff_client(services).get("/admin/login").get_data(as_text=True)
    for field in ('name="email"', 'name="password"', 'name="csrf_token"', 'for="email"'):
        assert field in page


def test_wrong_password_and_unknown_email_let_nobody_in(services: Services) -> None:
    make_user(services, "jo@nhs.example", "admin")
    client = staff_client(services)
    wrong = sign_in(client, "jo@nhs.example", "not the password")
    unknown = sign_in(client, "nobody@nhs.example", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert "do not match" in wrong.get_data(as_text=True)
    assert wrong.get_data(as_text=True).count("do not match") == 1
    assert client.get("/admin/families").status_code == 302


def test_sign_in_is_case_blind_for_email_and_sets_safe_cookies(services: Services) -> None:
    make_user(services, "jo@nhs.example", "admin")
    client = staff_client(services)
    response = sign_in(client, "  Jo@NHS.example ")
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/families")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Lax" in cookie
    assert client.get("/admin/families").status_code == 200


def test_failed_sign_ins_are_limited_then_allowed_again(services: Services, clock: Clock) -> None:
    make_user(services, "jo@nhs.example", "admin")
    app = create_app(services)
    waits: list[float] = []
    app.extensions["bravesteps.sleep"] = waits.append
    client = https_client(app)
    for _ in range(MAX_FAILURES_PER_EMAIL):
        assert sign_in(client, "jo@nhs.example", "guess").status_code == 401
    assert waits and waits == sorted(waits) and waits[-1] > 0  # slower each time
    refused = sign_in(client, "jo@nhs.example")  # even the right password
    assert refused.status_code == 429
    assert "Too many failed sign-ins" in refused.get_data(as_text=True)
    clock.advance(minutes=16)
    assert sign_in(client, "jo@nhs.example").status_code == 302
    with services.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(LoginAttempt)) == 7


def test_signed_out_after_idle_time(services: Services, admin: Any, clock: Clock) -> None:
    assert admin.get("/admin/families").status_code == 200
    clock.advance(minutes=29)
    assert admin.get("/admin/families").status_code == 200  # each request keeps it alive
    clock.advance(minutes=31)
    response = admin.get("/admin/families")
    assert response.status_code == 302 and "/admin/login" in response.headers["Location"]
    assert admin.get("/admin/families").status_code == 302


def test_sign_out(services: Services, admin: Any) -> None:
    assert post_form(admin, "/admin/logout", {}, "/admin/families").status_code == 302
    assert admin.get("/admin/families").status_code == 302


def test_next_only_goes_inside_the_app(services: Services) -> None:
    make_user(services, "jo@nhs.example", "admin")
    client = staff_client(services)
    response = client.post(
        "/admin/login?next=https://evil.example/",
        data={"email": "jo@nhs.example", "password": PASSWORD, "csrf_token": token(client)},
    )
    assert response.headers["Location"].endswith("/admin/families")


# ---- CSRF ------------------------------------------------------------------------------------


def test_forms_without_their_csrf_token_are_refused(
    services: Services, therapist: Any, family: Enrolled
) -> None:
    client = staff_client(services)
    no_token = client.post("/admin/login", data={"email": "jo@nhs.example", "password": PASSWORD})
    assert no_token.status_code == 400
    note = therapist.post(f"/admin/families/{family.ref}/notes", data={"text": "hello"})
    assert note.status_code == 400 and "CSRF" in note.get_data(as_text=True)
    forged = therapist.post(
        f"/admin/families/{family.ref}/notes", data={"text": "x", "csrf_token": "forged"}
    )
    assert forged.status_code == 400
    with services.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Note)) == 0


def test_twilio_webhooks_need_no_csrf_token(services: Services, family: Enrolled) -> None:
    client = staff_client(services)
    response = post_signed(client, "/twilio/messages", inbound_form(family.phone, "yes"))
    assert response.status_code == 200


# ---- who sees what ---------------------------------------------------------------------------


def test_a_therapist_sees_only_their_own_families(
    services: Services, family: Enrolled, therapist: Any
) -> None:
    other = enrol(
        services, phone="+447700900124", child_name="Kit", therapist_phone="+447700900556"
    )
    page = therapist.get("/admin/families").get_data(as_text=True)
    assert family.ref in page and other.ref not in page
    assert therapist.get(f"/admin/families/{other.ref}").status_code == 404
    assert therapist.get(f"/admin/families/{family.ref}").status_code == 200
    refused = post_form(
        therapist, f"/admin/families/{other.ref}/notes", {"text": "x"}, "/admin/families"
    )
    assert refused.status_code == 404
    assert therapist.get("/admin/flows").status_code == 403
    assert therapist.get("/admin/audit").status_code == 403


def test_school_staff_see_families_they_enrolled_without_notes_or_alerts(
    services: Services, family: Enrolled
) -> None:
    make_user(services, "head@school.example", "school")
    client = staff_client(services)
    assert sign_in(client, "head@school.example").status_code == 302
    response = post_form(
        client,
        "/admin/families/new",
        {
            "phone": "07700 900321",
            "channel": "sms",
            "child_name": "Robin",
            "child_age": "7",
            "therapist": family.therapist_ref,
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    ref = response.headers["Location"].rsplit("/", 1)[-1]
    page = client.get("/admin/families").get_data(as_text=True)
    assert ref in page and family.ref not in page  # not theirs: enrolled by someone else
    run_tick(services)
    handle_inbound(services, inbound_form("+447700900321", "yes, she cries at the gate"))
    own = client.get(f"/admin/families/{ref}").get_data(as_text=True)
    assert "Robin" in own and "Add a note" not in own
    assert "cries at the gate" not in own and "1 from them" in own  # words: therapist only
    assert client.get("/admin/alerts").status_code == 403
    assert (
        post_form(
            client, f"/admin/families/{ref}/notes", {"text": "x"}, "/admin/families"
        ).status_code
        == 403
    )


# ---- pages and actions -----------------------------------------------------------------------


def test_caseload_shows_status_week_and_last_contact_and_filters(
    services: Services, family: Enrolled, admin: Any, client: Any
) -> None:
    post_signed(client, "/twilio/messages", inbound_form(family.phone, "yes"))
    other = enrol(services, phone="+447700900124", child_name="Kit")
    page = admin.get("/admin/families").get_data(as_text=True)
    assert family.ref in page and other.ref in page
    assert ">active<" in page and ">invited<" in page and "just now" in page
    only = admin.get("/admin/families?status=invited").get_data(as_text=True)
    assert other.ref in only and family.ref not in only
    found = admin.get("/admin/families?q=kit").get_data(as_text=True)
    assert other.ref in found and family.ref not in found
    by_child = admin.get("/admin/families?sort=child&dir=desc").get_data(as_text=True)
    assert by_child.index(family.ref) < by_child.index(other.ref)  # Sam before Kit, descending


def test_enrol_form_enrols_and_the_opening_message_shows(services: Services, admin: Any) -> None:
    rota(services)
    staff_ref = add_therapist(services, "Pat Lee", "+447700900777")
    bad = post_form(
        admin,
        "/admin/families/new",
        {
            "phone": "12",
            "channel": "sms",
            "child_name": "Robin",
            "child_age": "7",
            "therapist": staff_ref,
        },
    )
    assert bad.status_code == 400 and "phone" in bad.get_data(as_text=True)
    response = post_form(
        admin,
        "/admin/families/new",
        {
            "phone": "07700 900321",
            "channel": "sms",
            "child_name": "Robin",
            "child_age": "7",
            "therapist": staff_ref,
        },
    )
    assert response.status_code == 302
    ref = response.headers["Location"].rsplit("/", 1)[-1]
    run_tick(services)  # the scheduler's next run
    page = admin.get(f"/admin/families/{ref}").get_data(as_text=True)
    with services.db.transaction() as session:
        opening = session.scalar(select(Message).where(Message.direction == "out"))
        assert opening is not None and opening.body
        assert session.scalar(select(Family.enrolled_by_user_id).where(Family.ref == ref))
    assert opening.body.split("\n")[0][:30] in page.replace("&#39;", "'")
    assert ("enrolled", ref) in audit_actions(services)


def test_family_page_shows_transcript_consent_plan_and_records_the_view(
    services: Services, family: Enrolled, therapist: Any, client: Any
) -> None:
    post_signed(client, "/twilio/messages", inbound_form(family.phone, "Yes please"))
    page = therapist.get(f"/admin/families/{family.ref}").get_data(as_text=True)
    assert "Yes please" in page and "consent given" in page
    assert "week_1_learn" in page  # the plan, step by step
    assert ("viewed family", family.ref) in audit_actions(services)
    # The whole timetable, although only its next event is stored yet.
    plan = page.split('id="plan-h"', 1)[1].split("</section>", 1)[0]
    rows = plan.split("<tbody>", 1)[1].split("</tbody>", 1)[0].count("<tr")
    assert rows == len(services.calendar.events) == 26
    assert plan.count("<td>to come</td>") == 26 and "follow_up_3_months" in plan


def test_ratings_chart_after_three_weeks(
    services: Services, family: Enrolled, therapist: Any
) -> None:
    from datetime import timedelta

    from service.models import Measure

    with services.db.transaction() as session:
        family_id = session.scalar(select(Family.id).where(Family.ref == family.ref))
        for week, goal, worry in ((1, 2, 8), (2, 4, 6), (3, 6, 5)):
            for name, value in (("goal_1", goal), ("worry", worry)):
                session.add(
                    Measure(
                        family_id=family_id,
                        name=name,
                        value=value,
                        flow="f",
                        step="s",
                        week=week,
                        recorded_at=services.now() + timedelta(weeks=week),
                    )
                )
    page = therapist.get(f"/admin/families/{family.ref}").get_data(as_text=True)
    svg = page[page.index("<svg") : page.index("</svg>") + 6]
    assert svg.count("<polyline") == 2  # one line per measure
    assert "Goal 1" in page and "Worry" in page
    assert '<th scope="row">3</th>' in page  # the numbers, as a table too


def test_notes_are_kept_and_audited(services: Services, family: Enrolled, therapist: Any) -> None:
    response = post_form(
        therapist,
        f"/admin/families/{family.ref}/notes",
        {"text": "Called mum, going well."},
        f"/admin/families/{family.ref}",
    )
    assert response.status_code == 302
    assert "Called mum, going well." in therapist.get(f"/admin/families/{family.ref}").get_data(
        as_text=True
    )
    assert ("added note", family.ref) in audit_actions(services)


def test_pause_and_resume_move_the_calendar(
    services: Services, family: Enrolled, therapist: Any, client: Any
) -> None:
    post_signed(client, "/twilio/messages", inbound_form(family.phone, "yes"))

    def first_due() -> Any:
        with services.db.transaction() as session:
            return session.scalar(
                select(func.min(DueWork.due_at)).where(
                    DueWork.kind == "calendar", DueWork.done_at.is_(None)
                )
            )

    before = first_due()
    page = f"/admin/families/{family.ref}"
    assert post_form(therapist, f"{page}/pause", {"weeks": "2"}, page).status_code == 302
    assert (first_due() - before).days == 14
    assert ">paused<" in therapist.get(page).get_data(as_text=True)
    assert post_form(therapist, f"{page}/resume", {}, page).status_code == 302
    assert first_due() == before
    assert post_form(therapist, f"{page}/pause", {"weeks": "9"}, page).status_code == 302
    assert first_due() == before  # refused: 1 to 4 weeks
    assert [a for a, _ in audit_actions(services) if a in ("paused", "resumed")] == [
        "paused",
        "resumed",
    ]


def test_alerts_inbox_order_acknowledge_reply_and_resolve(
    services: Services, family: Enrolled, therapist: Any, client: Any, standin: Any, clock: Clock
) -> None:
    rota(services)
    post_signed(client, "/twilio/messages", inbound_form(family.phone, "yes"))
    post_signed(client, "/twilio/messages", inbound_form(family.phone, "talk to someone"))
    clock.advance(minutes=5)
    post_signed(client, "/twilio/messages", inbound_form(family.phone, "I want to kill myself"))
    page = therapist.get("/admin/alerts").get_data(as_text=True)
    assert page.index("self harm") < page.index("asked for person")  # urgent first
    assert "kill myself" not in page  # alerts never quote the parent
    with services.db.transaction() as session:
        urgent = session.scalar(select(Alert).where(Alert.kind == "self_harm"))
        assert urgent is not None
        code = urgent.code
    response = post_form(
        therapist, f"/admin/alerts/{code}", {"action": "acknowledge"}, "/admin/alerts"
    )
    assert response.status_code == 302
    clock.advance(days=2)
    run_tick(services)
    assert standin.sent_to(DUTY) == []  # acknowledged: no escalation
    sign_in(therapist, "jo@nhs.example")  # two days idle: signed out meanwhile
    reply = "Hello, this is Jo. I will ring you at 3pm today."
    post_form(
        therapist, f"/admin/alerts/{code}", {"action": "reply", "text": reply}, "/admin/alerts"
    )
    assert any(m.body == reply for m in standin.sent_to(family.phone))
    post_form(therapist, f"/admin/alerts/{code}", {"action": "resolve"}, "/admin/alerts")
    page = therapist.get("/admin/alerts").get_data(as_text=True)
    assert f"Code {code}" not in page
    with services.db.transaction() as session:
        alert = session.scalar(select(Alert).where(Alert.code == code))
        assert alert is not None and alert.status == "resolved" and alert.resolved_at
    actions = [a for a, _ in audit_actions(services)]
    assert {"alert acknowledge", "alert reply", "alert resolve"} <= set(actions)


def test_export_and_erase_are_admin_only_confirmed_and_recorded(
    services: Services, family: Enrolled, admin: Any, therapist: Any
) -> None:
    page = f"/admin/families/{family.ref}"
    assert post_form(therapist, f"{page}/export", {}, page).status_code == 403
    exported = post_form(admin, f"{page}/export", {}, page)
    assert exported.status_code == 200 and "attachment" in exported.headers["Content-Disposition"]
    data = json.loads(exported.get_data(as_text=True))
    assert data["family"]["ref"] == family.ref and data["messages"]
    post_form(admin, f"{page}/erase", {"confirm": "wrong"}, page)
    with services.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Family)) == 1
    assert (
        post_form(admin, f"{page}/erase", {"confirm": family.ref.lower()}, page).status_code == 302
    )
    with services.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Family)) == 0
        assert (
            session.scalar(
                select(func.count()).select_from(Message).where(Message.family_id.is_not(None))
            )
            == 0
        )
    assert admin.get(page).status_code == 404
    actions = audit_actions(services)
    assert ("exported", family.ref) in actions and ("erased", family.ref) in actions
    log = admin.get(f"/admin/audit?family={family.ref}").get_data(as_text=True)
    assert "erased" in log and "exported" in log


def test_flows_page_lists_flows_reading_ease_and_segments(services: Services, admin: Any) -> None:
    page = admin.get("/admin/flows").get_data(as_text=True)
    assert "onboarding" in page and "week_8_check_in" in page
    assert "Reading ease" in page and "0 error(s)" in page
    row = re.search(r"<code>onboarding\.welcome</code>.*?</tr>", page, re.DOTALL)
    assert row and re.search(r"<td[^>]*>\d+</td>", row.group(0))


def test_user_add_command(services: Services, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    family = enrol(services)
    monkeypatch.setenv("DATABASE_URL", services.settings.database_url)
    monkeypatch.setenv("BRAVESTEPS_PASSWORD", PASSWORD)
    main(
        [
            "user",
            "add",
            "--email",
            "Kim@NHS.example",
            "--name",
            "Kim",
            "--role",
            "therapist",
            "--therapist",
            family.therapist_ref,
        ]
    )
    assert "added therapist login kim@nhs.example" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        main(["user", "add", "--email", "sam@nhs.example", "--name", "Sam", "--role", "therapist"])
    assert refused.value.code != 0
    assert "--therapist" in capsys.readouterr().err
    with services.db.transaction() as session:
        user = session.scalar(select(User).where(User.email == "kim@nhs.example"))
        assert user is not None and user.password_hash != PASSWORD and user.staff_id


def test_ago() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 3, 2, tzinfo=UTC)
    assert ago(now, now) == "just now"
    assert ago(now - timedelta(hours=3), now) == "3 hours ago"
    assert ago(now - timedelta(days=1), now) == "yesterday"
    assert ago(now - timedelta(days=12), now) == "12 days ago"


def test_voice_notes_play_from_the_app_and_nothing_else_is_fetched(
    services: Services, family: Enrolled, therapist: Any, client: Any, standin: Any
) -> None:
    outside = "https://evil.example/secret.mp3"
    own = "/audio/en/week_1_tip.mp3"
    form = inbound_form(
        family.phone,
        "",
        NumMedia="2",
        MediaUrl0=PUBLIC_URL + own,
        MediaContentType0="audio/mpeg",
        MediaUrl1=outside,
        MediaContentType1="audio/ogg",
    )
    post_signed(client, "/twilio/messages", form)
    with services.db.transaction() as session:
        message = session.scalar(select(Message).where(Message.direction == "in"))
        assert message is not None and message.media
        message_id = message.id
    page = therapist.get(f"/admin/families/{family.ref}").get_data(as_text=True)
    assert page.count("<audio controls") == 2
    played = therapist.get(f"/admin/families/{family.ref}/media/{message_id}/0")
    assert played.status_code == 302 and played.headers["Location"] == own
    assert therapist.get(f"/admin/families/{family.ref}/media/{message_id}/1").status_code == 404
    assert therapist.get(f"/admin/families/{family.ref}/media/{message_id}/7").status_code == 404


def test_errors_in_the_staff_app_are_pages_not_tracebacks(
    services: Services, therapist: Any
) -> None:
    missing = therapist.get("/admin/families/F-NOSUCH")
    assert missing.status_code == 404 and "not one of your families" in missing.get_data(
        as_text=True
    )
    forbidden = therapist.get("/admin/flows")
    assert forbidden.status_code == 403 and "<h1>" in forbidden.get_data(as_text=True)


def test_an_admin_moves_a_family_to_another_therapist(
    services: Services, family: Enrolled, admin: Any, therapist: Any
) -> None:
    other = enrol(services, phone="+447700900124", therapist_phone="+447700900556")
    page = f"/admin/families/{family.ref}"
    assert (
        post_form(
            therapist, f"{page}/therapist", {"therapist": other.therapist_ref}, page
        ).status_code
        == 403
    )
    assert post_form(admin, f"{page}/therapist", {"therapist": "T-NOSUCH"}, page).status_code == 302
    with services.db.transaction() as session:
        moved = session.scalar(select(Family).where(Family.ref == family.ref))
        assert moved is not None and moved.therapist.ref == family.therapist_ref
    post_form(admin, f"{page}/therapist", {"therapist": other.therapist_ref}, page)
    with services.db.transaction() as session:
        moved = session.scalar(select(Family).where(Family.ref == family.ref))
        assert moved is not None and moved.therapist.ref == other.therapist_ref
    assert therapist.get(page).status_code == 404  # no longer theirs
    assert ("moved to therapist", family.ref) in audit_actions(services)


def test_a_long_caseload_comes_in_pages(
    services: Services, admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.admin import families as views

    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    refs = [enrol(services, phone=f"+44770090012{i}").ref for i in range(5)]
    first = admin.get("/admin/families?sort=ref").get_data(as_text=True)
    last = admin.get("/admin/families?sort=ref&page=3").get_data(as_text=True)
    assert "Page 1 of 3" in first and "(5)" in first
    assert sum(ref in first for ref in refs) == 2 and sorted(refs)[0] in first
    assert sum(ref in last for ref in refs) == 1 and sorted(refs)[-1] in last
    assert "Page 1 of 3" in admin.get("/admin/families?page=nonsense").get_data(as_text=True)


def test_the_inbox_and_the_family_page_mark_an_overdue_alert(
    services: Services, family: Enrolled, clock: Clock, standin: Any
) -> None:
    rota(services)
    clock.now = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)  # out of hours
    with services.db.transaction() as session:
        fam = session.scalar(select(Family))
        assert fam is not None
        older, _ = raise_alert(session, services, fam, "self_harm", clock.now)
        clock.advance(minutes=1)
        late, _ = raise_alert(session, services, fam, "immediate_danger", clock.now)
        codes = older.code, late.code
    for _ in range(2):  # up to the lead, then the lead's 15 minutes pass
        clock.advance(minutes=15)
        run_tick(services)
    make_user(services, "ada@bravesteps.example", "admin")
    admin = staff_client(services)
    sign_in(admin, "ada@bravesteps.example")
    page = admin.get("/admin/alerts").get_data(as_text=True)
    assert f'id="overdue-{codes[1]}"' in page and f'id="overdue-{codes[0]}"' not in page
    assert page.index(f"Code {codes[1]}") < page.index(f"Code {codes[0]}")  # overdue first
    family_page = admin.get(f"/admin/families/{family.ref}").get_data(as_text=True)
    assert f'id="overdue-{codes[1]}"' in family_page and "overdue since" in family_page
    post_form(admin, f"/admin/alerts/{codes[1]}", {"action": "acknowledge"}, "/admin/alerts")
    assert "overdue since" not in admin.get("/admin/alerts").get_data(as_text=True)
