"""A local stand-in for Twilio's 2010-04-01 Messages REST API, owned by the test suite.

It is a real HTTP server on ``127.0.0.1`` (random free port, ``ThreadingHTTPServer`` in a
daemon thread), so the *real* ``twilio`` library (checked against 9.13) talks to it unchanged:
auth, form encoding, repeated ``MediaUrl`` keys, JSON parsing, error mapping to
``TwilioRestException``, paging and timeouts are all exercised for real.

Pointing a client at it::

    with TwilioStandIn() as twilio:
        client = twilio.client()                  # a configured twilio.rest.Client
        # or, for a client you built yourself:
        client = Client(twilio.account_sid, twilio.auth_token, http_client=...)
        twilio.attach(client)                     # == client.api.base_url = twilio.base_url
        client.messages.create(to="+447700900123", from_="+447700900001", body="Hi")
        assert twilio.sent_to("+447700900123")[0].body == "Hi"

``client.api.base_url = standin.base_url`` is all the library needs (verified with 9.13).
:meth:`TwilioStandIn.client` / :meth:`TwilioStandIn.attach` additionally clear the client's
``edge``/``region`` (``TWILIO_EDGE``/``TWILIO_REGION`` in the environment would otherwise
rewrite the host name) and, for a ``TwilioHttpClient``, set ``session.trust_env = False`` so
``HTTP_PROXY``-style variables cannot divert loopback traffic to a proxy.

Endpoints (under ``/2010-04-01/Accounts/{AccountSid}/``, HTTP Basic auth = account SID +
auth token, else 401/20003; another account SID in the path → 404/20404):

* ``POST Messages.json``: validates like Twilio (21604 no To, 21211 bad To, 21603 no From /
  MessagingServiceSid, 21212 bad From, 21910 WhatsApp/SMS channel mismatch, 21602 nothing to
  send, 21617 Body > 1600 chars, 21620 bad MediaUrl, 21609 bad StatusCallback, 21656
  ContentVariables not a JSON object, 21610 opted-out recipient) and answers 201 with a
  Twilio-shaped message (``num_segments`` from :mod:`messages.segments`).
* ``GET Messages/{Sid}.json``: the stored message, or 404/20404.
* ``GET Messages.json``: ``To``, ``From``, ``DateSent`` / ``DateSent>`` / ``DateSent>=`` /
  ``DateSent<`` / ``DateSent<=`` (``YYYY-MM-DD`` or the library's ``YYYY-MM-DDTHH:MM:SSZ``,
  inclusive), ``PageSize`` (default 50) and ``Page``; newest first; real ``next_page_uri``
  when there are more pages (``null`` otherwise), so ``client.messages.list(...)`` works.
* anything else: 404 with a Twilio-style JSON error body.

Test controls: :meth:`~TwilioStandIn.fail_next` (scripted errors, hangs, and
accepted-then-dropped responses), :meth:`~TwilioStandIn.opt_out` / ``opt_in``,
:meth:`~TwilioStandIn.send_status` (signed status callbacks), ``messages``, ``requests``,
:meth:`~TwilioStandIn.sent_to`, ``set_clock`` and :meth:`~TwilioStandIn.reset`.

Simplifications: opt-outs are per recipient number (Twilio blocks the sender/recipient pair);
only the account SID + auth token pair authenticates (no API keys); message SIDs always start
with ``SM``; ``date_sent`` is the creation time. Nothing here ever reaches the network beyond
127.0.0.1.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
import select
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from requests import Response, Session
from twilio.http import HttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from messages.segments import count_segments

__all__ = [
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_AUTH_TOKEN",
    "RecordedRequest",
    "StoredMessage",
    "TwilioStandIn",
]

DEFAULT_ACCOUNT_SID = "AC" + "0" * 32
DEFAULT_AUTH_TOKEN = "5eedf00d" * 4  # 32 hex characters, like a real auth token
API_VERSION = "2010-04-01"
MAX_BODY_CHARS = 1600

#: Default ``message`` for error codes the stand-in can answer (texts as Twilio words them).
ERROR_MESSAGES: dict[int, str] = {
    20001: "Invalid parameter",
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    20503: "Service unavailable",
    21211: "The 'To' number is not a valid phone number.",
    21212: "The 'From' number is not a valid phone number, shortcode, or alphanumeric sender ID.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21609: "Invalid StatusCallback url",
    21610: "Attempt to send to unsubscribed recipient",
    21611: "This 'From' number has exceeded the maximum number of queued messages",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21620: "Invalid media URL(s)",
    21656: "The ContentVariables Parameter is invalid.",
    21701: "The Messaging Service Sid is invalid.",
    21910: "Invalid From and To pair. From and To should be of the same channel",
    63016: (
        "Failed to send freeform message because you are outside the allowed window. "
        "If you are using WhatsApp, please use a Message Template."
    ),
}

_TO_RE = re.compile(r"^(?:whatsapp:)?\+\d{8,15}$")
_FROM_NUMBER_RE = re.compile(r"^(?:whatsapp:)?\+\d{8,15}$|^\d{3,6}$")  # E.164 or short code
_ALPHA_SENDER_RE = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
_MESSAGING_SERVICE_RE = re.compile(r"^MG[0-9a-fA-F]{32}$")
_LIST_RE = re.compile(rf"^/{API_VERSION}/Accounts/([^/]+)/Messages\.json$")
_INSTANCE_RE = re.compile(rf"^/{API_VERSION}/Accounts/([^/]+)/Messages/([^/]+)\.json$")
_DATE_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}:\d{2})(?:\.\d+)?(Z|[+-]00:?00)?)?$")

_FAIL_MODES = ("error", "hang", "accept_then_drop")


def _rfc2822(moment: datetime) -> str:
    """Format like Twilio: ``Thu, 24 Aug 2023 05:01:45 +0000``."""
    return format_datetime(moment.astimezone(UTC))


def _error_body(status: int, code: int, message: str | None = None) -> dict[str, Any]:
    """Twilio's legacy JSON error body (what twilio-python maps to TwilioRestException)."""
    return {
        "code": code,
        "message": message or ERROR_MESSAGES.get(code, f"Error {code}"),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _default_code(http_status: int) -> int:
    """Twilio's generic code for an HTTP status: 401 → 20003, otherwise 20000 + status."""
    return 20003 if http_status == 401 else 20000 + http_status


@dataclass
class StoredMessage:
    """A message the stand-in accepted (answered, or meant to answer, 201)."""

    sid: str
    account_sid: str
    to: str
    from_: str | None
    body: str
    status: str
    messaging_service_sid: str | None
    status_callback: str | None
    content_sid: str | None
    content_variables: str | None
    media_urls: list[str]
    num_segments: int
    created_at: datetime  # timezone-aware, whole seconds (as Twilio reports it)
    updated_at: datetime
    params: dict[str, list[str]]  # every form field as received (ValidityPeriod, SmartEncoded…)
    error_code: int | None = None
    error_message: str | None = None

    @property
    def content_variables_dict(self) -> dict[str, Any]:
        """``ContentVariables`` decoded (``{}`` when absent)."""
        return json.loads(self.content_variables) if self.content_variables else {}

    @property
    def uri(self) -> str:
        """The message's REST path, as Twilio reports it."""
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"

    def to_json(self) -> dict[str, Any]:
        """The message resource exactly as the REST API serialises it."""
        base = self.uri[: -len(".json")]
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": _rfc2822(self.created_at),
            "date_sent": _rfc2822(self.created_at),
            "date_updated": _rfc2822(self.updated_at),
            "direction": "outbound-api",
            "error_code": self.error_code,
            "error_message": self.error_message,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": str(len(self.media_urls)),
            "num_segments": str(self.num_segments),
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {
                "media": f"{base}/Media.json",
                "feedback": f"{base}/Feedback.json",
            },
            "to": self.to,
            "uri": self.uri,
        }


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request the stand-in received, and what it answered.

    ``status`` is ``None`` when no response was sent ("hang" / "accept_then_drop").
    """

    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    headers: dict[str, str]
    status: int | None
    received_at: datetime

    def param(self, name: str) -> str | None:
        """First value of ``name`` in the form body, else in the query string."""
        values = self.form.get(name) or self.query.get(name)
        return values[0] if values else None


@dataclass
class _Failure:
    http_status: int
    code: int
    remaining: int
    to: str | None
    mode: str
    hang_seconds: float


@dataclass
class _Answer:
    """What the handler should do: send ``status``+``body``, or (``status`` None) not answer."""

    status: int | None
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    hang_seconds: float = 0.0


class TwilioStandIn:
    """Local imitation of Twilio's Messages API; see the module docstring."""

    def __init__(
        self,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """Create a stopped stand-in.

        ``clock`` supplies creation times (timezone-aware; default ``datetime.now(UTC)``), so
        tests of date filters need no sleeping. It can be swapped later with ``set_clock``.
        """
        self.account_sid = account_sid
        self.auth_token = auth_token
        self._clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._messages: list[StoredMessage] = []
        self._requests: list[RecordedRequest] = []
        self._failures: list[_Failure] = []
        self._opted_out: set[str] = set()
        self._server_errors: list[str] = []
        # Seconds each create takes, like Twilio's own latency (for tests that kill a sender
        # mid-batch); 0 answers at once.
        self.create_delay = 0.0
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> TwilioStandIn:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread; returns ``self``."""
        if self._server is not None:
            raise RuntimeError("TwilioStandIn already started")
        self._stopping.clear()
        server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        server.daemon_threads = True
        self._server = server
        self.base_url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="twilio-standin",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, release any hanging connections and close the socket (idempotent)."""
        self._stopping.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> TwilioStandIn:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ clients
    def client(
        self, *, timeout: float | None = None, http_client: HttpClient | None = None
    ) -> Client:
        """A real ``twilio.rest.Client`` authenticated for, and pointed at, this stand-in.

        Pass ``http_client`` (e.g. ``TwilioHttpClient(timeout=0.5)``) or just ``timeout``.
        """
        if http_client is None:
            http_client = TwilioHttpClient(timeout=timeout)
        client = Client(self.account_sid, self.auth_token, http_client=http_client)
        return self.attach(client)

    def attach(self, client: Client) -> Client:
        """Point an existing client at this stand-in (``client.api.base_url``); returns it."""
        if not self.base_url:
            raise RuntimeError("start() the stand-in before attaching clients")
        client.edge = None
        client.region = None
        http_client = client.http_client
        if isinstance(http_client, TwilioHttpClient) and http_client.session is not None:
            http_client.session.trust_env = False
        client.api.base_url = self.base_url
        return client

    # ------------------------------------------------------------------ inspection
    @property
    def messages(self) -> list[StoredMessage]:
        """Every accepted message, oldest first (a snapshot copy; safe across threads)."""
        with self._lock:
            return list(self._messages)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, in arrival order (a snapshot copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def server_errors(self) -> list[str]:
        """Tracebacks of bugs inside the stand-in's handler (answered as 500/20500)."""
        with self._lock:
            return list(self._server_errors)

    def sent_to(self, to: str) -> list[StoredMessage]:
        """Accepted messages whose ``To`` is exactly ``to`` (``whatsapp:`` prefix included)."""
        return [m for m in self.messages if m.to == to]

    def get(self, sid: str) -> StoredMessage:
        """The accepted message with this SID (``KeyError`` if none)."""
        with self._lock:
            for message in self._messages:
                if message.sid == sid:
                    return message
        raise KeyError(sid)

    def reset(self) -> None:
        """Forget messages, requests, scripted failures and opt-outs (keeps the server up)."""
        with self._lock:
            self._messages.clear()
            self._requests.clear()
            self._failures.clear()
            self._opted_out.clear()
            self._server_errors.clear()

    def set_clock(self, clock: Callable[[], datetime]) -> None:
        """Replace the source of creation times (must return timezone-aware datetimes)."""
        self._clock = clock

    # ------------------------------------------------------------------ scripting
    def fail_next(
        self,
        *,
        http_status: int = 400,
        code: int | None = None,
        times: int = 1,
        to: str | None = None,
        mode: str = "error",
        hang_seconds: float = 5.0,
    ) -> None:
        """Script the next ``times`` create calls (only those to ``to``, if given) to fail.

        * ``"error"``: answer ``http_status`` with Twilio's JSON error body; ``code`` defaults
          to 20000 + status (20003 for 401), e.g. (429 → 20429), (500 → 20500).
        * ``"hang"``: read the request, never answer; close after the client disconnects or
          ``hang_seconds`` pass (or on ``stop()``). Nothing is stored.
        * ``"accept_then_drop"``: store the message as accepted, then close the connection
          without a response ("Twilio accepted it but we never heard back").

        Scripted failures are checked after authentication and before validation, in the
        order they were scripted.
        """
        if mode not in _FAIL_MODES:
            raise ValueError(f"mode must be one of {_FAIL_MODES}, not {mode!r}")
        if times < 1:
            raise ValueError("times must be >= 1")
        failure = _Failure(
            http_status=http_status,
            code=code if code is not None else _default_code(http_status),
            remaining=times,
            to=to,
            mode=mode,
            hang_seconds=hang_seconds,
        )
        with self._lock:
            self._failures.append(failure)

    def opt_out(self, number: str) -> None:
        """Make later creates to ``number`` answer 400 / 21610, as Twilio does after STOP."""
        with self._lock:
            self._opted_out.add(number)

    def opt_in(self, number: str) -> None:
        """Undo :meth:`opt_out` (the recipient replied START)."""
        with self._lock:
            self._opted_out.discard(number)

    def send_status(
        self,
        sid: str,
        status: str,
        error_code: int | None = None,
        *,
        extra: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> Response:
        """POST a signed status callback for message ``sid`` to its ``StatusCallback`` URL.

        Form fields as Twilio sends them: MessageSid, SmsSid, MessageStatus, SmsStatus,
        AccountSid, From, To, ApiVersion, MessagingServiceSid (when the message had one),
        ErrorCode (when given) plus ``extra`` (e.g. ``RawDlrDoneDate``, ``ChannelPrefix``).
        ``X-Twilio-Signature`` is ``RequestValidator(auth_token).compute_signature(url,
        params)``. The stored message's status/error code are updated too. Calling it twice,
        or out of order, is allowed on purpose: Twilio does both.
        """
        message = self.get(sid)
        url = message.status_callback
        if not url:
            raise ValueError(f"message {sid} was created without a StatusCallback")
        params: dict[str, str] = {
            "MessageSid": message.sid,
            "SmsSid": message.sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "AccountSid": message.account_sid,
            "From": message.from_ or "",
            "To": message.to,
            "ApiVersion": API_VERSION,
        }
        if message.messaging_service_sid:
            params["MessagingServiceSid"] = message.messaging_service_sid
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        params.update(extra or {})
        with self._lock:
            message.status = status
            message.updated_at = self._clock()
            if error_code is not None:
                message.error_code = error_code
                message.error_message = ERROR_MESSAGES.get(error_code)
        signature = RequestValidator(self.auth_token).compute_signature(url, params)
        with Session() as session:
            session.trust_env = False
            return session.post(
                url,
                data=params,
                headers={
                    "X-Twilio-Signature": signature,
                    "User-Agent": "TwilioProxy/1.1",
                },
                timeout=timeout,
            )

    # ------------------------------------------------------------------ request handling
    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _record_error(self, text: str) -> None:
        with self._lock:
            self._server_errors.append(text)

    def _handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[_Answer, dict[str, list[str]], dict[str, list[str]]]:
        """Route one request; returns the answer plus the parsed query and form."""
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query, keep_blank_values=True)
        form: dict[str, list[str]] = {}
        if method == "POST" and body:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        path = parts.path

        list_match = _LIST_RE.match(path)
        instance_match = _INSTANCE_RE.match(path)
        routed = (method in ("GET", "POST") and list_match) or (method == "GET" and instance_match)
        if not routed:
            return self._not_found(path), query, form
        if not self._authorised(headers.get("authorization", "")):
            return (
                _Answer(
                    401,
                    _error_body(401, 20003),
                    {"WWW-Authenticate": 'Basic realm="Twilio API"'},
                ),
                query,
                form,
            )
        match = list_match or instance_match
        assert match is not None
        if match.group(1) != self.account_sid:
            return self._not_found(path), query, form
        if instance_match:
            return self._fetch(instance_match.group(2), path), query, form
        if method == "GET":
            return self._list(query), query, form
        return self._create(form), query, form

    def _authorised(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, _, password = decoded.partition(":")
        return user == self.account_sid and password == self.auth_token

    @staticmethod
    def _not_found(path: str) -> _Answer:
        return _Answer(404, _error_body(404, 20404, f"The requested resource {path} was not found"))

    def _fetch(self, sid: str, path: str) -> _Answer:
        try:
            message = self.get(sid)
        except KeyError:
            return self._not_found(path)
        return _Answer(200, message.to_json())

    def _take_failure(self, to: str | None) -> _Failure | None:
        with self._lock:
            for failure in self._failures:
                if failure.to is None or failure.to == to:
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        self._failures.remove(failure)
                    return failure
        return None

    def _create(self, form: dict[str, list[str]]) -> _Answer:
        def first(name: str) -> str | None:
            values = form.get(name)
            return values[0] if values else None

        to = first("To")
        if self.create_delay:
            time.sleep(self.create_delay)
        failure = self._take_failure(to)
        if failure is not None and failure.mode == "error":
            return _Answer(failure.http_status, _error_body(failure.http_status, failure.code))
        if failure is not None and failure.mode == "hang":
            return _Answer(None, hang_seconds=failure.hang_seconds)

        from_ = first("From") or None
        service_sid = first("MessagingServiceSid") or None
        body = first("Body") or ""
        media_urls = [url for url in form.get("MediaUrl", []) if url]
        content_sid = first("ContentSid") or None
        content_variables = first("ContentVariables")
        status_callback = first("StatusCallback") or None

        def bad(code: int, message: str | None = None) -> _Answer:
            return _Answer(400, _error_body(400, code, message))

        if not to:
            return bad(21604)
        if not _TO_RE.match(to):
            return bad(21211, f"The 'To' number {to} is not a valid phone number.")
        if not from_ and not service_sid:
            return bad(21603)
        if from_ and not (_FROM_NUMBER_RE.match(from_) or _ALPHA_SENDER_RE.match(from_)):
            return bad(
                21212,
                f"The 'From' number {from_} is not a valid phone number, shortcode, "
                "or alphanumeric sender ID.",
            )
        if service_sid and not _MESSAGING_SERVICE_RE.match(service_sid):
            return bad(21701, f"The Messaging Service Sid {service_sid} is invalid.")
        if from_ and from_.startswith("whatsapp:") != to.startswith("whatsapp:"):
            return bad(21910)
        if not body and not media_urls and not content_sid:
            return bad(21602)
        if len(body) > MAX_BODY_CHARS:
            return bad(21617)
        if any(not re.match(r"^https?://[^/\s]+", url) for url in media_urls):
            return bad(21620)
        if status_callback and not re.match(r"^https?://[^/\s]+", status_callback):
            return bad(21609)
        if content_variables is not None:
            try:
                decoded = json.loads(content_variables)
            except ValueError:
                decoded = None
            if not isinstance(decoded, dict):
                return bad(21656)
        with self._lock:
            opted_out = to in self._opted_out
        if opted_out:
            return bad(21610)

        now = self._clock().replace(microsecond=0)  # Twilio timestamps have 1 s resolution
        if service_sid:
            status = "scheduled" if first("ScheduleType") == "fixed" else "accepted"
        else:
            status = "queued"
        message = StoredMessage(
            sid="SM" + uuid.uuid4().hex,
            account_sid=self.account_sid,
            to=to,
            from_=from_,
            body=body,
            status=status,
            messaging_service_sid=service_sid,
            status_callback=status_callback,
            content_sid=content_sid,
            content_variables=content_variables,
            media_urls=media_urls,
            num_segments=count_segments(body),
            created_at=now,
            updated_at=now,
            params={key: list(values) for key, values in form.items()},
        )
        with self._lock:
            self._messages.append(message)
        if failure is not None:  # accept_then_drop
            return _Answer(None)
        return _Answer(201, message.to_json())

    def _list(self, query: dict[str, list[str]]) -> _Answer:
        def first(name: str) -> str | None:
            values = query.get(name)
            return values[0] if values else None

        def bad(name: str) -> _Answer:
            return _Answer(400, _error_body(400, 20001, f"Invalid value for {name}"))

        try:
            page_size = int(first("PageSize") or 50)
            page = int(first("Page") or 0)
        except ValueError:
            return bad("PageSize/Page")
        if not 1 <= page_size <= 1000 or page < 0:
            return bad("PageSize/Page")

        predicates: list[Callable[[StoredMessage], bool]] = []
        to, from_ = first("To"), first("From")
        if to:
            predicates.append(lambda m: m.to == to)
        if from_:
            predicates.append(lambda m: m.from_ == from_)
        for key, values in query.items():
            if not key.startswith("DateSent"):
                continue
            for value in values:
                predicate = _date_predicate(key, value)
                if predicate is None:
                    return bad(key)
                predicates.append(predicate)

        with self._lock:
            indexed = list(enumerate(self._messages))
        indexed.sort(key=lambda pair: (pair[1].created_at, pair[0]), reverse=True)
        matching = [m for _, m in indexed if all(p(m) for p in predicates)]
        chunk = matching[page * page_size : (page + 1) * page_size]

        filters = [
            (key, value)
            for key, values in query.items()
            if key not in ("Page", "PageSize", "PageToken")
            for value in values
        ]
        list_path = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages.json"

        def page_uri(number: int) -> str:
            pairs = [*filters, ("PageSize", str(page_size)), ("Page", str(number))]
            return f"{list_path}?{urlencode(pairs)}"

        has_next = (page + 1) * page_size < len(matching)
        start = page * page_size
        return _Answer(
            200,
            {
                "end": start + max(len(chunk) - 1, 0),
                "first_page_uri": page_uri(0),
                "messages": [m.to_json() for m in chunk],
                "next_page_uri": page_uri(page + 1) if has_next else None,
                "page": page,
                "page_size": page_size,
                "previous_page_uri": page_uri(page - 1) if page > 0 else None,
                "start": start,
                "uri": page_uri(page),
            },
        )

    def _hang(self, connection: socket.socket, seconds: float) -> None:
        """Hold the connection unanswered until the peer leaves, ``seconds`` pass, or stop()."""
        deadline = threading.Event()
        timer = threading.Timer(seconds, deadline.set)
        timer.daemon = True
        timer.start()
        try:
            while not deadline.is_set() and not self._stopping.is_set():
                readable, _, _ = select.select([connection], [], [], 0.05)
                if readable:
                    try:
                        if not connection.recv(1, socket.MSG_PEEK):
                            return  # client closed its end: it gave up
                    except OSError:
                        return
                    # Unexpected extra bytes from the client: keep holding.
                    self._stopping.wait(0.05)
        finally:
            timer.cancel()


def _date_predicate(key: str, value: str) -> Callable[[StoredMessage], bool] | None:
    """Build the filter for one ``DateSent…`` query parameter, or None if it is malformed.

    Accepts Twilio's documented spellings (``DateSent=YYYY-MM-DD``, ``DateSent>=…``,
    ``DateSent<=…``, which a raw query string parses as key ``DateSent>`` / ``DateSent<``) and
    what twilio-python sends (``DateSent>`` = ``YYYY-MM-DDTHH:MM:SSZ``). Bounds are inclusive.
    """
    operator = key[len("DateSent") :]
    stripped = value.lstrip("<>=")
    operator += value[: len(value) - len(stripped)]
    if operator.strip("<>=") or ("<" in operator and ">" in operator):
        return None
    match = _DATE_RE.match(stripped.strip())
    if not match:
        return None
    day_text, time_text, _zone = match.groups()
    try:
        day = date.fromisoformat(day_text)
        moment = (
            datetime.fromisoformat(f"{day_text}T{time_text}").replace(tzinfo=UTC)
            if time_text
            else None
        )
    except ValueError:
        return None

    def sent(message: StoredMessage) -> datetime:
        return message.created_at.astimezone(UTC)

    if ">" in operator:
        if moment is not None:
            return lambda m: sent(m) >= moment
        return lambda m: sent(m).date() >= day
    if "<" in operator:
        if moment is not None:
            return lambda m: sent(m) <= moment
        return lambda m: sent(m).date() <= day
    return lambda m: sent(m).date() == day


def _make_handler(standin: TwilioStandIn) -> type[BaseHTTPRequestHandler]:
    """Build the request-handler class bound to ``standin``."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "TwilioStandIn/1.0"
        sys_version = ""
        # Keep-alive, as Twilio's API does: a client may send request after request on one
        # connection (the handler closes it only when the client asks, or to drop or hang).
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart

        def log_message(self, format: str, *args: Any) -> None:
            """Silence the default per-request stderr logging."""

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def do_PATCH(self) -> None:
            self._serve("PATCH")

        def _serve(self, method: str) -> None:
            received_at = datetime.now(UTC)
            headers = {key.lower(): value for key, value in self.headers.items()}
            length = int(headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            query: dict[str, list[str]] = {}
            form: dict[str, list[str]] = {}
            try:
                answer, query, form = standin._handle(method, self.path, headers, body)
            except Exception:
                standin._record_error(traceback.format_exc())
                answer = _Answer(500, _error_body(500, 20500))
            standin._record(
                RecordedRequest(
                    method=method,
                    path=urlsplit(self.path).path,
                    query=query,
                    form=form,
                    headers=headers,
                    status=answer.status,
                    received_at=received_at,
                )
            )
            if answer.status is None:
                self.close_connection = True
                if answer.hang_seconds > 0:
                    standin._hang(self.connection, answer.hang_seconds)
                return  # close without a response
            payload = json.dumps(answer.body).encode("utf-8")
            with contextlib.suppress(OSError):
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Twilio-Request-Id", "RQ" + uuid.uuid4().hex)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

    return Handler
