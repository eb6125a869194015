"""The SMTP adapter against the SMTP sink: each refusal means what its step of the transaction says."""

from __future__ import annotations

import pytest

from campaigns.channels.base import (
    ChannelSetupError,
    Outgoing,
    PermanentReason,
    PermanentSendError,
    TemporarySendError,
)
from campaigns.channels.email import SmtpConfig, SmtpEmail
from storage.enums import Channel
from tests.standins.fixtures import SMTP_PASSWORD, SMTP_USERNAME
from tests.standins.smtp import SmtpSink

TO = "ana@example.com"


def adapter(sink: SmtpSink, password: str | None = None) -> SmtpEmail:
    return SmtpEmail(
        SmtpConfig(
            host=sink.host,
            port=sink.port,
            sender="Acme <nps@acme.example>",
            username=SMTP_USERNAME if password else None,
            password=password,
            starttls=False,
        )
    )


def send(email: SmtpEmail) -> str:
    return email.send(Outgoing(Channel.EMAIL, TO, "How likely are you to recommend Acme?", subject="Acme"))


def test_an_accepted_message_arrives_once(smtp_sink: SmtpSink) -> None:
    send(adapter(smtp_sink))
    [email] = smtp_sink.wait_for(1)
    assert (email.mail_from, list(email.rcpt_tos)) == ("nps@acme.example", [TO])


def test_an_internationalised_address_is_sent_with_smtputf8(smtp_sink: SmtpSink) -> None:
    to = "zoë@exämple.de"
    adapter(smtp_sink).send(Outgoing(Channel.EMAIL, to, "Wie wahrscheinlich ist es...?", subject="Acme"))
    [email] = smtp_sink.wait_for(1)
    assert list(email.rcpt_tos) == [to] and email.message["To"] == to


def test_an_internationalised_address_a_server_cannot_take_is_permanent_for_that_address() -> None:
    with SmtpSink(smtputf8=False) as old_server:
        with pytest.raises(PermanentSendError) as refused:
            adapter(old_server).send(Outgoing(Channel.EMAIL, "zoë@exämple.de", "Wie...?", subject="Acme"))
        assert refused.value.reason is PermanentReason.INVALID_ADDRESS
        assert old_server.messages() == []


def test_a_refused_login_is_a_setup_error_naming_the_settings(smtp_sink_auth: SmtpSink) -> None:
    with pytest.raises(ChannelSetupError) as raised:
        send(adapter(smtp_sink_auth, password="wrong"))
    assert "SMTP_PASSWORD" in raised.value.fix
    send(adapter(smtp_sink_auth, password=SMTP_PASSWORD))
    assert len(smtp_sink_auth.wait_for(1)) == 1


def test_a_sender_refused_at_mail_from_is_a_setup_error(smtp_sink: SmtpSink) -> None:
    smtp_sink.reject_next(550, stage="mail")
    with pytest.raises(ChannelSetupError) as raised:
        send(adapter(smtp_sink))
    assert "EMAIL_FROM" in raised.value.fix


def test_a_busy_server_at_mail_from_is_temporary(smtp_sink: SmtpSink) -> None:
    smtp_sink.reject_next(451, stage="mail")
    with pytest.raises(TemporarySendError):
        send(adapter(smtp_sink))


def test_a_mailbox_refused_at_rcpt_to_is_permanent_for_that_address(smtp_sink: SmtpSink) -> None:
    smtp_sink.reject_recipient(TO, 550)
    with pytest.raises(PermanentSendError) as raised:
        send(adapter(smtp_sink))
    assert raised.value.reason is PermanentReason.INVALID_ADDRESS


@pytest.mark.parametrize(("code", "error"), [(451, TemporarySendError), (554, PermanentSendError)])
def test_a_refusal_after_the_content_means_the_server_did_not_take_it(
    smtp_sink: SmtpSink, code: int, error: type[Exception]
) -> None:
    smtp_sink.reject_next(code, stage="data")
    with pytest.raises(error):
        send(adapter(smtp_sink))
    assert smtp_sink.messages() == []
    send(adapter(smtp_sink))  # tried again: delivered once
    assert len(smtp_sink.wait_for(1)) == 1


def test_a_relay_refusal_at_rcpt_to_is_a_setup_error_not_the_persons(smtp_sink: SmtpSink) -> None:
    smtp_sink.reject_next(554, "rcpt", "5.7.1 Relay access denied")
    with pytest.raises(ChannelSetupError) as refused:
        send(adapter(smtp_sink))
    assert "SMTP_USERNAME" in refused.value.fix


def test_an_unknown_mailbox_at_rcpt_to_stays_permanent_for_that_address(smtp_sink: SmtpSink) -> None:
    smtp_sink.reject_next(550, "rcpt", "5.1.1 User unknown")
    with pytest.raises(PermanentSendError) as refused:
        send(adapter(smtp_sink))
    assert refused.value.reason is PermanentReason.INVALID_ADDRESS
