"""What a parent can do at any point, and how words reach them: MENU, REPEAT, TALK, voice notes
both ways, languages, and the literacy checks on the words."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import STAFFED, Clock, enrol, inbound_form, post_signed
from sqlalchemy import select

from flows.effects import Context, ConversationState, MessageIn, Send, StartFlow
from flows.loader import load_flow_dir
from flows.runtime import run
from messages.catalog import load_catalogue
from messages.textcheck import check_catalogue
from scheduler.tick import run_tick
from service.models import Alert, Family, Message
from service.wiring import Services, build_services

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "messages" / "catalog"


def started(services: Services) -> Any:
    family = enrol(services)
    run_tick(services)
    return family


def last_body(standin: Any, phone: str) -> str:
    return str(standin.sent_to(phone)[-1].body)


@pytest.mark.parametrize("text", ["MENU", "?", "Options"])
def test_menu_says_what_can_be_said_and_repeats_the_question(
    services: Services, client: Any, standin: Any, text: str
) -> None:
    family = started(services)
    post_signed(client, "/twilio/messages", inbound_form(family.phone, text))
    bodies = [m.body for m in standin.sent_to(family.phone)[1:]]
    assert "HELP" in bodies[0] and "STOP" in bodies[0] and "PAUSE" in bodies[0]
    assert "Reply YES or NO" in bodies[1]  # the open question again


def test_talk_to_someone_tells_the_therapist(
    services: Services, client: Any, standin: Any, clock: Clock
) -> None:
    clock.now = STAFFED
    family = started(services)
    post_signed(client, "/twilio/messages", inbound_form(family.phone, "Talk to someone"))
    assert "get in touch" in last_body(standin, family.phone)
    to_staff = standin.sent_to(family.therapist_phone)
    assert len(to_staff) == 1 and family.ref in to_staff[0].body
    assert "Sam" not in to_staff[0].body
    with services.db.transaction() as session:
        assert session.scalars(select(Alert.kind)).all() == ["asked_for_person"]


def test_repeat_before_any_tip(services: Services, client: Any, standin: Any) -> None:
    family = started(services)
    post_signed(client, "/twilio/messages", inbound_form(family.phone, "repeat"))
    assert "no tip yet" in last_body(standin, family.phone)


def test_a_voice_note_is_kept_and_thanked(services: Services, client: Any, standin: Any) -> None:
    family = started(services)
    form = inbound_form(
        family.phone,
        "",
        NumMedia="1",
        MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
        MediaContentType0="audio/ogg",
    )
    assert post_signed(client, "/twilio/messages", form).status_code == 200
    assert "Your therapist will see it" in last_body(standin, family.phone)
    with services.db.transaction() as session:
        stored = session.scalar(select(Message).where(Message.direction == "in"))
        fam = session.scalar(select(Family))
    assert stored is not None and stored.media == [
        {
            "url": "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
            "type": "audio/ogg",
        }
    ]
    assert fam is not None and fam.consent_at is None  # a voice note is not a YES


@pytest.fixture
def with_audio(settings: Any, clock: Clock, tmp_path: Path) -> Services:
    catalog = tmp_path / "catalog"
    shutil.copytree(CATALOG, catalog)
    (catalog / "audio" / "en").mkdir(parents=True, exist_ok=True)
    (catalog / "audio" / "en" / "welcome.mp3").write_bytes(b"ID3 not really audio")
    with_voice_note(catalog / "en.yaml", "welcome.mp3")
    return build_services(replace(settings, messages_dir=catalog), clock=clock)


def with_voice_note(path: Path, audio: str) -> None:
    """Give onboarding.welcome a recorded voice note in a copy of the catalogue."""
    data = yaml.safe_load(path.read_text())
    welcome = data["onboarding"]["welcome"]
    text = welcome["text"] if isinstance(welcome, dict) else welcome
    data["onboarding"]["welcome"] = {"text": text, "audio": audio}
    path.write_text(yaml.safe_dump(data, allow_unicode=True))


def prefer_audio(services: Services) -> None:
    with services.db.transaction() as session:
        family = session.scalar(select(Family))
        assert family is not None
        family.prefers_audio = True


def test_voice_note_goes_as_a_link_on_sms(with_audio: Services, standin: Any) -> None:
    family = enrol(with_audio)
    prefer_audio(with_audio)
    run_tick(with_audio)
    body = last_body(standin, family.phone)
    assert body.endswith("Listen: https://bravesteps.test/audio/en/welcome.mp3")


def test_voice_note_goes_as_media_on_whatsapp(with_audio: Services, standin: Any) -> None:
    enrol(with_audio, phone="+447700900321", channel="whatsapp")
    prefer_audio(with_audio)
    with with_audio.db.transaction() as session:
        family = session.scalar(select(Family))
        assert family is not None
        family.last_inbound_at = with_audio.now()  # inside the 24-hour window
    run_tick(with_audio)
    [sent] = standin.sent_to("whatsapp:+447700900321")
    assert sent.media_urls == ["https://bravesteps.test/audio/en/welcome.mp3"]


def test_audio_is_served_and_nothing_else(with_audio: Services) -> None:
    from service import create_app

    client = create_app(with_audio).test_client()
    assert client.get("/audio/en/welcome.mp3").data == b"ID3 not really audio"
    assert client.get("/audio/en/../en.yaml").status_code == 404
    assert client.get("/audio/../en.yaml").status_code == 404
    assert client.get("/audio/en/missing.mp3").status_code == 404


def test_lint_finds_a_missing_voice_note(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    shutil.copytree(CATALOG, catalog)
    with_voice_note(catalog / "en.yaml", "nope.mp3")
    findings = check_catalogue(load_catalogue(catalog), catalog / "audio")
    assert any("nope.mp3" in f.message and f.level == "error" for f in findings)


def test_lint_reading_ease_and_reviewed_translations(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "en.yaml").write_text(
        "t:\n"
        "  easy: We send a short tip each week. You can reply at any time.\n"
        "  hard: Consequently, anticipatory apprehension necessitates comprehensive "
        "psychoeducational intervention methodologies.\n"
        "  risk:\n    reviewed: true\n    text: Call 999 if you are in danger now.\n"
    )
    (catalog / "pl.yaml").write_text("t:\n  risk: Zadzwon pod 999.\n")
    findings = [str(f) for f in check_catalogue(load_catalogue(catalog))]
    assert any("'t.hard' has reading ease" in f for f in findings)
    assert not any("'t.easy'" in f for f in findings)
    assert any(
        "pl.yaml" in f and "'t.risk' must be translated and checked by a person" in f
        for f in findings
    )


LANG_FLOW = """
flow: lang
before_consent: true
steps:
  - id: choose
    branch:
      - if: language_count > 1
        next: ask
      - else: done
  - id: ask
    ask: t.which
    expect: language
    save: language
    next: done
  - id: done
    end: true
"""


def test_a_language_is_offered_only_when_its_catalogue_is_complete(tmp_path: Path) -> None:
    (tmp_path / "lang.yaml").write_text(LANG_FLOW)
    flowset = load_flow_dir(tmp_path, {"t.which"})
    now = datetime(2026, 3, 2, tzinfo=UTC)
    one = Context(now, {}, languages=(("en", "English"),))
    alone = run(flowset, ConversationState(), StartFlow("lang"), one)
    assert not any(isinstance(e, Send) for e in alone.effects) and alone.state.step is None
    two = Context(now, {}, languages=(("en", "English"), ("pl", "Polski")))
    asked = run(flowset, ConversationState(), StartFlow("lang"), two)
    [question] = [e for e in asked.effects if isinstance(e, Send)]
    assert question.variables["language_options"] == "1) English. 2) Polski."
    answered = run(flowset, asked.state, MessageIn("2"), two)
    assert answered.state.variables["language"] == "pl"
    by_name = run(flowset, asked.state, MessageIn("polski"), two)
    assert by_name.state.variables["language"] == "pl"


def test_complete_languages_only(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "en.yaml").write_text("t:\n  a: One.\n  b: Two.\nlanguage:\n  name: English\n")
    (catalog / "pl.yaml").write_text("t:\n  a: Jeden.\nlanguage:\n  name: Polski\n")
    (catalog / "cy.yaml").write_text("t:\n  a: Un.\n  b: Dau.\nlanguage:\n  name: Cymraeg\n")
    loaded = load_catalogue(catalog)
    assert loaded.complete_languages() == ["cy", "en"]
    assert loaded.missing() == {"cy": [], "pl": ["t.b"]}
    assert loaded.render("t.b", {}, "pl") == "Two."  # English, key by key


def test_a_parent_chooses_voice_notes_at_onboarding(with_audio: Services, standin: Any) -> None:
    from service import create_app

    client = create_app(with_audio).test_client()
    family = enrol(with_audio)
    run_tick(with_audio)
    for text in ("yes", "monday", "7pm", "sleep in her own bed", "2", "no", "yes"):
        post_signed(client, "/twilio/messages", inbound_form(family.phone, text))
    assert "voice note" in last_body(standin, family.phone)
    post_signed(client, "/twilio/messages", inbound_form(family.phone, "yes"))
    with with_audio.db.transaction() as session:
        fam = session.scalar(select(Family))
    assert fam is not None and fam.prefers_audio
