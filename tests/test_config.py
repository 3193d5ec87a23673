"""Settings: every variable of interface.md read, and every bad value stopped with one clear line.

The bad-value cases call ``load_settings`` with an explicit mapping (no process environment, no
``.env``); the start-up cases run ``create_app()`` in a fresh interpreter, as gunicorn would.
"""

from __future__ import annotations

import gc
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import time
from pathlib import Path

import pytest
from conftest import ACCOUNT_SID, AUTH_TOKEN

from service import create_app
from service.config import (
    DEFAULT_FLOWS_DIR,
    DEFAULT_MESSAGES_DIR,
    ConfigError,
    QuietHours,
    Settings,
    load_settings,
)

MG_SID = "MG" + "2" * 32
SETTING_NAMES = (
    "DATABASE_URL",
    "SECRET_KEY",
    "PUBLIC_URL",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_SMS_FROM",
    "TWILIO_MESSAGING_SERVICE_SID",
    "TWILIO_WHATSAPP_FROM",
    "TWILIO_API_BASE_URL",
    "FLOWS_DIR",
    "MESSAGES_DIR",
    "DEFAULT_REGION",
    "DEFAULT_TIMEZONE",
    "QUIET_HOURS",
    "BRAVESTEPS_DEMO",
    "BRAVESTEPS_TESTING",
)


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A SQLite URL in this test's folder (the file need not exist to load settings)."""
    return f"sqlite:///{tmp_path / 'bravesteps.sqlite'}"


def settings(db: str, **env: str) -> Settings:
    """Settings from exactly ``env`` plus a database."""
    return load_settings({"DATABASE_URL": db, **env})


def refused(env: dict[str, str], *, web: bool = False) -> str:
    """The ConfigError text ``env`` gets, checked to be one line."""
    with pytest.raises(ConfigError) as caught:
        load_settings(env, web=web)
    text = str(caught.value)
    assert "\n" not in text and text.strip() == text and text
    return text


# ---- defaults and every setting read ----------------------------------------------------------


def test_defaults_are_the_ones_interface_md_gives(db: str) -> None:
    s = settings(db)
    assert s.database_url == db
    assert s.public_url is None
    assert (s.twilio_account_sid, s.twilio_auth_token) == (None, None)
    assert not s.twilio_enabled
    assert s.twilio_sms_from is None
    assert s.twilio_messaging_service_sid is None
    assert s.twilio_whatsapp_from is None
    assert s.twilio_api_base_url is None
    assert s.flows_dir == DEFAULT_FLOWS_DIR
    assert s.messages_dir == DEFAULT_MESSAGES_DIR
    assert DEFAULT_FLOWS_DIR.parts[-2:] == ("flows", "programme")
    assert DEFAULT_MESSAGES_DIR.parts[-2:] == ("messages", "catalog")
    assert s.default_region == "GB"
    assert s.default_timezone == "Europe/London"
    assert str(s.quiet_hours) == "21:00-08:00"


def test_every_setting_is_read(db: str, tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    words = tmp_path / "words"
    shutil.copytree(DEFAULT_FLOWS_DIR, flows)
    shutil.copytree(DEFAULT_MESSAGES_DIR, words)
    s = load_settings(
        {
            "DATABASE_URL": db,
            "SECRET_KEY": "s3cret-value",
            "PUBLIC_URL": "https://bravesteps.example.org/",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_SMS_FROM": "+447700900000",
            "TWILIO_MESSAGING_SERVICE_SID": MG_SID,
            "TWILIO_WHATSAPP_FROM": "whatsapp:+447700900009",
            "TWILIO_API_BASE_URL": "http://127.0.0.1:8089/",
            "FLOWS_DIR": str(flows),
            "MESSAGES_DIR": str(words),
            "DEFAULT_REGION": "ie",
            "DEFAULT_TIMEZONE": "America/New_York",
            "QUIET_HOURS": "22:30-07:15",
        },
        web=True,
    )
    assert s.database_url == db
    assert s.secret_key == "s3cret-value"
    assert s.public_url == "https://bravesteps.example.org"
    assert s.twilio_account_sid == ACCOUNT_SID
    assert s.twilio_auth_token == AUTH_TOKEN
    assert s.twilio_enabled
    assert s.twilio_sms_from == "+447700900000"
    assert s.twilio_messaging_service_sid == MG_SID
    assert s.twilio_whatsapp_from == "whatsapp:+447700900009"
    assert s.twilio_api_base_url == "http://127.0.0.1:8089"
    assert s.flows_dir == flows
    assert s.messages_dir == words
    assert s.default_region == "IE"
    assert s.default_timezone == "America/New_York"
    assert s.quiet_hours == QuietHours(time(22, 30), time(7, 15))


def test_blank_values_count_as_unset(db: str) -> None:
    s = settings(db, TWILIO_ACCOUNT_SID=" ", TWILIO_AUTH_TOKEN="", QUIET_HOURS="  ")
    assert not s.twilio_enabled
    assert str(s.quiet_hours) == "21:00-08:00"


def test_without_database_url_a_sqlite_file_in_the_instance_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings({})
    assert s.database_url == f"sqlite:///{tmp_path / 'instance' / 'bravesteps.sqlite'}"
    assert (tmp_path / "instance").is_dir()


@pytest.mark.parametrize(
    ("given", "used"),
    [
        (
            "postgres://app@db.internal:5432/bravesteps",
            "postgresql+psycopg://app@db.internal:5432/bravesteps",
        ),
        (
            "postgresql://app@db.internal/bravesteps",
            "postgresql+psycopg://app@db.internal/bravesteps",
        ),
        (
            "postgresql+psycopg://app@db.internal/bravesteps",
            "postgresql+psycopg://app@db.internal/bravesteps",
        ),
    ],
)
def test_postgres_urls_are_accepted_and_use_psycopg_3(given: str, used: str) -> None:
    assert load_settings({"DATABASE_URL": given}).database_url == used


# ---- bad values: one line naming the variable ---------------------------------------------------

BAD = [
    ({"TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_SMS_FROM": "+447700900000"}, "TWILIO_ACCOUNT_SID"),
    ({"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_SMS_FROM": "+447700900000"}, "TWILIO_AUTH_TOKEN"),
    ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
    ({"DATABASE_URL": "not a url"}, "DATABASE_URL"),
    ({"DATABASE_URL": "postgresql://host/"}, "DATABASE_URL"),
    ({"DATABASE_URL": "postgres://host"}, "DATABASE_URL"),
    ({"DATABASE_URL": "postgresql://host:port/db"}, "DATABASE_URL"),
    ({"DATABASE_URL": "postgresql+psycopg2://host/db"}, "DATABASE_URL"),
    ({"DATABASE_URL": "sqlite://"}, "DATABASE_URL"),
    ({"DATABASE_URL": "sqlite:///:memory:"}, "DATABASE_URL"),
    ({"DATABASE_URL": "sqlite:////no/such/folder/bravesteps.sqlite"}, "DATABASE_URL"),
    ({"QUIET_HOURS": "25:00-08:00"}, "QUIET_HOURS"),
    ({"QUIET_HOURS": "9pm-8am"}, "QUIET_HOURS"),
    ({"QUIET_HOURS": "21:00"}, "QUIET_HOURS"),
    ({"QUIET_HOURS": "21:60-08:00"}, "QUIET_HOURS"),
    ({"DEFAULT_TIMEZONE": "Mars/Olympus_Mons"}, "DEFAULT_TIMEZONE"),
    ({"DEFAULT_TIMEZONE": "Europe"}, "DEFAULT_TIMEZONE"),
    ({"DEFAULT_TIMEZONE": "../../etc/passwd"}, "DEFAULT_TIMEZONE"),
    ({"DEFAULT_TIMEZONE": "Europe/Lon\ndon"}, "DEFAULT_TIMEZONE"),
    ({"DEFAULT_REGION": "XX"}, "DEFAULT_REGION"),
    ({"DEFAULT_REGION": "UK"}, "DEFAULT_REGION"),
    ({"DEFAULT_REGION": "GBR"}, "DEFAULT_REGION"),
    ({"PUBLIC_URL": "bravesteps.example.org"}, "PUBLIC_URL"),
    ({"PUBLIC_URL": "ftp://bravesteps.example.org"}, "PUBLIC_URL"),
    ({"PUBLIC_URL": "https://"}, "PUBLIC_URL"),
    ({"PUBLIC_URL": "https://:443"}, "PUBLIC_URL"),
    ({"PUBLIC_URL": "https://bravesteps.example.org:https"}, "PUBLIC_URL"),
    ({"PUBLIC_URL": "https://bravesteps.example.org/?x=1"}, "PUBLIC_URL"),
    (
        {
            "TWILIO_ACCOUNT_SID": "AC123",
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_SMS_FROM": "+447700900000",
        },
        "TWILIO_ACCOUNT_SID",
    ),
    (
        {
            "TWILIO_ACCOUNT_SID": "SK" + "1" * 32,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_SMS_FROM": "+447700900000",
        },
        "TWILIO_ACCOUNT_SID",
    ),
    ({"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN}, "TWILIO_SMS_FROM"),
    ({"TWILIO_SMS_FROM": "12345"}, "TWILIO_SMS_FROM"),
    ({"TWILIO_WHATSAPP_FROM": "+447700900009"}, "TWILIO_WHATSAPP_FROM"),
    ({"TWILIO_MESSAGING_SERVICE_SID": "MG123"}, "TWILIO_MESSAGING_SERVICE_SID"),
    ({"TWILIO_API_BASE_URL": "127.0.0.1:8080"}, "TWILIO_API_BASE_URL"),
    ({"FLOWS_DIR": "/no/such/folder"}, "FLOWS_DIR"),
    ({"FLOWS_DIR": str(DEFAULT_FLOWS_DIR / "onboarding.yaml")}, "FLOWS_DIR"),
    ({"MESSAGES_DIR": "/no/such/folder"}, "MESSAGES_DIR"),
]


@pytest.mark.parametrize(("env", "variable"), BAD, ids=[f"{v}-{i}" for i, (_, v) in enumerate(BAD)])
def test_a_bad_setting_stops_start_up_with_one_line_naming_it(
    env: dict[str, str], variable: str, db: str
) -> None:
    text = refused({"DATABASE_URL": db, **env})
    assert variable in text


def test_database_url_errors_never_repeat_the_password() -> None:
    text = refused({"DATABASE_URL": "postgresql://app:hunter2@host:port/db"})
    assert "hunter2" not in text


def test_credentials_without_a_sender_name_every_sender(db: str) -> None:
    text = refused(
        {"DATABASE_URL": db, "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN}
    )
    for name in ("TWILIO_SMS_FROM", "TWILIO_MESSAGING_SERVICE_SID", "TWILIO_WHATSAPP_FROM"):
        assert name in text


@pytest.mark.parametrize(
    "sender",
    [
        {"TWILIO_SMS_FROM": "+447700900000"},
        {"TWILIO_SMS_FROM": "BraveSteps"},
        {"TWILIO_MESSAGING_SERVICE_SID": MG_SID},
        {"TWILIO_WHATSAPP_FROM": "whatsapp:+447700900009"},
    ],
)
def test_any_one_sender_is_enough(sender: dict[str, str], db: str) -> None:
    s = settings(db, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN, **sender)
    assert s.twilio_enabled


# ---- SECRET_KEY: the web app needs it, the command line does not --------------------------------


def test_secret_key_is_required_for_the_web_app(db: str) -> None:
    assert "SECRET_KEY" in refused({"DATABASE_URL": db}, web=True)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app({"DATABASE_URL": db})


def test_secret_key_is_not_needed_for_commands(db: str) -> None:
    first, second = load_settings({"DATABASE_URL": db}), load_settings({"DATABASE_URL": db})
    assert len(first.secret_key) >= 32
    assert first.secret_key != second.secret_key


def test_the_demo_makes_a_random_secret_key(db: str) -> None:
    s = load_settings({"DATABASE_URL": db}, web=True, demo=True)
    assert s.demo and len(s.secret_key) >= 32
    assert load_settings({"DATABASE_URL": db, "BRAVESTEPS_DEMO": "1"}, web=True).demo


# ---- .env --------------------------------------------------------------------------------------


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A temp cwd and a process environment without our settings, restored afterwards."""
    saved = dict(os.environ)
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    os.environ.clear()
    os.environ.update(saved)


def test_dotenv_in_the_working_folder_is_read(clean_environ: Path) -> None:
    db = f"sqlite:///{clean_environ / 'from-dotenv.sqlite'}"
    (clean_environ / ".env").write_text(
        f"DATABASE_URL={db}\nSECRET_KEY=from-dotenv\nDEFAULT_TIMEZONE=Asia/Tokyo\n"
        "QUIET_HOURS=20:00-09:00\n"
    )
    s = load_settings(web=True)
    assert s.database_url == db
    assert s.secret_key == "from-dotenv"
    assert s.default_timezone == "Asia/Tokyo"
    assert str(s.quiet_hours) == "20:00-09:00"


def test_the_real_environment_wins_over_dotenv(clean_environ: Path) -> None:
    (clean_environ / ".env").write_text("DEFAULT_TIMEZONE=Asia/Tokyo\nDEFAULT_REGION=FR\n")
    os.environ["DEFAULT_TIMEZONE"] = "Europe/Paris"
    os.environ["DATABASE_URL"] = f"sqlite:///{clean_environ / 'x.sqlite'}"
    s = load_settings()
    assert s.default_timezone == "Europe/Paris"
    assert s.default_region == "FR"


def test_a_bad_value_in_dotenv_is_named_too(clean_environ: Path) -> None:
    (clean_environ / ".env").write_text(
        f"DATABASE_URL=sqlite:///{clean_environ / 'x.sqlite'}\nQUIET_HOURS=9pm-8am\n"
    )
    with pytest.raises(ConfigError, match="QUIET_HOURS"):
        load_settings()


# ---- quiet hours -------------------------------------------------------------------------------


def test_quiet_hours_across_midnight_and_within_a_day(db: str) -> None:
    night = settings(db, QUIET_HOURS="21:00-08:00").quiet_hours
    assert night.contains(time(21, 0)) and night.contains(time(2, 0))
    assert night.contains(time(7, 59)) and not night.contains(time(8, 0))
    assert not night.contains(time(12, 0)) and not night.contains(time(20, 59))
    lunch = settings(db, QUIET_HOURS="12:00-13:30").quiet_hours
    assert lunch.contains(time(12, 45)) and not lunch.contains(time(13, 30))
    assert not settings(db, QUIET_HOURS="08:00-08:00").quiet_hours.contains(time(8, 0))


# ---- start-up of the web app in a fresh interpreter ----------------------------------------------

START = "from service import create_app; create_app(); print('started')"
# ... and how many objects it leaves out of the garbage collector's full collections afterwards.
FROZEN = "import gc; from service import create_app; create_app(); print(gc.get_freeze_count())"


def start_web(tmp_path: Path, code: str = START, **env: str) -> subprocess.Popen[str]:
    """``create_app()`` with no argument, as gunicorn calls it, in a clean environment."""
    base = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**base, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def broken_flows(tmp_path: Path) -> Path:
    """A copy of the programme whose onboarding flow sends a step to nowhere."""
    folder = tmp_path / "programme"
    shutil.copytree(DEFAULT_FLOWS_DIR, folder)
    onboarding = folder / "onboarding.yaml"
    text = onboarding.read_text()
    assert "next: not_emergency" in text
    onboarding.write_text(text.replace("next: not_emergency", "next: nowhere_at_all", 1))
    return folder


def test_create_app_without_arguments_stops_with_one_line(tmp_path: Path) -> None:
    """A bad setting, a missing SECRET_KEY and a broken flow file, started side by side."""
    db = f"sqlite:///{tmp_path / 'x.sqlite'}"
    timezone = start_web(tmp_path, DATABASE_URL=db, SECRET_KEY="k", DEFAULT_TIMEZONE="Mars/Base")
    secret = start_web(tmp_path, DATABASE_URL=db)
    flows = start_web(
        tmp_path, DATABASE_URL=db, SECRET_KEY="k", FLOWS_DIR=str(broken_flows(tmp_path))
    )
    for process, variable in ((timezone, "DEFAULT_TIMEZONE"), (secret, "SECRET_KEY")):
        out, err = process.communicate(timeout=60)
        assert process.returncode == 1, err
        assert (out, "Traceback" in err) == ("", False), err
        assert len(err.splitlines()) == 1, err
        assert err.startswith("bravesteps: cannot start: "), err
        assert variable in err

    out, err = flows.communicate(timeout=60)
    assert flows.returncode == 1, err
    assert (out, "Traceback" in err) == ("", False), err
    lines = err.splitlines()
    assert lines[0].startswith("bravesteps: cannot start: "), err
    assert re.search(r"onboarding\.yaml:\d+: .*'nowhere_at_all'", err), err
    assert all(re.search(r"\.yaml:\d+: ", line) for line in lines), err


def test_a_web_worker_keeps_its_start_up_objects_out_of_full_collections(tmp_path: Path) -> None:
    """A full collection walks every tracked object: over what the app holds for good, that is a
    stall of tens of milliseconds for whichever request it lands in. So gunicorn's app freezes
    them (``gc.freeze``); an app built for a test (with settings given) does not."""
    db = f"sqlite:///{tmp_path / 'x.sqlite'}"
    worker = start_web(tmp_path, FROZEN, DATABASE_URL=db, SECRET_KEY="k")
    out, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert int(out.split()[-1]) > 50_000
    before = gc.get_freeze_count()
    create_app(load_settings({"DATABASE_URL": db, "BRAVESTEPS_TESTING": "1"}))
    assert gc.get_freeze_count() == before
