"""The composition root: settings, database, flows, words and the gateway of one process.

The web app, the command line and the scheduler each build one ``Services`` and pass it down; the
clock is injectable so tests never sleep.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from flows.calendar import Calendar, load_calendar
from flows.conversation import SYSTEM_KEYS
from flows.loader import FlowSet, FlowSetError, load_flow_dir
from flows.screening import RiskPatterns, load_patterns
from flows.yamlload import SourceError
from messages.catalog import LANGUAGE_NAME, Catalogue, CatalogueError, load_catalogue
from messages.templates import Template, load_templates
from messages.twilio_io import Gateway, HeldGateway, TwilioGateway
from service.config import Settings
from service.db import Database

log = logging.getLogger("bravesteps")

RISK_DIR = Path(__file__).resolve().parent.parent / "flows" / "risk"
SHELL_KEYS = (
    "system.unknown_sender",
    "system.alert_to_staff",
    "system.not_watched_now",
    "system.getting_worse",
    "system.nudge",
    "system.forward_to_staff",
    "system.call_prompt",
    "risk.immediate_danger",
    "risk.child_protection",
    "risk.self_harm",
    "risk.domestic_abuse",
    "risk.parent_distress",
    "risk.self_harm_child",
    "review.immediate_danger",
    "review.child_protection",
    "review.self_harm",
    "review.domestic_abuse",
    "review.parent_distress",
    LANGUAGE_NAME,
)


def utcnow() -> datetime:
    """The real time, timezone-aware."""
    return datetime.now(UTC)


class ContentError(Exception):
    """The flows or catalogues cannot be used; ``lines`` are ``file:line: problem`` each."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))


def load_content(settings: Settings) -> tuple[FlowSet, Catalogue]:
    """Load and cross-check the catalogues and flows, or raise ``ContentError``."""
    try:
        catalogue = load_catalogue(settings.messages_dir)
    except CatalogueError as exc:
        raise ContentError([str(e) for e in exc.errors]) from None
    missing = [key for key in (*SYSTEM_KEYS, *SHELL_KEYS) if key not in catalogue.keys]
    if missing:
        raise ContentError(
            [
                str(
                    SourceError(
                        str(settings.messages_dir / "en.yaml"),
                        1,
                        f"the service needs the message '{key}'; add it",
                    )
                )
                for key in missing
            ]
        )
    try:
        flowset = load_flow_dir(settings.flows_dir, catalogue.keys)
    except FlowSetError as exc:
        raise ContentError([str(e) for e in exc.errors]) from None
    return flowset, catalogue


def load_schedule(
    settings: Settings, flowset: FlowSet, catalogue: Catalogue
) -> tuple[Calendar, dict[str, Template]]:
    """The programme calendar and the WhatsApp templates, checked against flows and words."""
    try:
        return (
            load_calendar(settings.flows_dir, set(flowset.flows)),
            load_templates(settings.whatsapp_templates, catalogue.keys),
        )
    except SourceError as exc:
        raise ContentError([str(exc)]) from None


def make_gateway(settings: Settings) -> Gateway:
    """Twilio when credentials are set, else the database-only gateway of the demo."""
    if settings.twilio_account_sid and settings.twilio_auth_token:
        return TwilioGateway(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            sms_from=settings.twilio_sms_from,
            messaging_service_sid=settings.twilio_messaging_service_sid,
            whatsapp_from=settings.twilio_whatsapp_from,
            base_url=settings.twilio_api_base_url,
            timeout=settings.send_timeout,
        )
    return HeldGateway()


def risk_patterns(directory: Path = RISK_DIR) -> RiskPatterns:
    """The risk patterns and models of ``directory``, read once per process while its files stay
    as they are (the English model takes about a second to read; each web worker, the scheduler
    and every test's services share what was read)."""
    stamp = tuple(
        sorted((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in directory.iterdir())
    )
    return _read_risk(str(directory), stamp)


@functools.lru_cache(maxsize=4)
def _read_risk(directory: str, stamp: tuple[tuple[str, int, int], ...]) -> RiskPatterns:
    return load_patterns(Path(directory))


@dataclass
class Services:
    """Everything one process needs to handle messages and timed work."""

    settings: Settings
    db: Database
    flows: FlowSet
    catalogue: Catalogue
    gateway: Gateway
    risk: RiskPatterns = field(default_factory=risk_patterns)
    calendar: Calendar = field(default_factory=lambda: Calendar(()))
    templates: dict[str, Template] = field(default_factory=dict)
    clock: Callable[[], datetime] = field(default=utcnow)

    def now(self) -> datetime:
        """The current time from the injected clock."""
        return self.clock()

    def languages(self) -> tuple[tuple[str, str], ...]:
        """Languages offered to parents: complete catalogues, each named in its own words."""
        return self.catalogue.offered()

    def voice_notes(self, language: str) -> int:
        """How many messages have a recorded voice note in ``language`` (or in English)."""
        return self.catalogue.voice_note_count(language)

    def status_callback_url(self) -> str | None:
        """Where Twilio should report delivery, when the public URL is known."""
        if self.settings.public_url:
            return self.settings.public_url + "/twilio/status"
        return None


def build_services(
    settings: Settings,
    *,
    gateway: Gateway | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Services:
    """Wire one process together; raises ``ContentError`` on bad flows or words."""
    flowset, catalogue = load_content(settings)
    calendar, templates = load_schedule(settings, flowset, catalogue)
    try:
        risk = risk_patterns()
    except SourceError as exc:
        raise ContentError([str(exc)]) from None
    return Services(
        risk=risk,
        settings=settings,
        db=Database(settings.database_url),
        flows=flowset,
        catalogue=catalogue,
        gateway=gateway or make_gateway(settings),
        calendar=calendar,
        templates=templates,
        clock=clock or utcnow,
    )
