"""The Twilio adapter against the fake Twilio server: its answers become errors that say what they mean."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from campaigns.channels.base import (
    ChannelSetupError,
    Outgoing,
    PermanentReason,
    PermanentSendError,
    SendError,
    TemporarySendError,
    UncertainSendError,
)
from campaigns.channels.sms import TwilioConfig, TwilioSms, reason_for_code
from storage.enums import Channel
from tests.standins._server import IncomingRequest, Reply
from tests.standins.fake_twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, FakeTwilio

TO = "+4915112345678"


def adapter(fake_twilio: FakeTwilio, timeout: float = 15.0) -> TwilioSms:
    return TwilioSms(
        TwilioConfig(
            account_sid=DEFAULT_ACCOUNT_SID,
            auth_token=DEFAULT_AUTH_TOKEN,
            api_url=fake_twilio.url,
            from_number="+15005550006",
            timeout=timeout,
        )
    )


def send(sms: TwilioSms) -> str:
    return sms.send(Outgoing(Channel.SMS, TO, "How likely are you to recommend Acme? Reply 0-10."))


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (21610, PermanentReason.RECIPIENT_OPTED_OUT),
        (21211, PermanentReason.INVALID_ADDRESS),
        (21614, PermanentReason.INVALID_ADDRESS),
        (21612, PermanentReason.UNREACHABLE),
    ],
)
def test_a_refusal_about_the_recipient_is_permanent_and_says_why(
    fake_twilio: FakeTwilio, code: int, reason: PermanentReason
) -> None:
    fake_twilio.fail_next(code)
    with pytest.raises(PermanentSendError) as raised:
        send(adapter(fake_twilio))
    assert (raised.value.code, raised.value.reason) == (str(code), reason)


@pytest.mark.parametrize("code", [21999, 21602])
def test_a_4xx_code_we_do_not_know_is_temporary_and_logged_never_final_for_the_number(
    fake_twilio: FakeTwilio, caplog: pytest.LogCaptureFixture, code: int
) -> None:
    fake_twilio.fail_next(code)
    with caplog.at_level(logging.WARNING), pytest.raises(TemporarySendError) as raised:
        send(adapter(fake_twilio))
    assert raised.value.code == str(code)
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert str(code) in warning.getMessage()
    assert TO not in warning.getMessage() and TO[-4:] not in warning.getMessage()


def test_a_country_the_account_may_not_text_is_temporary_and_says_what_to_enable(
    fake_twilio: FakeTwilio,
) -> None:
    fake_twilio.fail_next(21408)
    with pytest.raises(TemporarySendError, match="Geo Permissions"):
        send(adapter(fake_twilio))


def test_rate_limited_is_temporary(fake_twilio: FakeTwilio) -> None:
    fake_twilio.fail_next(429)
    with pytest.raises(TemporarySendError):
        send(adapter(fake_twilio))


def test_no_answer_in_time_is_uncertain_and_twilios_log_shows_it_went_out(fake_twilio: FakeTwilio) -> None:
    fake_twilio.set_latency(1.0)
    sms = adapter(fake_twilio, timeout=0.3)
    with pytest.raises(UncertainSendError):
        send(sms)
    fake_twilio.set_latency(0)
    [sent] = fake_twilio.messages()
    found = sms.find_sent(TO, sent.body, datetime.now(UTC) - timedelta(minutes=1))
    assert found == [sent.sid]


def test_a_callbacks_error_code_means_the_same_as_the_apis() -> None:
    assert reason_for_code("21610") is PermanentReason.RECIPIENT_OPTED_OUT
    assert reason_for_code("21211") is PermanentReason.INVALID_ADDRESS
    assert reason_for_code("30003") is None  # unreachable handset: a carrier report, nothing final
    assert reason_for_code(None) is None


@pytest.mark.parametrize("code", [500, 502, 503])
def test_a_5xx_is_uncertain_because_an_edge_may_answer_it_after_twilio_took_the_text(
    fake_twilio: FakeTwilio, code: int
) -> None:
    fake_twilio.accept_then_fail_next(code)
    sms = adapter(fake_twilio)
    with pytest.raises(UncertainSendError):
        send(sms)
    [sent] = fake_twilio.messages()
    assert sms.find_sent(TO, sent.body, datetime.now(UTC) - timedelta(minutes=1)) == [sent.sid]


@pytest.mark.parametrize("code", [20003, 20404, 21606, 21212, 21608, 21611])
def test_a_refusal_of_our_account_or_sender_is_a_setup_error_not_the_recipients(
    fake_twilio: FakeTwilio, code: int
) -> None:
    fake_twilio.fail_next(code)
    with pytest.raises(ChannelSetupError) as raised:
        send(adapter(fake_twilio))
    assert raised.value.code == str(code)
    assert raised.value.fix


def test_a_wrong_auth_token_is_a_setup_error(fake_twilio: FakeTwilio) -> None:
    sms = TwilioSms(replace(adapter(fake_twilio).config, auth_token="rotated-away"))
    with pytest.raises(ChannelSetupError) as raised:
        send(sms)
    assert raised.value.code == "20003"
    assert "TWILIO_AUTH_TOKEN" in raised.value.fix


def test_a_429_carries_twilios_retry_after(fake_twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch) -> None:
    answer = fake_twilio.answer

    def with_retry_after(request: IncomingRequest) -> Reply:
        reply = answer(request)
        return replace(reply, headers={**reply.headers, "Retry-After": "120"})

    monkeypatch.setattr(fake_twilio, "answer", with_retry_after)
    fake_twilio.fail_next(429)
    with pytest.raises(TemporarySendError) as raised:
        send(adapter(fake_twilio))
    assert raised.value.retry_after == 120.0


# --- Twilio's message log: what it stores may differ from what we sent ------------------------------------

BODY = "Hi Ana \u2014 how likely are you to recommend \u201cAcme\u201d? Reply 0\u201310\u2026"


def logged(sms: TwilioSms, body: str = BODY, to: str = TO) -> str:
    """Send `body` and return the sid Twilio logged it under."""
    return sms.send(Outgoing(Channel.SMS, to, body))


@pytest.mark.parametrize(
    ("smart_encoding", "footer"),
    [(True, ""), (False, "\n\nReply STOP to unsubscribe."), (True, " Reply STOP to opt out")],
)
def test_the_log_finds_a_text_twilio_stored_smart_encoded_or_with_opt_out_text(
    fake_twilio: FakeTwilio, smart_encoding: bool, footer: str
) -> None:
    fake_twilio.store_bodies_as(smart_encoding=smart_encoding, footer=footer)
    sms = adapter(fake_twilio)
    sid = logged(sms)
    assert fake_twilio.messages()[0].body != BODY  # Twilio keeps another text than the one we sent
    assert sms.find_sent(TO, BODY, datetime.now(UTC) - timedelta(minutes=1)) == [sid]


def test_the_log_does_not_take_another_text_another_sender_or_another_time_for_ours(
    fake_twilio: FakeTwilio,
) -> None:
    sms = adapter(fake_twilio)
    since = datetime.now(UTC) - timedelta(minutes=1)
    logged(sms, "Hi Ana, your order has shipped.")
    other_sender = TwilioSms(replace(sms.config, from_number="+15005550009"))
    logged(other_sender)
    assert sms.find_sent(TO, BODY, since) == []
    sid = logged(sms)
    assert sms.find_sent(TO, BODY, since) == [sid]
    assert sms.find_sent(TO, BODY, since - timedelta(hours=2), since - timedelta(hours=1)) == []


def test_the_log_matches_a_messaging_services_texts_by_the_service(fake_twilio: FakeTwilio) -> None:
    config = replace(adapter(fake_twilio).config, from_number=None, messaging_service_sid="MG" + "1" * 32)
    service = TwilioSms(config)
    since = datetime.now(UTC) - timedelta(minutes=1)
    logged(adapter(fake_twilio))  # the same words from the account's plain number
    assert service.find_sent(TO, BODY, since) == []
    sid = logged(service)
    assert service.find_sent(TO, BODY, since) == [sid]


def test_the_status_callback_url_names_our_message(fake_twilio: FakeTwilio) -> None:
    config = replace(adapter(fake_twilio).config, status_callback="https://nps.example.com/twilio/status")
    TwilioSms(config).send(Outgoing(Channel.SMS, TO, BODY, message_id=42))
    TwilioSms(config).send(Outgoing(Channel.SMS, TO, BODY))  # not an outbox message: no id to name
    assert [m.status_callback for m in fake_twilio.messages()] == [
        "https://nps.example.com/twilio/status?m=42",
        "https://nps.example.com/twilio/status",
    ]


# A port nothing listens on: a proxy there refuses every connection.
DEAD_PROXY = "http://127.0.0.1:9"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_the_proxy_of_the_environment_is_used(
    fake_twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_proxies(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", DEAD_PROXY)
    with pytest.raises(SendError):  # the request went to the proxy, which refused it
        send(adapter(fake_twilio))
    assert fake_twilio.count() == 0


def test_proxy_and_ca_settings_are_read_once_per_client_not_on_every_send(
    fake_twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_proxies(monkeypatch)
    sms = adapter(fake_twilio)
    send(sms)
    # Read when the client was made: a send does not look at the environment again (requests would, on every
    # request: proxies, no_proxy, the CA bundle).
    monkeypatch.setenv("HTTP_PROXY", DEAD_PROXY)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca.pem")
    send(sms)
    assert fake_twilio.count(successful=True) == 2
