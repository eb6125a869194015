"""twilio_webhooks: signatures Twilio's own RequestValidator accepts, posted to a small Starlette app."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from urllib.parse import parse_qsl

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient
from twilio.request_validator import RequestValidator

from tests.standins.fake_twilio import DEFAULT_AUTH_TOKEN
from tests.standins.twilio_webhooks import (
    SIGNATURE_HEADER,
    inbound_sms_params,
    new_message_sid,
    post_and_hang_up,
    post_signed,
    post_unsigned,
    sign_twilio_request,
    status_callback_params,
)

PUBLIC_BASE_URL = "https://nps.example.com"
SMS_URL = f"{PUBLIC_BASE_URL}/twilio/sms"
STATUS_URL = f"{PUBLIC_BASE_URL}/twilio/status?attempt=1"
PHONE, NUMBER = "+15551230001", "+15550009999"


def test_signatures_validate_and_tampering_fails() -> None:
    params = inbound_sms_params(PHONE, NUMBER, "9 – great service ✓")
    signature = sign_twilio_request(DEFAULT_AUTH_TOKEN, SMS_URL, params)
    validator = RequestValidator(DEFAULT_AUTH_TOKEN)
    assert validator.validate(SMS_URL, params, signature)
    assert not validator.validate(SMS_URL, {**params, "Body": "0"}, signature)
    assert not validator.validate(SMS_URL + "x", params, signature)
    assert not RequestValidator("another-token").validate(SMS_URL, params, signature)


def test_param_shapes() -> None:
    sms = inbound_sms_params(PHONE, NUMBER, "10")
    assert sms["MessageSid"].startswith("SM") and sms["SmsSid"] == sms["MessageSid"]
    assert (sms["From"], sms["To"], sms["Body"], sms["NumSegments"]) == (PHONE, NUMBER, "10", "1")
    sid = new_message_sid()
    delivered = status_callback_params(sid, "delivered", PHONE, NUMBER)
    assert (delivered["MessageSid"], delivered["MessageStatus"]) == (sid, "delivered")
    assert "ErrorCode" not in delivered
    assert status_callback_params(sid, "undelivered", PHONE, NUMBER, error_code=30003)["ErrorCode"] == "30003"
    assert all(value for value in sms.values())  # blank values would be dropped by some form parsers


# --- posting to an app that validates like production code would -------------------------------------


async def twilio_endpoint(request: Request) -> Response:
    """Validate against the public URL Twilio called (rebuilt from PUBLIC_BASE_URL, as behind a proxy).

    The form is parsed with parse_qsl: Starlette's request.form() needs python-multipart, not installed here.
    """
    params = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
    query = f"?{request.url.query}" if request.url.query else ""
    public_url = PUBLIC_BASE_URL + request.url.path + query
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not RequestValidator(DEFAULT_AUTH_TOKEN).validate(public_url, params, signature):
        return PlainTextResponse("bad signature", status_code=403)
    request.app.state.received.append(params)
    return Response("<Response/>", media_type="application/xml")


@pytest.fixture
def app_client() -> Iterator[TestClient]:
    routes = [Route(path, twilio_endpoint, methods=["POST"]) for path in ("/twilio/sms", "/twilio/status")]
    app = Starlette(routes=routes)
    app.state.received = []
    with TestClient(app) as client:
        yield client


def test_signed_inbound_sms_is_accepted(app_client: TestClient) -> None:
    params = inbound_sms_params(PHONE, NUMBER, "Gr8 ✓ 10/10 & more")
    response = post_signed(app_client, SMS_URL, params, DEFAULT_AUTH_TOKEN)
    assert response.status_code == 200
    assert app_client.app.state.received == [params]  # type: ignore[attr-defined]


def test_status_callback_with_query_string(app_client: TestClient) -> None:
    params = status_callback_params(new_message_sid(), "failed", PHONE, NUMBER, error_code=30007)
    assert post_signed(app_client, STATUS_URL, params, DEFAULT_AUTH_TOKEN).status_code == 200


def test_target_url_posts_elsewhere_but_signs_for_the_public_url(app_client: TestClient) -> None:
    params = inbound_sms_params(PHONE, NUMBER, "STOP")
    internal = "http://testserver/twilio/sms"
    assert (
        post_signed(app_client, SMS_URL, params, DEFAULT_AUTH_TOKEN, target_url=internal).status_code == 200
    )


def test_forged_and_unsigned_requests_are_refused(app_client: TestClient) -> None:
    params = inbound_sms_params(PHONE, NUMBER, "0")
    forged = sign_twilio_request("another-token", SMS_URL, params)
    assert post_signed(app_client, SMS_URL, params, DEFAULT_AUTH_TOKEN, signature=forged).status_code == 403
    assert post_unsigned(app_client, SMS_URL, params).status_code == 403
    assert app_client.app.state.received == []  # type: ignore[attr-defined]


def test_a_post_that_hangs_up_is_signed_and_the_app_sees_the_client_gone() -> None:
    async def endpoint(request: Request) -> Response:
        answer = await twilio_endpoint(request)
        gone = await request.is_disconnected()
        return Response(f"{answer.status_code} gone={gone}", status_code=answer.status_code)

    app = Starlette(routes=[Route("/twilio/sms", endpoint, methods=["POST"])])
    app.state.received = []
    params = inbound_sms_params(PHONE, NUMBER, "9 & more")
    assert asyncio.run(post_and_hang_up(app, SMS_URL, params, DEFAULT_AUTH_TOKEN)) == (200, "200 gone=True")
    assert app.state.received == [params]
