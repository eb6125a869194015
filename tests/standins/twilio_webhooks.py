"""Call our app the way Twilio does: inbound-SMS and status-callback forms, signed with X-Twilio-Signature.

Values are never blank: some form parsers drop blank fields, which would break the signature.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

from twilio.request_validator import RequestValidator

from tests.standins.fake_twilio import API_VERSION, DEFAULT_ACCOUNT_SID, num_segments

SIGNATURE_HEADER = "X-Twilio-Signature"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

ASGIMessage = MutableMapping[str, Any]
ASGIApp = Callable[
    [ASGIMessage, Callable[[], Awaitable[ASGIMessage]], Callable[[ASGIMessage], Awaitable[None]]],
    Awaitable[None],
]


class PostingClient(Protocol):
    """httpx.Client, Starlette's TestClient, or anything with this `post`."""

    def post(self, url: str, *, data: Any = ..., headers: Any = ...) -> Any: ...


def new_message_sid() -> str:
    """A fresh message sid: "SM" + 32 hex chars."""
    return "SM" + uuid.uuid4().hex


def sign_twilio_request(auth_token: str, url: str, params: dict[str, str]) -> str:
    """The X-Twilio-Signature Twilio would send for a POST of `params` to the public `url`."""
    return RequestValidator(auth_token).compute_signature(url, params)


def inbound_sms_params(
    from_: str,
    to: str,
    body: str,
    message_sid: str | None = None,
    account_sid: str = DEFAULT_ACCOUNT_SID,
) -> dict[str, str]:
    """The form Twilio POSTs to a number's messaging webhook for an incoming SMS."""
    sid = message_sid or new_message_sid()
    return {
        "ToCountry": "US",
        "FromCountry": "US",
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "MessageSid": sid,
        "NumMedia": "0",
        "NumSegments": str(num_segments(body)),
        "ReferralNumMedia": "0",
        "SmsStatus": "received",
        "Body": body,
        "To": to,
        "From": from_,
        "AccountSid": account_sid,
        "ApiVersion": API_VERSION,
    }


def status_callback_params(
    message_sid: str,
    status: str,
    to: str,
    from_: str,
    error_code: int | str | None = None,
    account_sid: str = DEFAULT_ACCOUNT_SID,
) -> dict[str, str]:
    """The form Twilio POSTs to a message's StatusCallback (ErrorCode only when given)."""
    params = {
        "SmsSid": message_sid,
        "SmsStatus": status,
        "MessageSid": message_sid,
        "MessageStatus": status,
        "To": to,
        "From": from_,
        "AccountSid": account_sid,
        "ApiVersion": API_VERSION,
    }
    if error_code is not None:
        params["ErrorCode"] = str(error_code)
    return params


def post_signed(
    client: PostingClient,
    public_url: str,
    params: dict[str, str],
    auth_token: str,
    *,
    signature: str | None = None,
    target_url: str | None = None,
) -> Any:
    """POST `params` like Twilio, signed for `public_url`; return the client's response.

    The request goes to the path (and query) of `public_url` unless `target_url` is given (e.g. the
    app's internal address behind a proxy); `signature` overrides the computed one (forgery tests).
    """
    if signature is None:
        signature = sign_twilio_request(auth_token, public_url, params)
    return _post(client, public_url, params, {SIGNATURE_HEADER: signature}, target_url)


def post_unsigned(
    client: PostingClient, public_url: str, params: dict[str, str], *, target_url: str | None = None
) -> Any:
    """POST `params` like Twilio but without any X-Twilio-Signature header."""
    return _post(client, public_url, params, {}, target_url)


def _post(
    client: PostingClient,
    public_url: str,
    params: dict[str, str],
    headers: dict[str, str],
    target_url: str | None,
) -> Any:
    if target_url is None:
        split = urlsplit(public_url)
        target_url = split.path + (f"?{split.query}" if split.query else "")
    all_headers = {"Content-Type": FORM_CONTENT_TYPE, **headers}
    return client.post(target_url, data=params, headers=all_headers)


async def post_and_hang_up(
    app: ASGIApp, public_url: str, params: dict[str, str], auth_token: str
) -> tuple[int, str]:
    """POST `params` like Twilio straight into an ASGI `app`, and hang up once the body is sent.

    Twilio hangs up on a webhook that has not answered within its 15 s timeout; here every receive after the
    body says the client is gone (`http.disconnect`), as a server says after the peer closed the connection.
    Returns the status and body the app answered anyway, into the closed connection.
    """
    split = urlsplit(public_url)
    body = urlencode(params).encode()
    headers = [
        (b"host", split.netloc.encode()),
        (b"content-type", FORM_CONTENT_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        (SIGNATURE_HEADER.lower().encode(), sign_twilio_request(auth_token, public_url, params).encode()),
    ]
    scope: ASGIMessage = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": split.scheme,
        "path": split.path,
        "raw_path": split.path.encode(),
        "query_string": split.query.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": (split.hostname or "", split.port or 443),
    }
    incoming = [{"type": "http.request", "body": body, "more_body": False}]
    answered: list[ASGIMessage] = []

    async def receive() -> ASGIMessage:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: ASGIMessage) -> None:
        answered.append(message)

    await app(scope, receive, send)
    start = next(m for m in answered if m["type"] == "http.response.start")
    text = b"".join(m.get("body", b"") for m in answered if m["type"] == "http.response.body")
    return int(start["status"]), text.decode()
