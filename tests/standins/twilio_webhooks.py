"""Call our app the way Twilio does: inbound-SMS and status-callback forms, signed with X-Twilio-Signature.

Values are never blank: some form parsers drop blank fields, which would break the signature.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol
from urllib.parse import urlsplit

from twilio.request_validator import RequestValidator

from tests.standins.fake_twilio import API_VERSION, DEFAULT_ACCOUNT_SID, num_segments

SIGNATURE_HEADER = "X-Twilio-Signature"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


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
