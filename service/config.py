"""Every setting, read once from the environment (and ``.env``), checked before anything starts.

A half-given or malformed setting must stop start-up with one clear line, not surface later as a
failed send at 3 a.m. gunicorn does not read ``.env``, so ``load_dotenv`` is called here.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from dotenv import load_dotenv
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from flows.timing import QuietHours, StaffedHours, parse_quiet_hours, parse_staffed_hours

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FLOWS_DIR = ROOT / "flows" / "programme"
DEFAULT_MESSAGES_DIR = ROOT / "messages" / "catalog"
DEFAULT_TEMPLATES = ROOT / "messages" / "whatsapp_templates.yaml"
SQLITE_DRIVERS = ("sqlite", "sqlite+pysqlite")
POSTGRES_DRIVERS = ("postgresql", "postgresql+psycopg")


class ConfigError(Exception):
    """A setting that stops start-up; the message is one line naming the variable."""


@dataclass(frozen=True)
class Settings:
    """The whole configuration of one process."""

    database_url: str
    secret_key: str
    public_url: str | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_sms_from: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_whatsapp_from: str | None = None
    twilio_api_base_url: str | None = None
    flows_dir: Path = DEFAULT_FLOWS_DIR
    messages_dir: Path = DEFAULT_MESSAGES_DIR
    default_region: str = "GB"
    default_timezone: str = "Europe/London"
    quiet_hours: QuietHours = field(default_factory=lambda: parse_quiet_hours("21:00-08:00"))
    late_limit: timedelta = timedelta(hours=12)
    staffed_hours: StaffedHours = field(
        default_factory=lambda: parse_staffed_hours("Mon-Fri 09:00-17:00")
    )
    out_of_hours_role: str | None = None
    whatsapp_templates: Path | None = None
    scheduler_interval: float = 30.0
    messages_per_second: float = 10.0
    send_timeout: float = 10.0
    dispatch: str = "thread"  # how the web process sends replies: thread | inline | off
    staff_idle: timedelta = timedelta(minutes=30)  # staff web app: signed out after this long idle
    demo: bool = False
    testing: bool = False

    @property
    def twilio_enabled(self) -> bool:
        """True when messages really go to Twilio (or its stand-in)."""
        return bool(self.twilio_account_sid and self.twilio_auth_token)

    @property
    def is_sqlite(self) -> bool:
        """SQLite needs its own locking and claiming."""
        return self.database_url.startswith("sqlite")


_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_MG_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")


def _blank_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _shown(value: str, limit: int = 60) -> str:
    """A setting's value quoted on one line (a stray newline must not split the error)."""
    return repr(value if len(value) <= limit else value[:limit] + "...")


def default_database_url() -> str:
    """The SQLite file in the ``instance`` folder of the current directory, created if need be."""
    instance = Path.cwd() / "instance"
    instance.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{instance / 'bravesteps.sqlite'}"


def normalise_database_url(url: str) -> str:
    """Accept ``postgres://`` and plain ``postgresql://``; use psycopg 3 for PostgreSQL.

    The URL itself is never repeated in an error: it may hold a password.
    """
    if url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url[len("postgres://") :]
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018  (a port that is not a number fails here)
    except (ArgumentError, ValueError):
        raise ConfigError(
            "DATABASE_URL is not a database URL; use sqlite:///path.db or "
            "postgresql://user@host/dbname"
        ) from None
    backend, driver = parsed.get_backend_name(), parsed.drivername
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(f"DATABASE_URL uses {backend!r}; bravesteps runs on sqlite or postgresql")
    if driver not in SQLITE_DRIVERS + POSTGRES_DRIVERS:
        raise ConfigError(
            f"DATABASE_URL asks for the driver {parsed.get_driver_name()!r}; leave it out "
            "(postgresql://... uses psycopg 3, sqlite:///... the built-in one)"
        )
    if backend == "postgresql" and not parsed.database:
        raise ConfigError(
            "DATABASE_URL names no database; add it, e.g. postgresql://host/bravesteps"
        )
    if backend == "sqlite":
        database = parsed.database or ""
        if not database or database == ":memory:" or "mode=memory" in url:
            raise ConfigError(
                "DATABASE_URL names no SQLite file (an in-memory database is lost between "
                "processes); use sqlite:///path/to/bravesteps.sqlite"
            )
        folder = Path(database).expanduser().parent
        if not folder.is_dir():
            raise ConfigError(
                f"DATABASE_URL: the folder {str(folder)!r} for the SQLite file does not exist; "
                "create it or change the path"
            )
    return url


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = _blank_to_none(env.get(name))
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {_shown(raw)}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low:g} and {high:g}")
    return value


def _public_url(value: str) -> str:
    """``PUBLIC_URL`` without a trailing slash; Twilio's signatures are computed over it."""
    problem = ConfigError(
        f"PUBLIC_URL must look like https://bravesteps.example.org, not {_shown(value)}"
    )
    if not re.fullmatch(r"https?://[^\s/?#@]+(/[^\s?#]*)?", value):
        raise problem
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (a port that is not a number fails here)
    except ValueError:
        raise problem from None
    if not parts.hostname:
        raise problem
    return value.rstrip("/")


def valid_timezone(name: str) -> bool:
    """True for an IANA zone name like ``Europe/London`` (not a folder such as ``Europe``)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _flag(env: Mapping[str, str], name: str) -> bool:
    return (env.get(name) or "").strip().lower() in ("1", "true", "yes", "on")


def load_settings(
    env: Mapping[str, str] | None = None,
    *,
    demo: bool = False,
    web: bool = False,
    read_dotenv: bool = True,
) -> Settings:
    """Build and check the settings from ``env`` (default: the process environment and .env).

    ``web`` marks the web process, the only one that signs cookies and so needs ``SECRET_KEY``.
    """
    if env is None:
        if read_dotenv:
            load_dotenv(Path.cwd() / ".env")
        env = os.environ
    get = lambda name: _blank_to_none(env.get(name))  # noqa: E731

    demo = demo or _flag(env, "BRAVESTEPS_DEMO")
    testing = _flag(env, "BRAVESTEPS_TESTING")
    database_url = get("DATABASE_URL")
    database_url = normalise_database_url(database_url or default_database_url())

    secret_key = get("SECRET_KEY")
    if secret_key is None:
        if web and not (demo or testing):
            raise ConfigError(
                "SECRET_KEY is not set; set it to a long random string (python -c "
                "'import secrets; print(secrets.token_hex(32))')"
            )
        secret_key = secrets.token_hex(32)

    public_url = get("PUBLIC_URL")
    if public_url is not None:
        public_url = _public_url(public_url)

    sid, token = get("TWILIO_ACCOUNT_SID"), get("TWILIO_AUTH_TOKEN")
    if token and not sid:
        raise ConfigError(
            "TWILIO_AUTH_TOKEN is set without TWILIO_ACCOUNT_SID; set both or neither"
        )
    if sid and not token:
        raise ConfigError(
            "TWILIO_ACCOUNT_SID is set without TWILIO_AUTH_TOKEN; set both or neither"
        )
    if sid and not _SID.match(sid):
        raise ConfigError(
            "TWILIO_ACCOUNT_SID must be 'AC' and 32 hex digits (see the Twilio console)"
        )
    sms_from, ms_sid = get("TWILIO_SMS_FROM"), get("TWILIO_MESSAGING_SERVICE_SID")
    wa_from = get("TWILIO_WHATSAPP_FROM")
    if ms_sid and not _MG_SID.match(ms_sid):
        raise ConfigError("TWILIO_MESSAGING_SERVICE_SID must be 'MG' and 32 hex digits")
    if wa_from and not re.fullmatch(r"whatsapp:\+[0-9]{8,15}", wa_from):
        raise ConfigError("TWILIO_WHATSAPP_FROM must look like whatsapp:+447700900123")
    if sms_from and not (
        re.fullmatch(r"\+[0-9]{8,15}", sms_from)
        or re.fullmatch(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}", sms_from)
    ):
        raise ConfigError(
            "TWILIO_SMS_FROM must be an E.164 number like +447700900123 or a sender ID of up to "
            "11 letters and digits, with at least one letter"
        )
    if sid and not (sms_from or ms_sid or wa_from):
        raise ConfigError(
            "Twilio credentials are set but no sender: set TWILIO_SMS_FROM, "
            "TWILIO_MESSAGING_SERVICE_SID or TWILIO_WHATSAPP_FROM"
        )
    base_url = get("TWILIO_API_BASE_URL")
    if base_url and not re.fullmatch(r"https?://[^\s/?#]+", base_url.rstrip("/")):
        raise ConfigError(
            "TWILIO_API_BASE_URL must be a scheme and host like http://127.0.0.1:8080, not "
            f"{_shown(base_url)}"
        )

    region = (get("DEFAULT_REGION") or "GB").upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(
            f"DEFAULT_REGION {_shown(region)} is not a two-letter region code like GB"
        )
    timezone = get("DEFAULT_TIMEZONE") or "Europe/London"
    if not valid_timezone(timezone):
        raise ConfigError(
            f"DEFAULT_TIMEZONE {_shown(timezone)} is not an IANA time zone like Europe/London"
        )
    try:
        quiet = parse_quiet_hours(get("QUIET_HOURS") or "21:00-08:00")
    except ValueError as exc:
        raise ConfigError(f"QUIET_HOURS: {exc}") from None

    flows_dir = Path(get("FLOWS_DIR") or DEFAULT_FLOWS_DIR)
    messages_dir = Path(get("MESSAGES_DIR") or DEFAULT_MESSAGES_DIR)
    for name, folder in (("FLOWS_DIR", flows_dir), ("MESSAGES_DIR", messages_dir)):
        if not folder.is_dir():
            raise ConfigError(f"{name} {_shown(str(folder))} is not a folder")

    try:
        staffed = parse_staffed_hours(get("STAFFED_HOURS") or "Mon-Fri 09:00-17:00")
    except ValueError as exc:
        raise ConfigError(f"STAFFED_HOURS: {exc}") from None
    out_of_hours = get("OUT_OF_HOURS_ROLE")
    if out_of_hours and out_of_hours not in ("therapist", "duty", "safeguarding", "lead"):
        raise ConfigError("OUT_OF_HOURS_ROLE must be therapist, duty, safeguarding or lead")

    templates_text = get("WHATSAPP_TEMPLATES")
    templates: Path | None = Path(templates_text) if templates_text else DEFAULT_TEMPLATES
    if templates is not None and not templates.is_file():
        if templates_text:
            raise ConfigError(f"WHATSAPP_TEMPLATES '{templates}' is not a file")
        templates = None

    dispatch = (get("BRAVESTEPS_DISPATCH") or "thread").lower()
    if dispatch not in ("thread", "inline", "off"):
        raise ConfigError("BRAVESTEPS_DISPATCH must be thread, inline or off")

    return Settings(
        database_url=database_url,
        secret_key=secret_key,
        public_url=public_url,
        twilio_account_sid=sid,
        twilio_auth_token=token,
        twilio_sms_from=sms_from,
        twilio_messaging_service_sid=ms_sid,
        twilio_whatsapp_from=wa_from,
        twilio_api_base_url=base_url.rstrip("/") if base_url else None,
        flows_dir=flows_dir,
        messages_dir=messages_dir,
        default_region=region,
        default_timezone=timezone,
        quiet_hours=quiet,
        late_limit=timedelta(hours=_number(env, "LATE_LIMIT_HOURS", 12.0, 0.5, 168.0)),
        staffed_hours=staffed,
        out_of_hours_role=out_of_hours,
        whatsapp_templates=templates,
        scheduler_interval=_number(env, "SCHEDULER_INTERVAL", 30.0, 1.0, 3600.0),
        messages_per_second=_number(env, "MESSAGES_PER_SECOND", 10.0, 0.0, 10000.0),
        send_timeout=_number(env, "TWILIO_TIMEOUT", 10.0, 0.1, 60.0),
        dispatch=dispatch,
        staff_idle=timedelta(minutes=_number(env, "STAFF_IDLE_MINUTES", 30.0, 1.0, 720.0)),
        demo=demo,
        testing=testing,
    )
