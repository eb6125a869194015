"""SmtpSink driven by the stdlib smtplib client, the way the app's email channel talks to a mail server."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import pytest

from tests.standins.fixtures import SMTP_PASSWORD, SMTP_USERNAME
from tests.standins.smtp import Refusal, SmtpSink

SENDER, ANA, BEN = "surveys@nps.example.com", "ana@example.com", "ben@example.org"


def survey_email(to: str = ANA, subject: str = "Une question rapide ✓", html: bool = False) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"NPS <{SENDER}>"
    message["To"] = to
    message["Subject"] = subject
    message.set_content("Bonjour Zoë, quelle note de 0 à 10 ? → https://nps.example.com/s/abc")
    if html:
        message.add_alternative(
            "<p>Bonjour Zoë, <a href='https://nps.example.com/s/abc'>répondre</a></p>", "html"
        )
    return message


def connect(sink: SmtpSink) -> smtplib.SMTP:
    return smtplib.SMTP(sink.host, sink.port, timeout=5)


def test_plain_send_is_recorded_and_parsed(smtp_sink: SmtpSink) -> None:
    with connect(smtp_sink) as smtp:
        smtp.send_message(survey_email(html=True), to_addrs=[ANA, BEN])
    [email] = smtp_sink.wait_for(1)
    assert (email.mail_from, email.rcpt_tos, email.login) == (SENDER, (ANA, BEN), None)
    assert email.subject == "Une question rapide ✓"
    assert email.message["To"] == ANA
    plain = email.body()
    assert plain is not None and plain.startswith("Bonjour Zoë, quelle note de 0 à 10 ?")
    assert "répondre" in (email.body("html") or "")
    assert b"=?utf-8?b?4pyT?=" in email.raw  # the subject is RFC 2047-encoded on the wire, decoded above


def test_auth_plain_and_login(smtp_sink_auth: SmtpSink) -> None:
    with connect(smtp_sink_auth) as smtp:
        smtp.login(SMTP_USERNAME, SMTP_PASSWORD)  # smtplib prefers PLAIN here
        smtp.send_message(survey_email())
    with connect(smtp_sink_auth) as smtp:
        smtp.ehlo()
        smtp.user, smtp.password = SMTP_USERNAME, SMTP_PASSWORD
        smtp.auth("LOGIN", smtp.auth_login)
        smtp.send_message(survey_email())
    assert [email.login for email in smtp_sink_auth.wait_for(2)] == [SMTP_USERNAME, SMTP_USERNAME]


def test_auth_is_required_and_checked(smtp_sink_auth: SmtpSink) -> None:
    with connect(smtp_sink_auth) as smtp, pytest.raises(smtplib.SMTPSenderRefused) as refused:
        smtp.send_message(survey_email())
    assert refused.value.smtp_code == 530
    with connect(smtp_sink_auth) as smtp, pytest.raises(smtplib.SMTPAuthenticationError) as failed:
        smtp.login(SMTP_USERNAME, "wrong-password")
    assert failed.value.smtp_code == 535
    assert smtp_sink_auth.messages() == []


def test_reject_next_at_rcpt_refuses_every_recipient_once(smtp_sink: SmtpSink) -> None:
    smtp_sink.reject_next(550)
    with connect(smtp_sink) as smtp:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            smtp.send_message(survey_email(), to_addrs=[ANA, BEN])
        assert refused.value.recipients == {
            ANA: (550, b"5.1.1 Mailbox unavailable"),
            BEN: (550, b"5.1.1 Mailbox unavailable"),
        }
        smtp.send_message(survey_email())  # same connection, next transaction: accepted
    assert len(smtp_sink.wait_for(1)) == 1
    assert smtp_sink.refusals() == [Refusal("rcpt", 550, ANA), Refusal("rcpt", 550, BEN)]


def test_reject_next_at_data_is_a_data_error(smtp_sink: SmtpSink) -> None:
    smtp_sink.reject_next(451, stage="data")
    with connect(smtp_sink) as smtp, pytest.raises(smtplib.SMTPDataError) as refused:
        smtp.send_message(survey_email())
    assert refused.value.smtp_code == 451
    assert refused.value.smtp_error == b"4.3.0 Temporary local problem, try again later"
    assert smtp_sink.messages() == []


def test_reject_next_at_data_with_a_providers_own_reply(smtp_sink: SmtpSink) -> None:
    ses = "Message rejected: Email address is not verified. The following identities failed the check"
    smtp_sink.reject_next(554, stage="data", text=ses)
    with connect(smtp_sink) as smtp, pytest.raises(smtplib.SMTPDataError) as refused:
        smtp.send_message(survey_email())
    assert (refused.value.smtp_code, refused.value.smtp_error) == (554, ses.encode())
    assert [r.stage for r in smtp_sink.refusals()] == ["data"]


def test_reject_next_at_mail_and_custom_text(smtp_sink: SmtpSink) -> None:
    smtp_sink.reject_next(554, stage="mail", text="5.7.1 Sender blocked")
    with connect(smtp_sink) as smtp, pytest.raises(smtplib.SMTPSenderRefused) as refused:
        smtp.send_message(survey_email())
    assert (refused.value.smtp_code, refused.value.smtp_error) == (554, b"5.7.1 Sender blocked")


def test_reject_recipient_refuses_only_that_address(smtp_sink: SmtpSink) -> None:
    smtp_sink.reject_recipient(BEN.upper())
    with connect(smtp_sink) as smtp:
        refused = smtp.send_message(survey_email(), to_addrs=[ANA, BEN])
    assert refused == {BEN: (550, b"5.1.1 Mailbox unavailable")}
    assert smtp_sink.wait_for(1)[0].rcpt_tos == (ANA,)


def test_wait_for_times_out_and_reset_clears(smtp_sink: SmtpSink) -> None:
    with pytest.raises(AssertionError, match="expected 1 email"):
        smtp_sink.wait_for(1, timeout=0.05)
    smtp_sink.reject_next(550)
    smtp_sink.reset()
    with connect(smtp_sink) as smtp:
        smtp.send_message(survey_email())
    assert len(smtp_sink.wait_for(1)) == 1
    assert smtp_sink.refusals() == []
