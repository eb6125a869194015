"""SMS through Twilio's Messages API, with one client per thread (requests sessions are not shared safely).

This module is the only place that reads Twilio's error codes; everything else acts on the SendError they are
turned into. What Twilio's answers mean:

- Errors about the *recipient* are final for that number: 21610 the person replied STOP (an opt-out we must
  record, and Twilio blocks every later send to them), 21211 an invalid 'To', 21614 not a mobile number, 21612
  no route to it. They become a PermanentSendError whose `reason` says which.
- Another 4xx with a code not in our tables is a problem with the request that this version does not
  understand: it says nothing about the person, so it is never final for the number. A TemporarySendError,
  logged at WARNING with the code, retried with back-off for as long as the survey lasts
  (campaigns.dispatch.retries), like any temporary failure.
- Errors about the *sender or the account* (20003 rotated token, 20404 wrong account SID, 21606/21212/21603 bad
  or missing 'From', 21608 trial account, 21611 the sender's queue is full, 21701-21705 a Messaging Service that
  cannot send, any 401) say nothing about the person and hold
  for every send until someone fixes the setup: a ChannelSetupError naming what to fix; the dispatcher pauses
  SMS and keeps the invitations.
- 21408 (the account may not text that country) is about us but only for that country: a TemporarySendError,
  retried and then the next channel, with what to fix; SMS is not paused for everyone else.
- 429 and a failure to connect prove that nothing was sent: a TemporarySendError, tried again later; a 429's
  Retry-After header becomes its `retry_after`.
- A 5xx does *not* prove it: an edge or proxy in front of Twilio may answer 500/502/503 after Twilio accepted
  the message. A 5xx, a read timeout or a connection broken mid-way are uncertain: an UncertainSendError,
  settled later from Twilio's message log (`find_sent`), never by sending again blindly.
- Delivery status callbacks carry the same codes in `ErrorCode`: `reason_for_code` gives their meaning.

Finding a send again. Twilio's list API does not return a message's StatusCallback, so the callback URL is
the per-message key: `.../twilio/status?m=<our message id>` (signed by Twilio over the whole URL, query
included). A callback that arrives for a send whose answer was lost names both our message and Twilio's SID,
and reconciliation then knows the SID without the log. When it must read the log (`find_sent`), the body
Twilio stored may not be the one we sent: Smart Encoding (a Messaging Service setting) swaps curly quotes,
dashes, ellipses and Unicode spaces for GSM-7 characters when the whole text then fits GSM-7; opt-out
language may be appended and a trial account prefixes "Sent from your Twilio trial account - ". So a logged
message is ours when it went to the number from our sender (the From number, or the Messaging Service), was
created in the claim's time window, and contains our text once both are folded (`same_text`).
"""

from __future__ import annotations

import logging
import os
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
import urllib3
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from campaigns.channels.base import (
    ChannelSetupError,
    Outgoing,
    PermanentReason,
    PermanentSendError,
    SendError,
    TemporarySendError,
    UncertainSendError,
)
from campaigns.ratelimit import retry_after_seconds
from storage.enums import Channel

log = logging.getLogger(__name__)

# Twilio's clock and ours differ a little; a reconciliation looks this far around the claim's window.
_CLOCK_SKEW = timedelta(minutes=2)

# Twilio's error codes about the recipient, each final for that number.
_RECIPIENT_ERRORS = {
    "21610": PermanentReason.RECIPIENT_OPTED_OUT,  # the person replied STOP to our sender
    "21211": PermanentReason.INVALID_ADDRESS,  # invalid 'To' number
    "21614": PermanentReason.INVALID_ADDRESS,  # 'To' is not a mobile number
    "21612": PermanentReason.UNREACHABLE,  # 'To' cannot be reached by SMS from this sender
}
_FROM = "check TWILIO_FROM_NUMBER (an SMS-capable number of this account) or TWILIO_MESSAGING_SERVICE_SID"
# Twilio's error codes about our own account or sender, each with what the operator has to fix.
_SETUP_ERRORS = {
    "20003": "Twilio refused the credentials: set TWILIO_AUTH_TOKEN to the account's current auth token",
    "20404": "Twilio knows no such account: check TWILIO_ACCOUNT_SID",
    "21606": f"the 'From' number cannot send this message: {_FROM}",
    "21212": f"the 'From' number is invalid: {_FROM}",
    "21608": "the Twilio account is a trial account, which texts only verified numbers: upgrade it",
    "21611": "the 'From' number's queue is full: lower NPS_SEND_RATE or add senders; sending resumes by itself",
    "21603": f"no sender was given: {_FROM}",
    "21701": "Twilio knows no such Messaging Service: check TWILIO_MESSAGING_SERVICE_SID",
    "21702": "the Messaging Service cannot send new messages: check it in Twilio's console",
    "21703": "the Messaging Service has no number available to send from: add one to its sender pool",
    "21704": "the Messaging Service has no numbers: add one to its sender pool",
    "21705": "the Messaging Service is invalid: check TWILIO_MESSAGING_SERVICE_SID",
}
# About our account, but for one country only (Geo Permissions): pausing all SMS would stop every other country.
# Tried again later, then the campaign's next channel; the person is never marked undeliverable for it.
_COUNTRY_NOT_ENABLED = "21408"


@dataclass(frozen=True)
class TwilioConfig:
    account_sid: str
    auth_token: str
    api_url: str = "https://api.twilio.com"
    messaging_service_sid: str | None = None
    from_number: str | None = None
    status_callback: str | None = None  # our public /twilio/status URL
    timeout: float = 15.0


class TwilioSms:
    channel = Channel.SMS
    name = "twilio"

    def __init__(self, config: TwilioConfig) -> None:
        if not (config.messaging_service_sid or config.from_number):
            raise ValueError("Twilio needs TWILIO_MESSAGING_SERVICE_SID or TWILIO_FROM_NUMBER")
        self.config = config
        self._local = threading.local()

    def _client(self) -> Client:
        client = getattr(self._local, "client", None)
        if client is None:
            hooks = {"response": [self._remember_retry_after]}
            proxies, verify = _environment_settings(self.config.api_url)
            http = TwilioHttpClient(timeout=self.config.timeout, request_hooks=hooks, proxy=proxies)
            # requests reads proxies, no_proxy and the CA bundle from the environment on every request unless
            # told not to: read once above, for this client's lifetime.
            assert http.session is not None  # a pooled session (TwilioHttpClient's default)
            http.session.trust_env = False
            http.session.verify = verify
            client = Client(self.config.account_sid, self.config.auth_token, http_client=http)
            client.api.base_url = self.config.api_url.rstrip("/")
            # TWILIO_EDGE / TWILIO_REGION in the environment would rewrite the host of TWILIO_API_URL.
            client.edge = client.region = None
            self._local.client = client
        return client

    def send(self, message: Outgoing) -> str:
        sender = (
            {"messaging_service_sid": self.config.messaging_service_sid}
            if self.config.messaging_service_sid
            else {"from_": self.config.from_number}
        )
        callback = {"status_callback": self._status_callback(message)} if self.config.status_callback else {}
        self._local.retry_after = None
        try:
            created = self._client().messages.create(to=message.to, body=message.body, **sender, **callback)
        except TwilioRestException as error:
            raise _classify(error, self._local.retry_after) from None
        except requests.exceptions.RequestException as error:
            if _never_connected(error):
                raise TemporarySendError(f"Twilio unreachable: {type(error).__name__}") from None
            # The request may have reached Twilio before the connection broke.
            raise UncertainSendError(f"no answer from Twilio: {type(error).__name__}") from None
        return str(created.sid)

    def _remember_retry_after(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """A requests hook: keep this thread's last Retry-After header (TwilioRestException drops headers)."""
        self._local.retry_after = response.headers.get("Retry-After")

    def _status_callback(self, message: Outgoing) -> str | None:
        """Our StatusCallback URL, naming our message when the send has one (`?m=<message id>`)."""
        url = self.config.status_callback
        if url is None or message.message_id is None:
            return url
        return f"{url}{'&' if '?' in url else '?'}m={message.message_id}"

    def find_sent(
        self, to: str, body: str, since: datetime, until: datetime | None = None
    ) -> Sequence[str] | None:
        """Ask Twilio's message log whether a send we never heard back about went out (see the module).

        Filtered here by creation time, not with Twilio's DateSent filter: a message still queued has no
        date_sent yet and would be missed, and missing it would mean texting the person twice.
        """
        earliest = since - _CLOCK_SKEW
        latest = until + _CLOCK_SKEW if until is not None else None
        service = self.config.messaging_service_sid
        sender = {} if service else {"from_": self.config.from_number}
        found = self._client().messages.list(to=to, limit=50, **sender)  # newest first
        return [
            str(m.sid)
            for m in found
            if (not service or m.messaging_service_sid == service)
            and (m.date_created is None or m.date_created >= earliest)
            and (m.date_created is None or latest is None or m.date_created <= latest)
            and same_text(body, m.body or "")
        ]


def _environment_settings(api_url: str) -> tuple[dict[str, str], bool | str]:
    """The proxies for `api_url` (HTTP(S)_PROXY, ALL_PROXY, NO_PROXY) and the CA bundle (REQUESTS_CA_BUNDLE,
    CURL_CA_BUNDLE; else requests' own), as requests would find them in the environment."""
    proxies = requests.utils.get_environ_proxies(api_url)
    ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    return dict(proxies), ca_bundle or True


def _never_connected(error: requests.exceptions.RequestException) -> bool:
    """True when no byte of the request can have reached Twilio (refused or timed out while connecting)."""
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return True
    reason = error.args[0] if error.args else None
    return isinstance(getattr(reason, "reason", None), urllib3.exceptions.NewConnectionError)


# Folded on both sides before a logged body is compared with ours: what Smart Encoding transliterates
# (Twilio's published character list: quotation marks, primes, dashes), and invisible characters. NFKC then
# folds the ellipsis to "...", Unicode spaces to " " and fullwidth forms to ASCII.
_TYPOGRAPHY = str.maketrans(
    {
        **dict.fromkeys(
            "\u00ab\u00bb\u201c\u201d\u201e\u201f\u2033\u02ba\u02ee\u275d\u275e\u301d\u301e\u301f\uff02", '"'
        ),
        **dict.fromkeys(
            "\u2018\u2019\u201a\u201b\u2032\u02b9\u02bb\u02bc\u02bd\u02c8\u02ca\u02cb\u00b4\u0060\u275b\u275c\uff07",
            "'",
        ),
        **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2043\u2212\ufe58\ufe63\uff0d", "-"),
        **dict.fromkeys("\u00ad\u200b\u200c\u200d\u2060\ufeff"),
    }
)


def same_text(ours: str, stored: str) -> bool:
    """Whether a body Twilio stored is our text: equal once folded, or with text added before or after it."""
    folded = _fold(ours)
    return bool(folded) and folded in _fold(stored)


def _fold(text: str) -> str:
    """Typography folded (see _TYPOGRAPHY), whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text.translate(_TYPOGRAPHY)).translate(_TYPOGRAPHY).split())


# What the codes of undelivered-status callbacks mean, in words (https://www.twilio.com/docs/api/errors).
_DELIVERY_ERRORS = {
    "30001": "the carrier's queue overflowed",
    "30002": "the Twilio account is suspended",
    "30003": "the handset is unreachable (off or out of coverage)",
    "30004": "the message was blocked (the person or the carrier blocks this sender)",
    "30005": "the number is unknown to its carrier (it may not exist any more)",
    "30006": "the number is a landline or its carrier cannot take SMS",
    "30007": "the carrier filtered it as spam",
    "30008": "the carrier gave no reason",
    "30034": "the sending number is not registered for US A2P 10DLC",
}


def describe_code(error_code: str | None) -> str | None:
    """A Twilio error code in words (send answers and delivery callbacks), or None for a code we do not know."""
    if not error_code:
        return None
    code = str(error_code)
    if code in _DELIVERY_ERRORS:
        return _DELIVERY_ERRORS[code]
    if code in _RECIPIENT_ERRORS:
        return str(_RECIPIENT_ERRORS[code])
    if code in _SETUP_ERRORS:
        return _SETUP_ERRORS[code]
    if code == _COUNTRY_NOT_ENABLED:
        return "the recipient's country is not enabled in Twilio's Geo Permissions"
    return None


def reason_for_code(error_code: str | None) -> PermanentReason | None:
    """What a Twilio error code (from an API error or a status callback's ErrorCode) says about the recipient.

    None when the code says nothing final about the person (a carrier hiccup, a sender or account problem).
    """
    return _RECIPIENT_ERRORS.get(str(error_code)) if error_code else None


def _classify(error: TwilioRestException, retry_after: str | None) -> SendError:
    code = str(error.code or error.status)
    message = f"Twilio {error.status} error {code}: {error.msg}"
    if error.status == 429:
        return TemporarySendError(message, code, retry_after_seconds(retry_after, datetime.now(UTC)))
    if error.status >= 500:
        return UncertainSendError(f"{message} (Twilio may have accepted it all the same)", code)
    if code == _COUNTRY_NOT_ENABLED:
        return TemporarySendError(
            f"{message}: enable the recipient's country in Twilio's Geo Permissions for SMS", code
        )
    if code in _SETUP_ERRORS or error.status == 401:
        fix = _SETUP_ERRORS.get(code, "check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        return ChannelSetupError(message, code, fix)
    reason = reason_for_code(code)
    if reason is not None:
        return PermanentSendError(message, code, reason)
    log.warning(
        "Twilio answered %s with error %s, which this version does not know; the send is retried later and "
        "nothing is concluded about the number (https://www.twilio.com/docs/errors/%s)",
        error.status,
        code,
        code,
    )
    return TemporarySendError(f"{message} (an error this version does not know; retried)", code)
