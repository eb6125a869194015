"""A local Twilio REST API (Messages resource) for the official client with `client.api.base_url = fake.url`.

Answers `POST/GET /2010-04-01/Accounts/{AccountSid}/Messages.json` and `GET .../Messages/{Sid}.json` with
Twilio's JSON shapes and error codes, checks HTTP Basic auth, records every request, and injects failures
and latency. For setup checks (`nps doctor`) it also answers `GET /2010-04-01/Accounts/{AccountSid}.json` (the
account), `GET .../IncomingPhoneNumbers.json?PhoneNumber=...` (numbers given to `add_phone_number`) and the
Messaging domain's `GET /v1/Services/{Sid}` (services given to `add_messaging_service`).

Pointing twilio-python 9.x at it (checked against twilio/base/domain.py and client_base.py): every Messages
call builds its URL as `client.api.base_url.strip("/") + "/2010-04-01/Accounts/..."` at request time, so

    client = Client(account_sid, auth_token)
    client.api.base_url = "http://127.0.0.1:PORT"   # TWILIO_API_URL, no path, no trailing slash needed
    client.edge = client.region = None               # see below
    client.messages.create(to=..., from_=..., body=..., status_callback=...)

works for the sync client and for `Client(..., http_client=AsyncTwilioHttpClient())` + `create_async`.
`ClientBase.get_hostname` rewrites the host of every URL when an edge or region is set (constructor arguments
or the TWILIO_EDGE / TWILIO_REGION environment variables), turning 127.0.0.1 into nonsense: clear both.
Only the `api` domain (api.twilio.com) is redirected; other domains (lookups, verify...) keep their hosts.
`FakeTwilio.client()` does all of this. Errors come back as `TwilioRestException` with `.status` (HTTP) and
`.code` (Twilio's code: 21610, 21211, 21614, 20003 bad credentials, 20404, 20429 for 429, 20500 for 500).

What Twilio stores is not always what was posted: `store_bodies_as` turns on Smart Encoding (a Messaging
Service setting that swaps curly quotes, dashes, ellipses and odd spaces for GSM-7 characters, per Twilio's
published character list, but only when the whole text then fits GSM-7) and appends a footer (opt-out text),
so the list and fetch APIs return a body that differs from the one sent. `use_clock` dates new messages by the
test's clock instead of the wall clock, as Twilio's `date_created` follows real time next to the app's.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from twilio.http import HttpClient
from twilio.rest import Client

from tests.standins._server import IncomingRequest, RecordedRequest, Reply, StandinHTTPServer, parse_body

API_VERSION = "2010-04-01"
DEFAULT_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
DEFAULT_AUTH_TOKEN = "test-auth-token-0123456789abcdef"
SEND = "messages.create"
"""`RecordedRequest.method` of a send; fetches are "messages.fetch", listings "messages.list"."""

ERRORS: dict[int, tuple[int, str]] = {
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "Internal Server Error"),
    20503: (503, "Service Unavailable"),
    21211: (400, "Invalid 'To' Phone Number"),
    21408: (
        400,
        "Permission to send an SMS has not been enabled for the region indicated by the 'To' number",
    ),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' phone number is required."),
    21604: (400, "A 'To' phone number is required."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21612: (400, "The 'To' phone number is not currently reachable via SMS"),
    21614: (400, "'To' number is not a valid mobile number"),
}
"""Twilio error code -> (HTTP status, message)."""
_HTTP_ALIASES = {429: 20429, 500: 20500, 503: 20503}
_PATH = re.compile(rf"/{API_VERSION}/Accounts/(?P<account>[^/]+)/Messages(?:/(?P<sid>[^/]+))?\.json")
_ACCOUNT = re.compile(rf"/{API_VERSION}/Accounts/(?P<account>[^/]+)\.json")
_NUMBERS = re.compile(rf"/{API_VERSION}/Accounts/(?P<account>[^/]+)/IncomingPhoneNumbers\.json")
_SERVICE = re.compile(r"/v1/Services/(?P<sid>[^/]+)")
_E164 = re.compile(r"(whatsapp:)?\+[1-9]\d{6,14}")

# Part of Twilio's "List of characters replaced by Smart Encoding" (twilio.com/docs/messaging/services/
# smart-encoding-char-list): quotation marks, dashes, the ellipsis and Unicode spaces.
_SMART_ENCODING = {
    **dict.fromkeys("\u00ab\u00bb\u201c\u201d\u02ba\u02ee\u201f\u275d\u275e\u301d\u301e\uff02", '"'),
    **dict.fromkeys("\u2018\u2019\u02bb\u02c8\u02bc\u02bd\u02b9\u201b\uff07\u00b4\u02ca\u0060\u02cb", "'"),
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2043\u2212\ufe58\ufe63\uff0d", "-"),
    "\u2026": "...",
    **dict.fromkeys(
        "\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000", " "
    ),
}
# The GSM 03.38 default alphabet and its extension table: Smart Encoding applies only if the result fits it.
_GSM7 = frozenset(
    "@\u00a3$\u00a5\u00e8\u00e9\u00f9\u00ec\u00f2\u00c7\n\u00d8\u00f8\r\u00c5\u00e5\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039e"
    "\u00c6\u00e6\u00df\u00c9 !\"#\u00a4%&'()*+,-./0123456789:;<=>?\u00a1ABCDEFGHIJKLMNOPQRSTUVWXYZ\u00c4\u00d6\u00d1\u00dc\u00a7\u00bf"
    "abcdefghijklmnopqrstuvwxyz\u00e4\u00f6\u00f1\u00fc\u00e0\f^{}\\[~]|\u20ac"
)


def smart_encoded(body: str) -> str:
    """`body` as Twilio's Smart Encoding stores it: transliterated when the result is all GSM-7, else unchanged."""
    encoded = "".join(_SMART_ENCODING.get(char, char) for char in body)
    return encoded if set(encoded) <= _GSM7 else body


def error_reply(code: int) -> tuple[int, dict[str, Any]]:
    """Twilio's error JSON for `code` (429/500/503 mean 20429/20500/20503) and its HTTP status.

    Another HTTP 5xx (502, 504) is what an edge or proxy in front of Twilio answers: that status, no Twilio code.
    """
    if 500 <= code < 600 and code not in _HTTP_ALIASES:
        return code, {
            "code": None,
            "message": f"HTTP {code} from the edge",
            "more_info": None,
            "status": code,
        }
    code = _HTTP_ALIASES.get(code, code)
    status, message = ERRORS.get(code, (400, f"Twilio error {code}"))
    more_info = f"https://www.twilio.com/docs/errors/{code}"
    return status, {"code": code, "message": message, "more_info": more_info, "status": status}


def num_segments(body: str) -> int:
    """SMS segment count: 160/153 chars for ASCII (approximating GSM-7), 70/67 otherwise (UCS-2)."""
    single, multi = (160, 153) if body.isascii() else (70, 67)
    return 1 if len(body) <= single else -(-len(body) // multi)


@dataclass(frozen=True)
class SentMessage:
    """A successful send as the fake stored it (status reflects `set_status`)."""

    sid: str
    to: str
    from_: str | None
    body: str
    status_callback: str | None
    messaging_service_sid: str | None
    status: str
    error_code: int | None


@dataclass(frozen=True)
class _Fault:
    code: int
    to: str | None
    accepted: bool = False  # the message is stored (and will be delivered) although the answer is the error


class FakeTwilio(StandinHTTPServer):
    """Twilio Messages API stand-in checking HTTP Basic auth against `account_sid:auth_token`."""

    def __init__(self, account_sid: str = DEFAULT_ACCOUNT_SID, auth_token: str = DEFAULT_AUTH_TOKEN) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self._init_state()

    def _init_state(self) -> None:
        self._stored: dict[str, dict[str, Any]] = {}
        self._callbacks: dict[str, str | None] = {}
        self._faults: list[_Fault] = []
        self._permanent: dict[str, int] = {}
        self._latency = 0.0
        self._smart_encoding = False
        self._footer = ""
        self._clock: Callable[[], datetime] | None = None
        self._numbers: dict[str, dict[str, Any]] = {}
        self._services: dict[str, dict[str, Any]] = {}

    @property
    def url(self) -> str:
        """Value for `client.api.base_url`: "http://127.0.0.1:PORT" (no trailing slash)."""
        return self.base_url

    def client(self, auth_token: str | None = None, http_client: HttpClient | None = None) -> Client:
        """The official client aimed at this fake, as app code should build it (edge/region cleared)."""
        client = Client(self.account_sid, auth_token or self.auth_token, http_client=http_client)
        client.api.base_url = client.messaging.base_url = self.url
        client.edge = client.region = None
        return client

    # test controls -------------------------------------------------------------------------------
    def fail_next(self, code: int = 21610, times: int = 1, to: str | None = None) -> None:
        """Fail the next `times` sends (to anyone, or only those to `to`) with Twilio error `code`."""
        with self._cond:
            self._faults.extend(_Fault(code, to) for _ in range(times))

    def accept_then_fail_next(self, code: int = 500, times: int = 1, to: str | None = None) -> None:
        """Accept the next `times` sends, then answer them with error `code` anyway.

        What an edge or proxy 5xx looks like from outside: Twilio took the message (it is in the message log and
        goes out) but the answer says it failed. A sender that resends on such an answer texts the person twice.
        """
        with self._cond:
            self._faults.extend(_Fault(code, to, accepted=True) for _ in range(times))

    def fail_to(self, number: str, code: int = 21610) -> None:
        """Fail every send to `number` with `code` until reset()."""
        with self._cond:
            self._permanent[number] = code

    def set_latency(self, seconds: float) -> None:
        """Delay every send's answer by `seconds` (concurrent sends are delayed in parallel)."""
        with self._cond:
            self._latency = seconds

    def store_bodies_as(self, *, smart_encoding: bool = False, footer: str = "") -> None:
        """Store the bodies of later sends as Twilio would with Smart Encoding on and/or `footer` appended.

        The sender's answer and the list/fetch APIs then carry the stored body, not the one posted.
        """
        with self._cond:
            self._smart_encoding, self._footer = smart_encoding, footer

    def use_clock(self, now: Callable[[], datetime] | None) -> None:
        """Date new messages (`date_created`) by `now()` instead of the wall clock; None for the wall clock."""
        with self._cond:
            self._clock = now

    def set_status(self, sid: str, status: str, error_code: int | None = None) -> None:
        """Move a stored message to `status` (e.g. "delivered", "undelivered" with 30003)."""
        with self._cond:
            resource = self._stored[sid]
            resource.update(status=status, error_code=error_code, date_updated=_now(self._clock))

    def add_phone_number(self, number: str, sms_url: str | None = None, sms: bool = True) -> None:
        """An incoming number of the account (E.164), with the webhook Twilio calls for texts it receives."""
        with self._cond:
            self._numbers[number] = {
                "sid": "PN" + uuid.uuid4().hex,
                "account_sid": self.account_sid,
                "phone_number": number,
                "friendly_name": number,
                "sms_url": sms_url or "",
                "sms_method": "POST",
                "capabilities": {"sms": sms, "mms": False, "voice": True, "fax": False},
            }

    def add_messaging_service(
        self, sid: str, inbound_request_url: str | None = None, use_inbound_webhook_on_number: bool = False
    ) -> None:
        """A Messaging Service of the account; its `inbound_request_url` is called for texts to its numbers."""
        with self._cond:
            self._services[sid] = {
                "sid": sid,
                "account_sid": self.account_sid,
                "friendly_name": "NPS surveys",
                "inbound_request_url": inbound_request_url,
                "inbound_method": "POST",
                "use_inbound_webhook_on_number": use_inbound_webhook_on_number,
                "url": f"{self.url}/v1/Services/{sid}",
            }

    def reset(self) -> None:
        """Forget requests, messages, numbers, services, faults, latency, stored-body changes and the clock."""
        with self._cond:
            super().reset()
            self._init_state()

    # assertions ----------------------------------------------------------------------------------
    def messages(self) -> list[SentMessage]:
        """Successful sends, oldest first."""
        with self._cond:
            return [_sent(r, self._callbacks[sid]) for sid, r in self._stored.items()]

    def count(self, successful: bool = False) -> int:
        """How many sends were attempted (or, with successful=True, accepted)."""
        return len(self._select(SEND, successful))

    def wait_for(self, n: int = 1, timeout: float = 5, successful: bool = False) -> list[dict[str, Any]]:
        """Block until `n` sends were attempted (or accepted); return all their form bodies so far.

        Raises AssertionError on timeout.
        """
        return [r.body for r in self._wait(SEND, n, timeout, successful)]

    # HTTP ------------------------------------------------------------------------------------------
    def answer(self, request: IncomingRequest) -> Reply:
        """Authenticate, then route to create / fetch / list (or to the setup resources)."""
        if request.http_method == "GET" and not _PATH.fullmatch(request.path):
            return self._answer_setup(request)
        match = _PATH.fullmatch(request.path)
        body = parse_body(request.headers, request.raw)
        sid = match["sid"] if match else None
        if match is None:
            method = request.path
        elif request.http_method == "POST" and sid is None:
            method = SEND
        else:
            method = "messages.fetch" if sid else "messages.list"
        with self._cond:
            if not self._authorized(request.headers.get("authorization", "")):
                status, payload = error_reply(20003)
                payload["detail"] = "Your AccountSid or AuthToken was incorrect."
            elif match is None or match["account"] != self.account_sid:
                status, payload = error_reply(20404)
            elif method == SEND:
                status, payload = self._create(body)
            elif sid:
                status, payload = (200, self._stored[sid]) if sid in self._stored else error_reply(20404)
            else:
                status, payload = 200, self._list(request.path, request.query)
            self._record(method, request, body, status, 200 <= status < 300)
            delay = self._latency if method == SEND else 0.0
        headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if status == 401 else {}
        return Reply.json(status, payload, headers, delay)

    def _answer_setup(self, request: IncomingRequest) -> Reply:
        """The account, its incoming numbers and its Messaging Services (read-only)."""
        account, numbers, service = (r.fullmatch(request.path) for r in (_ACCOUNT, _NUMBERS, _SERVICE))
        method = (
            "accounts.fetch"
            if account
            else "incoming_phone_numbers.list"
            if numbers
            else "services.fetch"
            if service
            else request.path
        )
        with self._cond:
            scoped = account or numbers
            own = scoped is not None and scoped["account"] == self.account_sid
            if not self._authorized(request.headers.get("authorization", "")):
                status, payload = error_reply(20003)
                payload["detail"] = "Your AccountSid or AuthToken was incorrect."
            elif account and own:
                status, payload = 200, self._account()
            elif numbers and own:
                status, payload = 200, self._numbers_page(request.path, request.query)
            elif service and service["sid"] in self._services:
                status, payload = 200, self._services[service["sid"]]
            else:
                status, payload = error_reply(20404)
            self._record(method, request, {}, status, status == 200)
        headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if status == 401 else {}
        return Reply.json(status, payload, headers)

    def _account(self) -> dict[str, Any]:
        return {
            "sid": self.account_sid,
            "friendly_name": "NPS test account",
            "status": "active",
            "type": "Full",
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}.json",
        }

    def _numbers_page(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        wanted = query.get("PhoneNumber")
        found = [n for number, n in self._numbers.items() if wanted in (None, number)]
        uri = f"{path}?PageSize=50&Page=0"
        return {
            "incoming_phone_numbers": found,
            "end": max(len(found) - 1, 0),
            "first_page_uri": uri,
            "next_page_uri": None,
            "page": 0,
            "page_size": 50,
            "previous_page_uri": None,
            "start": 0,
            "uri": uri,
        }

    def _authorized(self, header: str) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return header == f"Basic {expected}"

    def _create(self, form: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        to, sender, service = form.get("To"), form.get("From"), form.get("MessagingServiceSid")
        if not to:
            return error_reply(21604)
        if not _E164.fullmatch(to):
            return error_reply(21211)
        if not (sender or service):
            return error_reply(21603)
        if not (form.get("Body") or form.get("MediaUrl")):
            return error_reply(21602)
        if to in self._permanent:
            return error_reply(self._permanent[to])
        fault = next((f for f in self._faults if f.to is None or f.to == to), None)
        if fault is not None:
            self._faults.remove(fault)
            if fault.accepted:
                self._store(form)
            return error_reply(fault.code)
        return 201, self._store(form)

    def _store(self, form: dict[str, Any]) -> dict[str, Any]:
        resource = self._resource(form)
        self._stored[resource["sid"]] = resource
        self._callbacks[resource["sid"]] = form.get("StatusCallback")
        return resource

    def _resource(self, form: dict[str, Any]) -> dict[str, Any]:
        sid = "SM" + uuid.uuid4().hex
        body = str(form.get("Body", ""))
        if self._smart_encoding:
            body = smart_encoded(body)
        body += self._footer
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json"
        now = _now(self._clock)
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": str(num_segments(body)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if form.get("MessagingServiceSid") else "queued",
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": form["To"],
            "uri": uri,
        }

    def _list(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        page_size = int(query.get("PageSize", 50))
        found = [
            r
            for r in reversed(self._stored.values())  # Twilio lists newest first
            if query.get("To") in (None, r["to"]) and query.get("From") in (None, r["from"])
        ][:page_size]
        uri = f"{path}?PageSize={page_size}&Page=0"
        return {
            "messages": found,
            "end": max(len(found) - 1, 0),
            "first_page_uri": uri,
            "next_page_uri": None,
            "page": 0,
            "page_size": page_size,
            "previous_page_uri": None,
            "start": 0,
            "uri": uri,
        }


def _now(clock: Callable[[], datetime] | None = None) -> str:
    return format_datetime(clock() if clock else datetime.now(UTC))


def _sent(resource: dict[str, Any], status_callback: str | None) -> SentMessage:
    return SentMessage(
        sid=resource["sid"],
        to=resource["to"],
        from_=resource["from"],
        body=resource["body"],
        status_callback=status_callback,
        messaging_service_sid=resource["messaging_service_sid"],
        status=resource["status"],
        error_code=resource["error_code"],
    )


__all__ = ["DEFAULT_ACCOUNT_SID", "DEFAULT_AUTH_TOKEN", "FakeTwilio", "RecordedRequest", "SentMessage"]
