"""The Twilio adapter against the fake Twilio server: its answers become errors that say what they mean."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from campaigns.channels.base import (
    ChannelSetupError,
    Outgoing,
    PermanentReason,
    PermanentSendError,
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
        (21602, PermanentReason.REFUSED),  # a 4xx we do not know: a refusal of this message
    ],
)
def test_a_refusal_about_the_recipient_is_permanent_and_says_why(
    fake_twilio: FakeTwilio, code: int, reason: PermanentReason
) -> None:
    fake_twilio.fail_next(code)
    with pytest.raises(PermanentSendError) as raised:
        send(adapter(fake_twilio))
    assert (raised.value.code, raised.value.reason) == (str(code), reason)


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
