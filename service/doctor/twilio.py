"""Twilio: the credentials open the account, the sender (Messaging Service or number) exists in it, and the
webhooks Twilio must call: printed, and compared with the one Twilio has where it tells us."""

from __future__ import annotations

from typing import Any

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from service.doctor.findings import TIMEOUT_SECONDS, Finding, Status, fail, ok, warning
from service.settings import Settings

DEFAULT_API_URL = "https://api.twilio.com"
INBOUND_PATH = "/twilio/sms"
STATUS_PATH = "/twilio/status"
_NETWORK_ERRORS = (requests.RequestException, OSError)


def twilio_client(settings: Settings) -> Client:
    """The official client with the doctor's timeout; TWILIO_API_URL other than Twilio's own (a proxy, the test
    stand-in) serves the Messaging domain too."""
    client = Client(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        http_client=TwilioHttpClient(timeout=TIMEOUT_SECONDS),
    )
    client.api.base_url = settings.twilio_api_url
    if settings.twilio_api_url != DEFAULT_API_URL:
        client.messaging.base_url = settings.twilio_api_url
    client.edge = client.region = None  # TWILIO_EDGE / TWILIO_REGION would rewrite TWILIO_API_URL's host
    return client


def check_twilio(settings: Settings) -> list[Finding]:
    if not settings.twilio_enabled:
        return [warning("twilio", "not configured (TWILIO_ACCOUNT_SID unset): SMS go to the log, not sent")]
    client = twilio_client(settings)
    account = _check_account(client, settings)
    if account.status is Status.FAIL:
        return [account]
    inbound = settings.public_base_url + INBOUND_PATH
    webhooks = ok(
        "twilio webhooks",
        f"incoming texts: {inbound} (HTTP POST); delivery reports: {settings.public_base_url}{STATUS_PATH} "
        "(sent with every message, nothing to configure)",
    )
    return [account, _check_sender(client, settings, inbound), webhooks]


def _check_account(client: Client, settings: Settings) -> Finding:
    subject = "twilio credentials"
    try:
        found = client.api.v2010.accounts(settings.twilio_account_sid).fetch()
    except TwilioRestException as error:
        if error.status == 401:
            return fail(
                subject,
                f"TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN refused ({error.code}): copy both from the Twilio "
                "console (Account info); a rotated token must be replaced here",
            )
        return fail(subject, f"account {settings.twilio_account_sid}: Twilio answered {_said(error)}")
    except (TwilioException, *_NETWORK_ERRORS) as error:
        return fail(subject, f"cannot reach Twilio at {settings.twilio_api_url}: {type(error).__name__}")
    if found.status != "active":
        return fail(
            subject, f"account {found.sid} is {found.status}: texts cannot be sent until it is active"
        )
    if found.type == "Trial":
        return warning(subject, f"account {found.sid} is a trial: texts reach verified numbers only")
    return ok(subject, f"account {found.sid} ({found.friendly_name}) active")


def _check_sender(client: Client, settings: Settings, inbound: str) -> Finding:
    try:
        if settings.twilio_messaging_service_sid:
            return _check_service(client, settings.twilio_messaging_service_sid, inbound)
        assert settings.twilio_from_number  # settings require one of the two
        return _check_number(client, settings.twilio_from_number, inbound)
    except TwilioRestException as error:
        return fail("twilio sender", f"Twilio answered {_said(error)}")
    except (TwilioException, *_NETWORK_ERRORS) as error:
        return fail("twilio sender", f"cannot ask Twilio: {type(error).__name__}")


def _check_service(client: Client, sid: str, inbound: str) -> Finding:
    subject = "twilio sender"
    try:
        service = client.messaging.v1.services(sid).fetch()
    except TwilioRestException as error:
        if error.status == 404:
            return fail(
                subject, f"TWILIO_MESSAGING_SERVICE_SID {sid}: no such Messaging Service in this account"
            )
        raise
    if service.use_inbound_webhook_on_number:
        return warning(
            subject,
            f"Messaging Service {sid} passes incoming texts to its numbers' own webhooks: each must be {inbound}",
        )
    return _compare_webhook(f"Messaging Service {sid}", service.inbound_request_url, inbound, "Integration")


def _check_number(client: Client, number: str, inbound: str) -> Finding:
    subject = "twilio sender"
    found: list[Any] = client.incoming_phone_numbers.list(phone_number=number, limit=1)
    if not found:
        return fail(
            subject,
            f"TWILIO_FROM_NUMBER {number} is not a phone number of this account: use one listed under "
            "Phone Numbers > Active numbers, in E.164 (+15551234567)",
        )
    if not found[0].capabilities.get("sms"):
        return fail(subject, f"{number} cannot send SMS: choose an SMS-capable number")
    return _compare_webhook(f"number {number}", found[0].sms_url, inbound, "Messaging configuration")


def _compare_webhook(sender: str, configured: str | None, expected: str, where: str) -> Finding:
    """Replies (scores, comments, STOP) reach us only through this webhook: another URL loses all of them."""
    if (configured or "").rstrip("/") == expected:
        return ok("twilio sender", f"{sender} exists; its incoming-text webhook is {expected}")
    shown = configured or "not set"
    return fail(
        "twilio sender",
        f"{sender} exists, but its incoming-text webhook is {shown}: set it to {expected} (HTTP POST) "
        f"under {where}, or replies and STOP are never recorded",
    )


def _said(error: TwilioRestException) -> str:
    return f"HTTP {error.status}, error {error.code}: {error.msg}".rstrip(": ")
