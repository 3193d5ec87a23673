"""The Twilio stand-in, exercised through the real ``twilio`` library (and raw HTTP where the
library cannot express the request)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

try:  # tests/ is a plain directory today; keep working if it becomes a package.
    from tests.twilio_standin import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, TwilioStandIn
except ImportError:  # pragma: no cover - depends on how pytest put tests/ on sys.path
    from twilio_standin import (
        DEFAULT_ACCOUNT_SID,
        DEFAULT_AUTH_TOKEN,
        TwilioStandIn,
    )

PARENT = "+447700900123"
OTHER_PARENT = "+447700900456"
SENDER = "+447700900001"
WA_PARENT = "whatsapp:" + PARENT
WA_SENDER = "whatsapp:" + SENDER
SERVICE_SID = "MG" + "1" * 32


@pytest.fixture
def standin() -> Iterator[TwilioStandIn]:
    with TwilioStandIn() as running:
        yield running
    assert running.server_errors == []


@pytest.fixture
def client(standin: TwilioStandIn) -> Client:
    return standin.client()


def raw_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.auth = (DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)
    return session


# --------------------------------------------------------------------------- create


def test_create_is_accepted_and_recorded(standin: TwilioStandIn, client: Client) -> None:
    message = client.messages.create(to=PARENT, from_=SENDER, body="Hello from BraveSteps")

    assert re.fullmatch(r"SM[0-9a-f]{32}", message.sid or "")
    assert message.status == "queued"
    assert (message.to, message.from_, message.body) == (PARENT, SENDER, "Hello from BraveSteps")
    assert message.account_sid == DEFAULT_ACCOUNT_SID
    assert message.num_segments == "1"
    assert message.num_media == "0"
    assert message.direction == "outbound-api"
    assert message.api_version == "2010-04-01"
    assert message.error_code is None and message.error_message is None and message.price is None
    assert message.messaging_service_sid is None
    assert isinstance(message.date_created, datetime)
    assert message.date_created.tzinfo is not None
    assert message.uri == f"/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages/{message.sid}.json"
    assert set(message.subresource_uris or {}) == {"media", "feedback"}

    [stored] = standin.messages
    assert stored.sid == message.sid
    assert (stored.to, stored.from_, stored.body, stored.status) == (
        PARENT,
        SENDER,
        "Hello from BraveSteps",
        "queued",
    )
    assert stored.created_at.tzinfo is not None
    assert stored.created_at.replace(tzinfo=UTC) == message.date_created
    assert standin.sent_to(PARENT) == [stored]
    assert standin.sent_to(OTHER_PARENT) == []

    [request] = standin.requests
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages.json"
    assert request.status == 201
    assert request.param("Body") == "Hello from BraveSteps"
    assert request.headers["user-agent"].startswith("twilio-python/")


def test_media_status_callback_and_template_fields_are_recorded(
    standin: TwilioStandIn, client: Client
) -> None:
    media = ["https://cdn.example.org/a.png", "https://cdn.example.org/b.mp3"]
    message = client.messages.create(
        to=WA_PARENT,
        from_=WA_SENDER,
        body="Look at this",
        media_url=media,
        status_callback="https://bravesteps.example.org/twilio/status?x=1",
    )
    assert message.num_media == "2"
    template = client.messages.create(
        to=WA_PARENT,
        messaging_service_sid=SERVICE_SID,
        content_sid="HX" + "a" * 32,
        content_variables=json.dumps({"1": "Sam"}),
    )
    assert template.status == "accepted"
    assert template.from_ is None
    assert template.messaging_service_sid == SERVICE_SID
    assert template.num_segments == "0"

    first, second = standin.sent_to(WA_PARENT)
    assert first.media_urls == media
    assert first.status_callback == "https://bravesteps.example.org/twilio/status?x=1"
    assert first.params["MediaUrl"] == media
    assert second.content_sid == "HX" + "a" * 32
    assert second.content_variables_dict == {"1": "Sam"}
    assert second.messaging_service_sid == SERVICE_SID
    assert second.media_urls == []


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        pytest.param("a" * 160, "1", id="gsm-160"),
        pytest.param("a" * 161, "2", id="gsm-161"),
        pytest.param("’" + "a" * 69, "1", id="ucs2-70"),
        pytest.param("’" + "a" * 70, "2", id="ucs2-71"),
    ],
)
def test_num_segments_follows_twilio_counting(client: Client, body: str, segments: str) -> None:
    assert client.messages.create(to=PARENT, from_=SENDER, body=body).num_segments == segments


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize(
    ("http_status", "code", "expected_code"),
    [
        pytest.param(429, 20429, 20429, id="rate-limited"),
        pytest.param(500, None, 20500, id="server-error-default-code"),
        pytest.param(400, 21610, 21610, id="unsubscribed"),
        pytest.param(400, 21211, 21211, id="invalid-to"),
        pytest.param(400, 63016, 63016, id="outside-whatsapp-window"),
        pytest.param(400, 21614, 21614, id="not-mobile"),
    ],
)
def test_scripted_errors_raise_twilio_rest_exception(
    standin: TwilioStandIn,
    client: Client,
    http_status: int,
    code: int | None,
    expected_code: int,
) -> None:
    standin.fail_next(http_status=http_status, code=code)

    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to=PARENT, from_=SENDER, body="Hi")
    assert caught.value.status == http_status
    assert caught.value.code == expected_code
    assert standin.messages == []
    assert standin.requests[-1].status == http_status

    # times=1: the very next create succeeds.
    client.messages.create(to=PARENT, from_=SENDER, body="Hi again")
    assert [m.body for m in standin.messages] == ["Hi again"]


def test_error_body_is_twilio_shaped(standin: TwilioStandIn) -> None:
    standin.fail_next(http_status=400, code=63016)
    with raw_session() as session:
        response = session.post(
            f"{standin.base_url}/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages.json",
            data={"To": WA_PARENT, "From": WA_SENDER, "Body": "Hi"},
        )
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == 63016
    assert body["status"] == 400
    assert body["more_info"] == "https://www.twilio.com/docs/errors/63016"
    assert "outside the allowed window" in body["message"]


def test_fail_next_times_and_recipient_filter(standin: TwilioStandIn, client: Client) -> None:
    standin.fail_next(http_status=429, times=2, to=PARENT)

    client.messages.create(to=OTHER_PARENT, from_=SENDER, body="unaffected")
    for _ in range(2):
        with pytest.raises(TwilioRestException) as caught:
            client.messages.create(to=PARENT, from_=SENDER, body="retry me")
        assert caught.value.code == 20429
    client.messages.create(to=PARENT, from_=SENDER, body="third time lucky")

    assert [m.body for m in standin.messages] == ["unaffected", "third time lucky"]
    assert [r.status for r in standin.requests] == [201, 429, 429, 201]


def test_opt_out_answers_21610_until_opt_in(standin: TwilioStandIn, client: Client) -> None:
    standin.opt_out(PARENT)

    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to=PARENT, from_=SENDER, body="weekly step")
    assert (caught.value.status, caught.value.code) == (400, 21610)
    client.messages.create(to=OTHER_PARENT, from_=SENDER, body="still allowed")

    standin.opt_in(PARENT)
    client.messages.create(to=PARENT, from_=SENDER, body="welcome back")
    assert [m.to for m in standin.messages] == [OTHER_PARENT, PARENT]


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        pytest.param({"to": "07700900123", "from_": SENDER, "body": "x"}, 21211, id="to-not-e164"),
        pytest.param({"to": "+44", "from_": SENDER, "body": "x"}, 21211, id="to-too-short"),
        pytest.param({"to": PARENT, "body": "x"}, 21603, id="no-from"),
        pytest.param({"to": PARENT, "from_": "not a sender!", "body": "x"}, 21212, id="bad-from"),
        pytest.param({"to": WA_PARENT, "from_": SENDER, "body": "x"}, 21910, id="channel-mix"),
        pytest.param({"to": PARENT, "from_": SENDER}, 21602, id="nothing-to-send"),
        pytest.param({"to": PARENT, "from_": SENDER, "body": "a" * 1601}, 21617, id="too-long"),
        pytest.param(
            {"to": PARENT, "from_": SENDER, "content_sid": "HX1", "content_variables": "[1]"},
            21656,
            id="content-variables-not-object",
        ),
        pytest.param(
            {"to": PARENT, "from_": SENDER, "media_url": ["ftp://x/y.png"]},
            21620,
            id="bad-media-url",
        ),
    ],
)
def test_validation_like_twilio(
    standin: TwilioStandIn, client: Client, kwargs: dict[str, Any], code: int
) -> None:
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(**kwargs)
    assert (caught.value.status, caught.value.code) == (400, code)
    assert standin.messages == []


def test_alphanumeric_sender_and_1600_chars_are_fine(client: Client) -> None:
    message = client.messages.create(to=PARENT, from_="BraveSteps", body="a" * 1600)
    assert message.num_segments == "11"


def test_missing_to_answers_21604(standin: TwilioStandIn) -> None:
    # The library always sends To, so use raw HTTP.
    with raw_session() as session:
        response = session.post(
            f"{standin.base_url}/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages.json",
            data={"From": SENDER, "Body": "Hi"},
        )
    assert response.status_code == 400
    assert response.json()["code"] == 21604


def test_bad_auth_is_401(standin: TwilioStandIn) -> None:
    wrong = standin.attach(Client(DEFAULT_ACCOUNT_SID, "not-the-token"))
    with pytest.raises(TwilioRestException) as caught:
        wrong.messages.create(to=PARENT, from_=SENDER, body="Hi")
    assert (caught.value.status, caught.value.code) == (401, 20003)
    assert standin.messages == []
    assert standin.requests[-1].status == 401


def test_other_account_in_path_is_404(standin: TwilioStandIn) -> None:
    other = standin.attach(
        Client(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, account_sid="AC" + "9" * 32)
    )
    with pytest.raises(TwilioRestException) as caught:
        other.messages.create(to=PARENT, from_=SENDER, body="Hi")
    assert (caught.value.status, caught.value.code) == (404, 20404)
    assert standin.messages == []


def test_unknown_routes_are_twilio_style_404(standin: TwilioStandIn) -> None:
    with raw_session() as session:
        response = session.get(f"{standin.base_url}/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}.json")
        deleted = session.delete(
            f"{standin.base_url}/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages.json"
        )
    assert response.status_code == 404
    assert response.json()["code"] == 20404
    assert response.json()["more_info"] == "https://www.twilio.com/docs/errors/20404"
    assert deleted.status_code == 404


# --------------------------------------------------------------------------- fetch / list


def test_fetch_known_and_unknown(standin: TwilioStandIn, client: Client) -> None:
    created = client.messages.create(to=PARENT, from_=SENDER, body="fetch me")

    fetched = client.messages(created.sid).fetch()
    assert (fetched.sid, fetched.body, fetched.status) == (created.sid, "fetch me", "queued")

    with pytest.raises(TwilioRestException) as caught:
        client.messages("SM" + "f" * 32).fetch()
    assert (caught.value.status, caught.value.code) == (404, 20404)


class _Clock:
    """A settable clock for the stand-in, so date filters need no sleeping."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_list_filters_by_to_and_date_sent(standin: TwilioStandIn, client: Client) -> None:
    clock = _Clock(datetime(2024, 3, 1, 9, 0, tzinfo=UTC))
    standin.set_clock(clock)
    sids: dict[str, str] = {}
    for day, to in [(1, PARENT), (5, OTHER_PARENT), (5, PARENT), (10, PARENT)]:
        clock.now = datetime(2024, 3, day, 9, 0, tzinfo=UTC)
        sids[f"{day}-{to}"] = client.messages.create(to=to, from_=SENDER, body=f"d{day}").sid or ""

    newest_first = [m.sid for m in client.messages.list(to=PARENT)]
    assert newest_first == [sids[f"{d}-{PARENT}"] for d in (10, 5, 1)]

    after = client.messages.list(to=PARENT, date_sent_after=datetime(2024, 3, 5, tzinfo=UTC))
    assert [m.body for m in after] == ["d10", "d5"]

    before = client.messages.list(date_sent_before=datetime(2024, 3, 5, 9, 0, tzinfo=UTC))
    assert [m.body for m in before] == ["d5", "d5", "d1"]

    on_day = client.messages.list(date_sent=datetime(2024, 3, 5, 12, 0, tzinfo=UTC))
    assert {m.to for m in on_day} == {PARENT, OTHER_PARENT}

    assert client.messages.list(from_="+447700900999") == []
    assert client.messages.list(date_sent_after=datetime(2024, 3, 11, tzinfo=UTC)) == []
    assert client.messages.list(to=PARENT, date_sent_after=datetime(2024, 3, 10, 9, 0, 0)) != []


def test_list_accepts_documented_raw_date_syntax(standin: TwilioStandIn, client: Client) -> None:
    clock = _Clock(datetime(2024, 3, 1, 9, 0, tzinfo=UTC))
    standin.set_clock(clock)
    client.messages.create(to=PARENT, from_=SENDER, body="early")
    clock.now = datetime(2024, 3, 7, 9, 0, tzinfo=UTC)
    client.messages.create(to=PARENT, from_=SENDER, body="late")

    url = f"{standin.base_url}/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages.json"
    with raw_session() as session:
        after = session.get(url + "?DateSent>=2024-03-05").json()
        before = session.get(url + "?DateSent<=2024-03-05").json()
        exact = session.get(url + "?DateSent=2024-03-01").json()
        bad = session.get(url + "?DateSent>=yesterday")
    assert [m["body"] for m in after["messages"]] == ["late"]
    assert [m["body"] for m in before["messages"]] == ["early"]
    assert [m["body"] for m in exact["messages"]] == ["early"]
    assert after["next_page_uri"] is None
    assert after["page"] == 0 and after["page_size"] == 50 and after["start"] == 0
    assert bad.status_code == 400


def test_list_pages_through_the_real_library(standin: TwilioStandIn, client: Client) -> None:
    for n in range(5):
        client.messages.create(to=PARENT, from_=SENDER, body=f"m{n}")

    listed = client.messages.list(to=PARENT, page_size=2)
    assert [m.body for m in listed] == ["m4", "m3", "m2", "m1", "m0"]
    pages = [r.param("Page") for r in standin.requests if r.method == "GET"]
    assert pages == [None, "1", "2"]

    assert len(client.messages.list(limit=3)) == 3


# --------------------------------------------------------------------------- transport failures


def test_hang_makes_a_short_timeout_client_raise_and_stores_nothing(
    standin: TwilioStandIn,
) -> None:
    impatient = standin.client(http_client=TwilioHttpClient(timeout=0.5))
    standin.fail_next(mode="hang")

    started = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        impatient.messages.create(to=PARENT, from_=SENDER, body="are you there?")
    assert time.monotonic() - started < 4  # the client gave up, not the 5 s hang bound

    assert standin.messages == []
    [request] = standin.requests
    assert request.status is None
    assert request.param("Body") == "are you there?"

    # The failure was used up; the same client now succeeds.
    impatient.messages.create(to=PARENT, from_=SENDER, body="ok")
    assert [m.body for m in standin.messages] == ["ok"]


def test_accept_then_drop_stores_the_message_but_the_client_raises(
    standin: TwilioStandIn, client: Client
) -> None:
    standin.fail_next(mode="accept_then_drop", to=PARENT)

    with pytest.raises(requests.exceptions.ConnectionError):
        client.messages.create(to=PARENT, from_=SENDER, body="did it go?")

    [stored] = standin.messages
    assert stored.body == "did it go?"
    assert standin.requests[-1].status is None
    # A reconciliation job can find it afterwards.
    [found] = client.messages.list(to=PARENT)
    assert found.sid == stored.sid


def test_fail_next_rejects_unknown_mode(standin: TwilioStandIn) -> None:
    with pytest.raises(ValueError):
        standin.fail_next(mode="explode")


# --------------------------------------------------------------------------- status callbacks


class _Receiver:
    """A tiny local webhook receiver that records what it was sent."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], dict[str, list[str]]]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                form = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
                received.append((self.path, dict(self.headers.items()), form))
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    running = _Receiver()
    yield running
    running.close()


def test_send_status_posts_a_signed_callback(
    standin: TwilioStandIn, client: Client, receiver: _Receiver
) -> None:
    callback = f"{receiver.url}/twilio/status?parent=42&x=a%20b"
    message = client.messages.create(to=PARENT, from_=SENDER, body="Hi", status_callback=callback)

    response = standin.send_status(message.sid or "", "delivered")
    assert response.status_code == 204
    failed = standin.send_status(message.sid or "", "undelivered", error_code=30003)
    assert failed.status_code == 204

    (path1, headers1, form1), (_, headers2, form2) = receiver.received
    assert path1 == "/twilio/status?parent=42&x=a%20b"
    flat1 = {k: v[0] for k, v in form1.items()}
    assert flat1 == {
        "MessageSid": message.sid,
        "SmsSid": message.sid,
        "MessageStatus": "delivered",
        "SmsStatus": "delivered",
        "AccountSid": DEFAULT_ACCOUNT_SID,
        "From": SENDER,
        "To": PARENT,
        "ApiVersion": "2010-04-01",
    }
    flat2 = {k: v[0] for k, v in form2.items()}
    assert flat2["MessageStatus"] == "undelivered"
    assert flat2["ErrorCode"] == "30003"

    validator = RequestValidator(DEFAULT_AUTH_TOKEN)
    assert validator.validate(callback, flat1, headers1["X-Twilio-Signature"])
    assert validator.validate(callback, flat2, headers2["X-Twilio-Signature"])
    assert not validator.validate(callback, flat2, headers1["X-Twilio-Signature"])
    assert not RequestValidator("wrong-token").validate(
        callback, flat1, headers1["X-Twilio-Signature"]
    )

    # The stand-in's own record follows the callbacks.
    fetched = client.messages(message.sid).fetch()
    assert (fetched.status, fetched.error_code) == ("undelivered", 30003)


def test_send_status_needs_a_callback_url(standin: TwilioStandIn, client: Client) -> None:
    message = client.messages.create(to=PARENT, from_=SENDER, body="no callback")
    with pytest.raises(ValueError):
        standin.send_status(message.sid or "", "delivered")
    with pytest.raises(KeyError):
        standin.send_status("SM" + "0" * 32, "delivered")


def test_stop_closes_the_port() -> None:
    standin = TwilioStandIn().start()
    url = standin.base_url
    standin.stop()
    standin.stop()  # idempotent
    with raw_session() as session, pytest.raises(requests.exceptions.ConnectionError):
        session.get(url + "/", timeout=2)
