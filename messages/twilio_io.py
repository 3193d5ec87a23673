"""Talking to Twilio: checking its signatures, answering with TwiML, and sending.

Sending goes through the real ``twilio`` library. Every outcome is sorted into what the outbox
must do next: accepted (never send again), retry later (429, 5xx, a refused connection), a
permanent Twilio error with its code, or unknown (the request may have reached Twilio: reconcile,
do not blindly repeat).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator, add_port, compare, remove_port
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse

ACCEPTED = "accepted"
RETRY = "retry"
PERMANENT = "permanent"
UNKNOWN = "unknown"


def signature_url(public_url: str | None, request_url: str, path: str, query: bytes) -> str:
    """The URL Twilio signed: ``PUBLIC_URL`` + path (+ query) when set, else the request's."""
    if not public_url:
        return request_url
    url = public_url.rstrip("/") + path
    if query:
        url += "?" + query.decode("latin-1")
    return url


@lru_cache(maxsize=4)
def _validator(auth_token: str) -> RequestValidator:
    return RequestValidator(auth_token)


def signature_valid(
    auth_token: str, url: str, params: Mapping[str, Any], signature: str | None
) -> bool:
    """True when ``X-Twilio-Signature`` matches what Twilio would compute.

    As ``RequestValidator.validate`` (the URL with and without its port), but the second
    signature is computed only when the first does not match.
    """
    if not signature:
        return False
    validator = _validator(auth_token)
    candidates = _signed_urls(url)
    if candidates is None:
        return bool(validator.validate(url, params, signature))
    return any(
        compare(validator.compute_signature(candidate, params), signature)
        for candidate in candidates
    )


@lru_cache(maxsize=64)
def _signed_urls(url: str) -> tuple[str, str] | None:
    """The URLs Twilio may have signed for ``url`` (without, then with its port), worked out once
    per URL; None for a JSON webhook (``bodySHA256``), which the validator checks whole."""
    parsed = urlparse(url)
    if "bodySHA256" in parse_qs(parsed.query):
        return None
    return remove_port(parsed), add_port(parsed)


_NO_REPLY = str(MessagingResponse())


def twiml(replies: Sequence[str] = ()) -> str:
    """A TwiML ``<Response>`` holding zero or more ``<Message>`` replies."""
    if not replies:
        return _NO_REPLY
    response = MessagingResponse()
    for body in replies:
        response.message(body)
    return str(response)


@dataclass(frozen=True)
class SendRequest:
    """One message to hand to Twilio."""

    to: str
    body: str | None
    channel: str
    media_urls: tuple[str, ...] = ()
    content_sid: str | None = None
    content_variables: str | None = None
    status_callback: str | None = None


@dataclass(frozen=True)
class SendResult:
    """What Twilio said, sorted for the outbox."""

    outcome: str  # accepted | retry | permanent | unknown
    sid: str | None = None
    status: str | None = None
    error_code: int | None = None
    detail: str = ""


class Gateway(ABC):
    """Where outbound messages go; the demo keeps them in the database instead."""

    simulated = False

    @abstractmethod
    def send(self, request: SendRequest) -> SendResult:
        """Hand one message over."""

    def find_sent(self, to: str, since: datetime, body: str | None) -> list[str]:
        """SIDs of messages to ``to`` with ``body`` created since ``since``, oldest first."""
        return []


class HeldGateway(Gateway):
    """No Twilio credentials: messages stay in the database and the simulator shows them."""

    simulated = True

    def send(self, request: SendRequest) -> SendResult:
        """Accept at once; the row keeps its words for the simulator."""
        return SendResult(ACCEPTED, sid=None, status="simulated")


class TwilioGateway(Gateway):
    """Sends through the twilio library, to Twilio or to ``TWILIO_API_BASE_URL``."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        sms_from: str | None = None,
        messaging_service_sid: str | None = None,
        whatsapp_from: str | None = None,
        base_url: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        http = TwilioHttpClient(timeout=timeout)
        # Proxies come from settings, not from a lookup of the environment on every call.
        if http.session is not None:
            http.session.trust_env = False
        self.client = Client(account_sid, auth_token, http_client=http)
        if base_url:
            self.client.api.base_url = base_url.rstrip("/")
        self.sms_from = sms_from
        self.messaging_service_sid = messaging_service_sid
        self.whatsapp_from = whatsapp_from

    def _sender(self, channel: str) -> dict[str, str]:
        if channel == "whatsapp":
            if self.whatsapp_from:
                return {"from_": self.whatsapp_from}
            if self.messaging_service_sid:
                return {"messaging_service_sid": self.messaging_service_sid}
            raise LookupError("no WhatsApp sender is configured (TWILIO_WHATSAPP_FROM)")
        if self.messaging_service_sid:
            return {"messaging_service_sid": self.messaging_service_sid}
        if self.sms_from:
            return {"from_": self.sms_from}
        raise LookupError("no SMS sender is configured (TWILIO_SMS_FROM)")

    def send(self, request: SendRequest) -> SendResult:
        """Call ``messages.create`` and sort the outcome."""
        try:
            sender = self._sender(request.channel)
        except LookupError as exc:
            return SendResult(PERMANENT, detail=str(exc))
        kwargs: dict[str, Any] = {"to": request.to, **sender}
        if request.content_sid:
            kwargs["content_sid"] = request.content_sid
            if request.content_variables:
                kwargs["content_variables"] = request.content_variables
        else:
            if request.body:
                kwargs["body"] = request.body
            if request.media_urls:
                kwargs["media_url"] = list(request.media_urls)
        if request.status_callback:
            kwargs["status_callback"] = request.status_callback
        try:
            message = self.client.messages.create(**kwargs)
        except TwilioRestException as exc:
            return classify_rest_error(exc.status, exc.code)
        except (requests.exceptions.ConnectTimeout, requests.exceptions.ConnectionError) as exc:
            if isinstance(exc, requests.exceptions.ConnectTimeout) or _refused(exc):
                return SendResult(RETRY, detail="could not connect to Twilio")
            return SendResult(UNKNOWN, detail="connection to Twilio broke during the request")
        except requests.exceptions.Timeout:
            return SendResult(UNKNOWN, detail="Twilio did not answer in time")
        except requests.exceptions.RequestException:
            return SendResult(UNKNOWN, detail="the request to Twilio failed part-way")
        return SendResult(ACCEPTED, sid=message.sid, status=message.status)

    def find_sent(self, to: str, since: datetime, body: str | None) -> list[str]:
        """Ask Twilio whether an interrupted send got through (reconciliation)."""
        try:
            found = self.client.messages.list(
                to=to, date_sent_after=since - timedelta(days=1), limit=200
            )
        except (TwilioRestException, requests.exceptions.RequestException):
            raise ReconcileUnavailable from None
        matches = [
            message
            for message in found
            if message.date_created is not None
            and message.date_created >= since - timedelta(seconds=5)
            and (body is None or (message.body or "") == body)
        ]
        matches.sort(key=lambda message: message.date_created)
        return [str(message.sid) for message in matches]


class ReconcileUnavailable(Exception):
    """Twilio could not be asked; try reconciling later."""


def _refused(exc: requests.exceptions.ConnectionError) -> bool:
    text = repr(exc)
    return "Connection refused" in text or "NewConnectionError" in text or "Errno 111" in text


def classify_rest_error(status: int, code: int | None) -> SendResult:
    """Sort Twilio's REST error: 429 and 5xx may be retried; the rest are final."""
    if status == 429 or status >= 500:
        return SendResult(RETRY, error_code=code, detail=f"Twilio answered {status}")
    return SendResult(PERMANENT, error_code=code, detail=f"Twilio refused it ({code})")


def content_variables(values: Mapping[str, str]) -> str:
    """Template variables as the JSON string Twilio's Content API takes."""
    return json.dumps(dict(values), ensure_ascii=False)
