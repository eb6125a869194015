"""The Twilio adapter against the fake Twilio server: its answers become errors that say what they mean."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from campaigns.channels.base import (
    Outgoing,
    PermanentReason,
    PermanentSendError,
    TemporarySendError,
    UncertainSendError,
)
from campaigns.channels.sms import TwilioConfig, TwilioSms, reason_for_code
from storage.enums import Channel
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
        (21408, PermanentReason.REFUSED),
    ],
)
def test_a_refusal_about_the_recipient_is_permanent_and_says_why(
    fake_twilio: FakeTwilio, code: int, reason: PermanentReason
) -> None:
    fake_twilio.fail_next(code)
    with pytest.raises(PermanentSendError) as raised:
        send(adapter(fake_twilio))
    assert (raised.value.code, raised.value.reason) == (str(code), reason)


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
