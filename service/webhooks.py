"""Twilio's webhooks: inbound messages and delivery status, both signature-checked.

Every request to ``/twilio/*`` must carry a valid ``X-Twilio-Signature`` when an auth token is set;
anything else is answered 403 and changes nothing. Bad input gets a 4xx with a short reason, never
a 5xx or a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, Response, current_app, request

from messages.twilio_io import signature_url, signature_valid, twiml
from service.delivery import record_status
from service.inbound import BadWebhook, handle_inbound
from service.wiring import Services

log = logging.getLogger("bravesteps.webhooks")
bp = Blueprint("twilio", __name__, url_prefix="/twilio")


def services() -> Services:
    """The process's services, hung on the app."""
    svc: Services = current_app.extensions["bravesteps"]
    return svc


def _xml(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/xml")


def _refuse(status: int, reason: str) -> Response:
    return Response(reason + "\n", status=status, mimetype="text/plain")


def signed(view: Callable[..., Response]) -> Callable[..., Response]:
    """Refuse, with 403, any request Twilio did not sign (when an auth token is configured)."""

    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Response:
        settings = services().settings
        if settings.twilio_auth_token:
            # The request's own URL only matters without PUBLIC_URL (and costs to rebuild).
            own = "" if settings.public_url else request.url
            url = signature_url(settings.public_url, own, request.path, request.query_string)
            if not signature_valid(
                settings.twilio_auth_token,
                url,
                request.form,
                request.headers.get("X-Twilio-Signature"),
            ):
                log.warning("webhook refused: missing or invalid signature")
                return _refuse(403, "Invalid or missing X-Twilio-Signature.")
        return view(*args, **kwargs)

    return checked


@bp.post("/messages")
@signed
def inbound() -> Response:
    """An inbound SMS or WhatsApp message."""
    svc = services()
    try:
        result = handle_inbound(svc, request.form)
    except BadWebhook as exc:
        return _refuse(400, f"Bad request: {exc}.")
    if result.outbox:
        current_app.extensions["bravesteps.dispatcher"].submit(result.outbox)
    return _xml(twiml(result.replies))


@bp.post("/status")
@signed
def status() -> Response:
    """A delivery status callback for a message we sent."""
    sid = (request.form.get("MessageSid") or request.form.get("SmsSid") or "").strip()
    state = (request.form.get("MessageStatus") or request.form.get("SmsStatus") or "").strip()
    if not sid or not state:
        return _refuse(400, "Bad request: MessageSid and MessageStatus are required.")
    raw_code = (request.form.get("ErrorCode") or "").strip()
    try:
        code = int(raw_code) if raw_code else None
    except ValueError:
        return _refuse(400, "Bad request: ErrorCode is not a number.")
    record_status(services(), sid, state.lower(), code)
    return Response("", status=204)
